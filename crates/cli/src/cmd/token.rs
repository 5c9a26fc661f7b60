//! `tokenlb token add | remove | list | import | export`: manage the tokens of a running
//! manager through its admin API.
//!
//! Each subcommand is one request (import: one request per batch). Secrets given on the
//! command line can instead be read from stdin with `-`, so they need not be in shell
//! history. Output meant for people goes to stdout as a table or a sentence; `--json` and
//! `export` give machine-readable JSON.

pub(crate) mod api;
mod import;
mod table;

use super::{client_runtime, CliError, Global};
use crate::logging;
use api::{secret_arg, Api, Body, Conn};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;

/// Talks to a running manager (--manager-url, default http://127.0.0.1:8000) with the admin
/// key (--admin-key / TOKENLB_ADMIN_KEY, else DATA_DIR/admin-key).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(clap::Subcommand, Debug)]
enum TokenCommand {
    /// Add one token. Give TOKEN as `-` to read it from stdin (keeps it out of shell history).
    Add(AddArgs),
    /// Remove a token by --id or by its value (`-` reads the value from stdin).
    Remove(RemoveArgs),
    /// List tokens as a table with masked values (or --json).
    List(ListArgs),
    /// Import tokens.json (the seed's format) or a file with one token per line.
    ///
    /// Sends the file in batches of --batch tokens to POST /api/tokens/import; tokens already
    /// known (same value) are skipped. FILE `-` reads stdin. Shows a progress bar on a
    /// terminal and plain progress lines otherwise.
    Import(import::ImportArgs),
    /// Write all tokens, with their full values, in the seed's tokens.json format.
    ///
    /// With --out the file is created with mode 0600; without it the JSON goes to stdout.
    Export(ExportArgs),
}

#[derive(clap::Args, Debug)]
struct AddArgs {
    /// The token value, or `-` to read it from the first line of stdin.
    token: String,
    /// Display name. [default: the token's id]
    #[arg(long)]
    name: Option<String>,
    /// Pool to add it to (created if new). [default: default]
    #[arg(long)]
    pool: Option<String>,
    /// Weight for the weighted strategy, 1–1000. [default: 100]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    weight: Option<u32>,
    /// Expiry time, RFC 3339 (e.g. 2026-12-31T00:00:00Z).
    #[arg(long, value_name = "TIME")]
    expires_at: Option<String>,
    /// Refresh token, or `-` to read it from stdin.
    #[arg(long, value_name = "TOKEN")]
    refresh_token: Option<String>,
}

#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
struct RemoveArgs {
    /// Id of the token (as shown by `tokenlb token list`).
    #[arg(long)]
    id: Option<String>,
    /// The token value, or `-` to read it from stdin.
    token: Option<String>,
}

#[derive(clap::Args, Debug)]
struct ListArgs {
    /// Only tokens of this pool.
    #[arg(long)]
    pool: Option<String>,
    /// Only tokens in this state.
    #[arg(long, value_parser = ["active", "cooling", "invalid", "disabled", "expired"])]
    state: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// At most this many tokens (in natural name order). [default: all, fetched a page of
    /// 1,000 at a time]
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
}

#[derive(clap::Args, Debug)]
struct ExportArgs {
    /// Write to this file (mode 0600) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(args: Args, global: &Global) -> Result<(), CliError> {
    logging::init_for_client(global)?;
    let api = Api::new(&args.conn)?;
    let rt = client_runtime()?;
    match args.command {
        TokenCommand::Add(a) => rt.block_on(add(&api, a)),
        TokenCommand::Remove(a) => rt.block_on(remove(&api, a)),
        TokenCommand::List(a) => rt.block_on(list(&api, a)),
        TokenCommand::Import(a) => rt.block_on(import::run(&api, a)),
        TokenCommand::Export(a) => rt.block_on(export(&api, a)),
    }
}

async fn add(api: &Api, a: AddArgs) -> Result<(), CliError> {
    if a.token == "-" && a.refresh_token.as_deref() == Some("-") {
        return Err(CliError::usage(
            "only one of TOKEN and --refresh-token can be read from stdin",
        ));
    }
    let mut body = json!({ "token": secret_arg(&a.token, "token")? });
    if let Some(r) = &a.refresh_token {
        body["refresh_token"] = json!(secret_arg(r, "refresh token")?);
    }
    for (key, value) in [
        ("name", &a.name),
        ("pool", &a.pool),
        ("expires_at", &a.expires_at),
    ] {
        if let Some(v) = value {
            body[key] = json!(v);
        }
    }
    if let Some(w) = a.weight {
        body["weight"] = json!(w);
    }
    let row = api
        .call(Method::POST, "api/token/add", &[], Some(Body::Json(body)))
        .await?;
    crate::cmd::print_out(&format!(
        "added token {} ({}) to pool {}: {}\n",
        text(&row["name"]),
        text(&row["id"]),
        text(&row["pool"]),
        text(&row["token"])
    ));
    Ok(())
}

async fn remove(api: &Api, a: RemoveArgs) -> Result<(), CliError> {
    let body = match (a.id, a.token) {
        (Some(id), _) => json!({ "id": id }),
        (None, Some(token)) => json!({ "token": secret_arg(&token, "token")? }),
        (None, None) => return Err(CliError::usage("give --id ID or the TOKEN to remove")),
    };
    let answer = api
        .call(
            Method::DELETE,
            "api/token/remove",
            &[],
            Some(Body::Json(body)),
        )
        .await?;
    crate::cmd::print_out(&format!(
        "removed token {} ({})\n",
        text(&answer["name"]),
        text(&answer["id"])
    ));
    Ok(())
}

async fn list(api: &Api, a: ListArgs) -> Result<(), CliError> {
    // The manager answers at most 1,000 rows at a time: page through them.
    const PAGE: u64 = 1000;
    let mut rows = Vec::new();
    let wanted = a.limit.unwrap_or(u64::MAX);
    loop {
        let offset = rows.len().to_string();
        let limit = PAGE.min(wanted - rows.len() as u64).to_string();
        let mut query = vec![("offset", offset.as_str()), ("limit", limit.as_str())];
        if let Some(p) = &a.pool {
            query.push(("pool", p.as_str()));
        }
        if let Some(s) = &a.state {
            query.push(("state", s.as_str()));
        }
        let answer = api.call(Method::GET, "api/tokens", &query, None).await?;
        let page = answer["tokens"].as_array().cloned().unwrap_or_default();
        let total = answer["total"].as_u64().unwrap_or(0);
        let got = page.len();
        rows.extend(page);
        if got == 0 || rows.len() as u64 >= total.min(wanted) {
            break;
        }
    }
    if a.json {
        crate::cmd::print_out(&format!("{}\n", pretty(&Value::Array(rows))));
    } else {
        crate::cmd::print_out(&table::render(&rows));
    }
    Ok(())
}

async fn export(api: &Api, a: ExportArgs) -> Result<(), CliError> {
    let doc = api
        .call(Method::GET, "api/tokens/export", &[], None)
        .await?;
    let count = doc["tokens"].as_array().map_or(0, Vec::len);
    let text = format!("{}\n", pretty(&doc));
    match a.out {
        None => crate::cmd::print_out(&text),
        Some(path) => {
            write_private(&path, text.as_bytes())
                .map_err(|e| CliError::runtime(format!("cannot write {}: {e}", path.display())))?;
            eprintln!(
                "exported {} to {} (mode 0600)",
                crate::cmd::plural(count, "token", "tokens"),
                path.display()
            );
        }
    }
    Ok(())
}

/// Writes a file only its owner can read (it holds full token values).
fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        // An existing file keeps its old mode on open; tighten it before writing secrets.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        let mut file = file;
        file.write_all(data)?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        file.write_all(data)?;
        file.sync_all()
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// A JSON value as plain text (strings without quotes, null as `-`).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}
