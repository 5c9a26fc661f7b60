//! The table `tokenlb token list` prints: one row per token, masked values, aligned columns.

use super::text;
use serde_json::Value;

const COLUMNS: [&str; 10] = [
    "ID",
    "NAME",
    "POOL",
    "TOKEN",
    "STATE",
    "OK",
    "FAIL",
    "RATE",
    "LAST USED",
    "EXPIRES",
];

/// Renders rows of `/api/tokens` as an aligned table (or a sentence when there are none).
pub fn render(rows: &[Value]) -> String {
    if rows.is_empty() {
        return "no tokens\n".to_string();
    }
    let cells: Vec<[String; 10]> = rows.iter().map(row_cells).collect();
    let mut widths = COLUMNS.map(|c| c.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    push_line(&mut out, &COLUMNS.map(str::to_string), &widths);
    for row in &cells {
        push_line(&mut out, row, &widths);
    }
    out.push_str(&format!(
        "{}\n",
        crate::cmd::plural(rows.len(), "token", "tokens")
    ));
    out
}

fn push_line(out: &mut String, cells: &[String; 10], widths: &[usize; 10]) {
    let line: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
        .collect();
    out.push_str(line.join("  ").trim_end());
    out.push('\n');
}

fn row_cells(row: &Value) -> [String; 10] {
    let state = match row["state_reason"].as_str() {
        Some(reason) if !reason.is_empty() => format!("{} ({reason})", text(&row["state"])),
        _ => text(&row["state"]),
    };
    let rate = row["success_rate"]
        .as_f64()
        .map_or("-".to_string(), |r| format!("{:.1}%", r * 100.0));
    [
        text(&row["id"]),
        shorten(&text(&row["name"]), 24),
        text(&row["pool"]),
        text(&row["token"]),
        shorten(&state, 40),
        text(&row["success"]),
        text(&row["failure"]),
        rate,
        time(&row["last_used"]),
        time(&row["expires_at"]),
    ]
}

/// `2026-11-27T22:01:02.123Z` → `2026-11-27 22:01:02`.
fn time(v: &Value) -> String {
    match v.as_str() {
        Some(t) if t.len() >= 19 => t[..19].replace('T', " "),
        Some(t) => t.to_string(),
        None => "-".to_string(),
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let head: String = s.chars().take(max - 1).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_are_aligned_and_masked_values_kept() {
        let rows = vec![
            json!({"id":"t_a","name":"主Token","pool":"default","token":"abcd…wxyz","state":"active",
                   "success":3,"failure":1,"success_rate":0.75,"last_used":"2026-11-27T22:01:02.5Z","expires_at":null}),
            json!({"id":"t_bb","name":"x","pool":"p","token":"****","state":"cooling","state_reason":"rate limited",
                   "success":0,"failure":0,"success_rate":1.0,"last_used":null,"expires_at":null}),
        ];
        let out = render(&rows);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[1].contains("abcd…wxyz") && lines[1].contains("75.0%"));
        assert!(lines[1].contains("2026-11-27 22:01:02"));
        assert!(lines[2].contains("cooling (rate limited)"));
        // Columns line up in characters even with a wide (CJK) name.
        let col = |l: &str, at: usize| l.chars().skip(at).take(7).collect::<String>();
        let at = lines[0]
            .chars()
            .collect::<String>()
            .find("POOL")
            .map(|b| lines[0][..b].chars().count());
        let at = at.expect("POOL header");
        assert_eq!(col(lines[1], at), "default");
        assert!(col(lines[2], at).starts_with("p "));
        assert_eq!(lines[3], "2 tokens");
        assert_eq!(render(&[]), "no tokens\n");
    }
}
