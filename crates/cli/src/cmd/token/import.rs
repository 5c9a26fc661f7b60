//! `tokenlb token import FILE`: send tokens.json or a one-token-per-line file to the manager
//! in batches.
//!
//! A plain list is streamed line by line and sent every `--batch` tokens, so memory stays
//! flat however long the file is; blank lines and `#` comments travel with their batch so
//! the manager's line numbers map back to the file's. tokens.json is parsed here first (a
//! malformed file is refused before anything is sent, naming the line and column), then sent
//! as `{"tokens":[…]}` chunks. The manager merges by token value, so a re-run skips what is
//! already there and an interrupted import can simply be repeated.

use super::api::{Api, Body};
use crate::cmd::CliError;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// tokens.json ({"tokens":[{"token","name","is_active"}]}) or one token per line
    /// (blank lines and lines starting with # are skipped); `-` reads stdin.
    file: PathBuf,
    /// Pool for tokens that name none. [default: default]
    #[arg(long)]
    pool: Option<String>,
    /// Tokens per request.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=50_000))]
    batch: u32,
}

/// Running totals, and where we are for messages.
struct Import<'a> {
    api: &'a Api,
    label: String,
    query: Vec<(&'static str, String)>,
    progress: Progress,
    sent: u64,
    added: u64,
    skipped: u64,
    rejected: Vec<String>,
}

pub async fn run(api: &Api, a: ImportArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let stdin = a.file.as_os_str() == "-";
    let label = if stdin {
        "stdin".to_string()
    } else {
        a.file.display().to_string()
    };
    let mut reader: Box<dyn BufRead> = if stdin {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(&a.file)
            .map_err(|e| CliError::runtime(format!("cannot open {label}: {e}")))?;
        Box::new(BufReader::with_capacity(1 << 16, file))
    };
    let mut imp = Import {
        api,
        query: a.pool.iter().map(|p| ("pool", p.clone())).collect(),
        progress: Progress::new(),
        label,
        sent: 0,
        added: 0,
        skipped: 0,
        rejected: Vec::new(),
    };
    if looks_like_json(&mut reader, &imp.label)? {
        let mut text = String::new();
        reader
            .read_to_string(&mut text)
            .map_err(|e| CliError::runtime(format!("cannot read {}: {e}", imp.label)))?;
        imp.json(&text, a.batch as usize).await?;
    } else {
        imp.lines(reader, a.batch as usize).await?;
    }
    imp.finish(started)
}

/// Peeks at the first non-blank byte (after a BOM): `{` means tokens.json.
fn looks_like_json(reader: &mut Box<dyn BufRead>, label: &str) -> Result<bool, CliError> {
    loop {
        let buf = reader
            .fill_buf()
            .map_err(|e| CliError::runtime(format!("cannot read {label}: {e}")))?;
        if buf.is_empty() {
            return Ok(false);
        }
        let skip = buf
            .iter()
            .take_while(|b| b.is_ascii_whitespace() || [0xEF, 0xBB, 0xBF].contains(*b))
            .count();
        if skip < buf.len() {
            return Ok(buf[skip] == b'{');
        }
        let n = buf.len();
        reader.consume(n);
    }
}

impl Import<'_> {
    async fn json(&mut self, text: &str, batch: usize) -> Result<(), CliError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| {
            let message = tokenlb_manager::import::json_reason(&e);
            CliError::runtime(format!(
                "{} is not valid JSON: line {}, column {}: {message}",
                self.label,
                e.line(),
                e.column()
            ))
        })?;
        let entries = doc.get("tokens").and_then(Value::as_array).ok_or_else(|| {
            CliError::runtime(format!(
                "{} is not in the seed's tokens.json format: expected \
                 {{\"tokens\": [{{\"token\": \"…\", \"name\": \"…\", \"is_active\": true}}]}}",
                self.label
            ))
        })?;
        self.progress.start(Some(entries.len() as u64));
        for (i, chunk) in entries.chunks(batch).enumerate() {
            let body = Body::Json(json!({ "tokens": chunk }));
            let offset = i * batch;
            self.send(body, chunk.len() as u64, |at| position(at, offset, 0))
                .await?;
            self.progress.set(self.sent, self.added, self.skipped);
        }
        Ok(())
    }

    async fn lines(&mut self, reader: Box<dyn BufRead>, batch: usize) -> Result<(), CliError> {
        self.progress.start(None);
        let (mut text, mut count, mut first_line) = (String::new(), 0usize, 1usize);
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(|e| {
                CliError::runtime(format!("cannot read {} line {}: {e}", self.label, i + 1))
            })?;
            let t = line.trim();
            if !t.is_empty() && !t.starts_with('#') {
                count += 1;
            }
            text.push_str(&line);
            text.push('\n');
            if count == batch {
                self.send_lines(std::mem::take(&mut text), count, first_line)
                    .await?;
                (count, first_line) = (0, i + 2);
            }
        }
        if count > 0 {
            self.send_lines(text, count, first_line).await?;
        }
        Ok(())
    }

    async fn send_lines(
        &mut self,
        text: String,
        count: usize,
        first: usize,
    ) -> Result<(), CliError> {
        let body = Body::Raw {
            content_type: "text/plain; charset=utf-8",
            data: text.into_bytes(),
        };
        self.send(body, count as u64, |at| position(at, 0, first - 1))
            .await?;
        self.progress.set(self.sent, self.added, self.skipped);
        Ok(())
    }

    /// One request; `place` turns the manager's batch-relative position into the file's.
    async fn send(
        &mut self,
        body: Body,
        count: u64,
        place: impl Fn(&Value) -> String,
    ) -> Result<(), CliError> {
        let query: Vec<(&str, &str)> = self.query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = self
            .api
            .call(Method::POST, "api/tokens/import", &query, Some(body))
            .await
            .inspect_err(|_| self.progress.abandon())?;
        self.sent += count;
        self.added += answer["added"].as_u64().unwrap_or(0);
        self.skipped += answer["skipped"].as_u64().unwrap_or(0);
        for err in answer["errors"].as_array().into_iter().flatten() {
            let message = err["message"].as_str().unwrap_or("rejected");
            self.rejected
                .push(format!("{} {}: {message}", self.label, place(err)));
        }
        Ok(())
    }

    fn finish(self, started: Instant) -> Result<(), CliError> {
        self.progress.done();
        let secs = started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            self.sent as f64 / secs
        } else {
            0.0
        };
        eprintln!(
            "imported {}: {} tokens sent, {} added, {} skipped (already known or repeated), \
             {} rejected, in {secs:.2} s ({rate:.0} tokens/s)",
            self.label,
            self.sent,
            self.added,
            self.skipped,
            self.rejected.len()
        );
        for line in self.rejected.iter().take(10) {
            eprintln!("  {line}");
        }
        if self.rejected.len() > 10 {
            eprintln!("  … and {} more", self.rejected.len() - 10);
        }
        if self.rejected.is_empty() {
            Ok(())
        } else {
            Err(CliError::runtime(format!(
                "{} entries of {} were rejected (the others were imported)",
                self.rejected.len(),
                self.label
            )))
        }
    }
}

/// `{"entry": n}` / `{"line": n}` of a batch → the position in the whole input.
fn position(err: &Value, entry_offset: usize, line_offset: usize) -> String {
    if let Some(n) = err["entry"].as_u64() {
        format!("entry {}", n as usize + entry_offset)
    } else if let Some(n) = err["line"].as_u64() {
        format!("line {}", n as usize + line_offset)
    } else {
        "(position unknown)".to_string()
    }
}

/// A progress bar on a terminal, a line per batch otherwise.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new() -> Self {
        Progress { bar: None }
    }

    fn start(&mut self, total: Option<u64>) {
        if !std::io::stderr().is_terminal() {
            return;
        }
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let template = match total {
            Some(_) => "{elapsed_precise} [{wide_bar}] {pos}/{len} {msg}",
            None => "{spinner} {elapsed_precise} {pos} tokens {msg}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        self.bar = Some(bar);
    }

    fn set(&self, sent: u64, added: u64, skipped: u64) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(sent);
                bar.set_message(format!("{added} added, {skipped} skipped"));
            }
            None => eprintln!("import: {sent} tokens sent, {added} added, {skipped} skipped"),
        }
    }

    fn abandon(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
