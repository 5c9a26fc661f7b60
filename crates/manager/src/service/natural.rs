//! Natural order for token names: `tok1 < tok2 < tok10 < tok100`, not text order.
//!
//! Names are compared as runs: a run of ASCII digits against a run of digits compares by
//! numeric value (leading zeros ignored; with equal values the shorter run first, so the
//! order stays total), anything else character by character, ignoring ASCII case first and
//! using it only to break a tie. No allocation, so sorting 100,000 names costs only the
//! comparisons. Written here rather than taken from a crate: the candidates (`natord`, last
//! released years ago) are unmaintained, and the rule fits in forty lines with its tests.

use std::cmp::Ordering;

/// Compares two names in natural order (total: equal only for equal strings).
pub fn compare(a: &str, b: &str) -> Ordering {
    folded(a.as_bytes(), b.as_bytes()).then_with(|| a.cmp(b))
}

/// The case-folded natural comparison, without the final tie-break.
fn folded(mut a: &[u8], mut b: &[u8]) -> Ordering {
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (na, ra) = split_digits(a);
                let (nb, rb) = split_digits(b);
                let ord = numeric(na, nb);
                if ord != Ordering::Equal {
                    return ord;
                }
                (a, b) = (ra, rb);
            }
            (Some(x), Some(y)) => {
                let ord = x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase());
                if ord != Ordering::Equal {
                    return ord;
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

/// The leading run of ASCII digits and the rest.
fn split_digits(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    s.split_at(n)
}

/// Two digit runs by value, whatever their length (no overflow); equal values: fewer
/// leading zeros first.
fn numeric(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |s: &[u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
    let (za, zb) = (strip(a), strip(b));
    let (va, vb) = (&a[za..], &b[zb..]);
    va.len()
        .cmp(&vb.len())
        .then_with(|| va.cmp(vb))
        .then_with(|| za.cmp(&zb))
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering;

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        v.sort_by(|a, b| compare(a, b));
        v
    }

    #[test]
    fn numbers_inside_names_sort_by_value() {
        assert_eq!(
            sorted(&["tok100", "tok10", "tok2", "tok1", "tok20"]),
            ["tok1", "tok2", "tok10", "tok20", "tok100"]
        );
        assert_eq!(
            sorted(&["bulk 10", "bulk 9", "bulk 100000", "bulk 99999"]),
            ["bulk 9", "bulk 10", "bulk 99999", "bulk 100000"]
        );
    }

    #[test]
    fn several_runs_and_prefixes() {
        assert_eq!(
            sorted(&["a2b10", "a2b9", "a10b1", "a2", "a"]),
            ["a", "a2", "a2b9", "a2b10", "a10b1"]
        );
    }

    #[test]
    fn case_is_ignored_except_to_break_ties() {
        assert_eq!(
            sorted(&["beta", "Alpha", "alpha"]),
            ["Alpha", "alpha", "beta"]
        );
        assert_eq!(compare("Tok2", "tok10"), Ordering::Less);
    }

    #[test]
    fn leading_zeros_and_huge_numbers() {
        assert_eq!(sorted(&["t010", "t10", "t9"]), ["t9", "t10", "t010"]);
        let big = "n123456789012345678901234567890";
        assert_eq!(compare(big, "n99"), Ordering::Greater);
    }

    #[test]
    fn the_order_is_total_and_consistent() {
        let names = [
            "x1", "X1", "x01", "x1a", "x", "", "é1", "e1", "x1 ", "10", "9",
        ];
        for a in names {
            assert_eq!(compare(a, a), Ordering::Equal);
            for b in names {
                assert_eq!(compare(a, b), compare(b, a).reverse(), "{a:?} vs {b:?}");
                if a != b {
                    assert_ne!(compare(a, b), Ordering::Equal, "{a:?} vs {b:?}");
                }
                for c in names {
                    if compare(a, b) == Ordering::Less && compare(b, c) == Ordering::Less {
                        assert_eq!(compare(a, c), Ordering::Less, "{a:?} {b:?} {c:?}");
                    }
                }
            }
        }
    }
}
