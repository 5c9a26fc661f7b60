//! A token secret that never prints itself.
//!
//! `Debug` and `Display` show only the masked form (`abcd…wxyz`), so a secret that slips into a
//! log line or an error message leaks nothing usable. Reading the value is explicit:
//! [`Secret::expose`].

use std::fmt;

/// A secret string (access token, refresh token, key). Redacted in `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value; from here on it prints only masked.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The full value. Call only where the value must leave the process (a lease answer to an
    /// authenticated client, an upstream call, encryption at rest).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The masked form shown everywhere else: the first four and last four characters, or
    /// only stars for a value too short to show any part of safely.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }

    /// `text` with every occurrence of this secret replaced by its masked form, whatever the
    /// secret's length or characters (DESIGN §9: a reported error that echoes the token).
    pub fn cut_from<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        if self.0.is_empty() || !text.contains(self.0.as_str()) {
            return std::borrow::Cow::Borrowed(text);
        }
        std::borrow::Cow::Owned(text.replace(self.0.as_str(), &self.masked()))
    }

    /// Length of the value in bytes, without exposing it.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The value is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Masks a secret: `abcd…wxyz` for 12 characters or more, `****` otherwise.
pub fn mask(value: &str) -> String {
    // Char boundaries, not bytes: a secret may hold any characters. No allocation but the
    // answer (every token view of a large listing masks one).
    let mut ends = value.char_indices().map(|(i, c)| i + c.len_utf8());
    let Some(head_end) = ends.nth(3) else {
        return "****".to_string();
    };
    let mut starts = value.char_indices().rev().map(|(i, _)| i);
    let tail_start = starts.nth(3).unwrap_or(0);
    if value[..tail_start].chars().count() < 8 {
        return "****".to_string();
    }
    let (head, tail) = (&value[..head_end], &value[tail_start..]);
    let mut out = String::with_capacity(head.len() + tail.len() + '…'.len_utf8());
    out.push_str(head);
    out.push('…');
    out.push_str(tail);
    out
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.masked())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_cut_out_whatever_its_length() {
        let short = Secret::new("s3cr/t");
        assert_eq!(
            short.cut_from("401 for s3cr/t, again s3cr/t"),
            "401 for ****, again ****"
        );
        assert!(matches!(
            short.cut_from("nothing here"),
            std::borrow::Cow::Borrowed(_)
        ));
        let long = Secret::new("c3f0362b-0000-4997-a9c2-0478702a5fea");
        assert_eq!(
            long.cut_from("bad c3f0362b-0000-4997-a9c2-0478702a5fea!"),
            "bad c3f0…5fea!"
        );
        assert_eq!(Secret::new("").cut_from("text"), "text");
    }

    /// The mask is the first four and last four characters of 12 or more, for every
    /// length around the limit and characters of every UTF-8 width.
    #[test]
    fn the_mask_keeps_four_characters_each_side() {
        let by_chars = |v: &str| {
            let chars: Vec<char> = v.chars().collect();
            if chars.len() < 12 {
                return "****".to_string();
            }
            let head: String = chars[..4].iter().collect();
            let tail: String = chars[chars.len() - 4..].iter().collect();
            format!("{head}…{tail}")
        };
        for alphabet in ["abcdefghijklmnopqrstu", "é中𝄞aé中𝄞bé中𝄞cé中𝄞dé中𝄞"]
        {
            let chars: Vec<char> = alphabet.chars().collect();
            for n in 0..=chars.len() {
                let v: String = chars[..n].iter().collect();
                assert_eq!(mask(&v), by_chars(&v), "{v:?}");
            }
        }
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("c3f0362b-0000-4997-a9c2-0478702a5fea");
        assert_eq!(s.to_string(), "c3f0…5fea");
        assert!(!format!("{s:?}").contains("0000-4997"));
        assert_eq!(Secret::new("short").masked(), "****");
    }
}
