//! The manager API's JSON bodies: add, report, patch, remove and stats bodies deserialised from
//! any bytes (as the `ApiJson` extractor does), then the same validation the service runs.
//! A body is accepted or refused with a message; nothing panics. (The live router is exercised
//! end to end by schemathesis, tests/schemathesis/.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenlb_manager::service::{NewToken, ReportRequest, TokenChanges, TokenRef};
use tokenlb_manager::{validate, views};

fn text(s: &str) {
    let _ = validate::secret(s);
    let _ = validate::name(s);
    let _ = validate::pool_name(s);
    let _ = validate::error_sample(s);
    let _ = views::parse_time(s);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = serde_json::from_slice::<NewToken>(data) {
        text(&b.token);
        b.name.as_deref().map(text);
        b.pool.as_deref().map(text);
        b.expires_at.as_deref().map(text);
        b.refresh_token.as_deref().map(text);
        if let Some(w) = b.weight {
            let _ = validate::weight(w);
        }
    }
    if let Ok(b) = serde_json::from_slice::<ReportRequest>(data) {
        b.error.as_deref().map(text);
        b.lease.as_deref().map(text);
        b.token.as_deref().map(text);
        for r in b.reports.iter().flatten() {
            r.error.as_deref().map(text);
            r.lease.as_deref().map(text);
        }
    }
    if let Ok(b) = serde_json::from_slice::<TokenChanges>(data) {
        b.name.as_deref().map(text);
        if let Some(Some(at)) = &b.expires_at {
            text(at);
        }
        if let Some(w) = b.weight {
            let _ = validate::weight(w);
        }
    }
    let _ = serde_json::from_slice::<TokenRef>(data);
});
