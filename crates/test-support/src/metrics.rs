//! Reading a server's Prometheus exposition in tests: fetch `/metrics`, find a series.

/// The text of `GET {base}/metrics`.
pub async fn scrape(http: &reqwest::Client, base: &str) -> String {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the exposition's text")
}

/// The value of the series written exactly `series` (name and labels, as exposed), if any.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_found_by_their_exact_name_and_labels() {
        let text = "# HELP a_total x\na_total{k=\"v\"} 3\na_total{k=\"w\"} 4.5\nb 1\n";
        assert_eq!(value(text, "a_total{k=\"v\"}"), Some(3.0));
        assert_eq!(value(text, "a_total{k=\"w\"}"), Some(4.5));
        assert_eq!(value(text, "b"), Some(1.0));
        assert_eq!(value(text, "a_total"), None, "a prefix is not the series");
    }
}
