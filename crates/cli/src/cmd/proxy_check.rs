//! `tokenlb proxy-check NAME`: one request through a `[[proxy]]` route of a running manager
//! (`POST /api/proxy/NAME/check`), and how its answer was classified (DESIGN §10).
//!
//! The outcome is reported like any other proxied request, so a check of a dead token marks
//! it as the traffic would. Connects as `tokenlb token` does (manager URL, admin key).

use super::token::api::{Api, Conn};
use super::{client_runtime, CliError, Global};
use crate::logging;
use reqwest::Method;
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    conn: Conn,
    /// The route's name (its `name` in tokenlb.toml).
    name: String,
    /// Path (and query) after /proxy/NAME to request.
    #[arg(long, default_value = "/")]
    path: String,
    /// HTTP method of the request.
    #[arg(long, default_value = "GET")]
    method: String,
    /// Print the API's JSON instead of sentences.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, global: &Global) -> Result<(), CliError> {
    logging::init_for_client(global)?;
    let api = Api::new(&args.conn)?;
    let rt = client_runtime()?;
    let path = format!("api/proxy/{}/check", args.name);
    let query = [
        ("path", args.path.as_str()),
        ("method", args.method.as_str()),
    ];
    let v = rt.block_on(api.call(Method::POST, &path, &query, None))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        print!("{}", describe(&v));
    }
    Ok(())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// The check as a few lines for people.
fn describe(v: &Value) -> String {
    let mut out = format!(
        "{} {} through proxy {} (pool {}), token {}\n",
        text(&v["method"]),
        text(&v["path"]),
        text(&v["proxy"]),
        text(&v["pool"]),
        text(&v["token_id"]),
    );
    let status = match &v["status"] {
        Value::Null => "no answer".to_string(),
        s => format!("HTTP {s}"),
    };
    let rule = match &v["rule"] {
        Value::Null => "the default classes".to_string(),
        r => format!("rule {} of the route", text(&r["index"])),
    };
    out.push_str(&format!(
        "  {status} in {} ms → {} (by {rule})\n",
        text(&v["latency_ms"]),
        text(&v["class"]),
    ));
    if !v["retry_after_s"].is_null() {
        out.push_str(&format!("  recovery in {} s\n", text(&v["retry_after_s"])));
    }
    if !v["error"].is_null() {
        out.push_str(&format!("  {}\n", text(&v["error"])));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_reads_as_sentences() {
        let v = serde_json::json!({
            "proxy": "demo", "pool": "default", "method": "GET", "path": "/hello",
            "token_id": "t1", "status": 429, "class": "rate_limited", "rule": null,
            "retry_after_s": 30, "latency_ms": 3, "error": "proxy demo: upstream answered HTTP 429"
        });
        let text = describe(&v);
        assert!(
            text.contains("HTTP 429 in 3 ms → rate_limited (by the default classes)"),
            "{text}"
        );
        assert!(text.contains("recovery in 30 s"), "{text}");
    }
}
