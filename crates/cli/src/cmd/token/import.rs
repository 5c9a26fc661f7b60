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
use crate::cmd::{plural, CliError};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::Value;
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
    /// Tokens per request (one store transaction each). Larger batches import faster: at a
    /// million tokens, 50,000 per batch took 19 s, 20,000 took 28 s and 5,000 took 36 s.
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u32).range(1..=200_000))]
    batch: u32,
    /// Check every token against its pool's rules and count what would be added or skipped;
    /// nothing is written.
    #[arg(long)]
    dry_run: bool,
}

/// A batch is also cut when its body reaches this many bytes, so long tokens (JWTs of a
/// kilobyte or two) stay well under the manager's 64 MiB import limit at any `--batch`.
const BATCH_BYTES: usize = 16 << 20;

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
    dry_run: bool,
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
    let mut query: Vec<(&'static str, String)> =
        a.pool.iter().map(|p| ("pool", p.clone())).collect();
    if a.dry_run {
        query.push(("dry_run", "true".to_string()));
    }
    let total_bytes = if stdin {
        None
    } else {
        std::fs::metadata(&a.file).ok().map(|m| m.len())
    };
    let mut imp = Import {
        api,
        query,
        dry_run: a.dry_run,
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
        imp.lines(reader, a.batch as usize, total_bytes).await?;
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
        let mut doc: Value = serde_json::from_str(text).map_err(|e| {
            let message = tokenlb_manager::import::json_reason(&e);
            CliError::runtime(format!(
                "{} is not valid JSON: line {}, column {}: {message}",
                self.label,
                e.line(),
                e.column()
            ))
        })?;
        let entries = match doc.get_mut("tokens").map(Value::take) {
            Some(Value::Array(entries)) => entries,
            _ => {
                return Err(CliError::runtime(format!(
                    "{} is not in the seed's tokens.json format: expected \
                     {{\"tokens\": [{{\"token\": \"…\", \"name\": \"…\", \"is_active\": true}}]}}",
                    self.label
                )))
            }
        };
        // Refusals name the line each entry starts on, not only its number.
        let lines = entry_lines(text);
        self.progress.start(Some(entries.len() as u64), "tokens");
        // The next batch is encoded on a thread while the manager stores this one (a
        // 50,000-token body takes the CLI about 50 ms; a million tokens, a second in all).
        let mut bodies = encoded(entries, batch);
        while let Some((offset, count, data)) = bodies.recv().await {
            let body = Body::Raw {
                content_type: "application/json",
                data,
            };
            self.send(body, count as u64, |at| position(at, offset, 0, &lines))
                .await?;
            self.progress
                .set(self.sent, self.sent, self.added, self.skipped);
        }
        Ok(())
    }

    async fn lines(
        &mut self,
        reader: Box<dyn BufRead>,
        batch: usize,
        total_bytes: Option<u64>,
    ) -> Result<(), CliError> {
        // A file's progress is its bytes (known up front); stdin's only a count.
        self.progress.start(total_bytes, "bytes");
        let (mut text, mut count, mut first_line) = (String::new(), 0usize, 1usize);
        let mut read = 0u64;
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(|e| {
                CliError::runtime(format!("cannot read {} line {}: {e}", self.label, i + 1))
            })?;
            let t = line.trim();
            if !t.is_empty() && !t.starts_with('#') {
                count += 1;
            }
            read += line.len() as u64 + 1;
            text.push_str(&line);
            text.push('\n');
            if count == batch || text.len() >= BATCH_BYTES {
                self.send_lines(std::mem::take(&mut text), count, first_line, read)
                    .await?;
                (count, first_line) = (0, i + 2);
            }
        }
        if count > 0 {
            self.send_lines(text, count, first_line, read).await?;
        }
        Ok(())
    }

    async fn send_lines(
        &mut self,
        text: String,
        count: usize,
        first: usize,
        read: u64,
    ) -> Result<(), CliError> {
        let body = Body::Raw {
            content_type: "text/plain; charset=utf-8",
            data: text.into_bytes(),
        };
        self.send(body, count as u64, |at| position(at, 0, first - 1, &[]))
            .await?;
        self.progress.set(read, self.sent, self.added, self.skipped);
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
        let (verb, added) = if self.dry_run {
            ("dry run of", "would be added")
        } else {
            ("imported", "added")
        };
        eprintln!(
            "{verb} {}: {} sent, {} {added}, {} skipped (already known or repeated), \
             {} refused, in {secs:.2} s ({rate:.0} tokens/s)",
            self.label,
            plural(self.sent as usize, "token", "tokens"),
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
                "{} of {} refused ({})",
                plural(self.rejected.len(), "entry", "entries"),
                self.label,
                if self.dry_run {
                    "dry run: nothing was written"
                } else {
                    "the others were imported"
                }
            )))
        }
    }
}

/// The request bodies of `entries` in batches (see [`chunks`]), each with the index of its
/// first entry and its count, encoded on a thread one batch ahead of the sender.
fn encoded(
    entries: Vec<Value>,
    batch: usize,
) -> tokio::sync::mpsc::Receiver<(usize, usize, Vec<u8>)> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    std::thread::spawn(move || {
        for (offset, chunk, bytes) in chunks(&entries, batch) {
            let mut data = Vec::with_capacity(bytes + 16);
            data.extend_from_slice(b"{\"tokens\":");
            if serde_json::to_writer(&mut data, chunk).is_err() {
                return;
            }
            data.push(b'}');
            if tx.blocking_send((offset, chunk.len(), data)).is_err() {
                return; // the sender stopped (an error answer)
            }
        }
    });
    rx
}

/// `entries` cut into batches of at most `batch` entries and about [`BATCH_BYTES`] of JSON
/// each, with the index of each batch's first entry and its estimated size.
fn chunks(entries: &[Value], batch: usize) -> impl Iterator<Item = (usize, &[Value], usize)> {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= entries.len() {
            return None;
        }
        let (mut end, mut bytes) = (start, 0usize);
        while end < entries.len() && end - start < batch && (end == start || bytes < BATCH_BYTES) {
            bytes += json_size(&entries[end]);
            end += 1;
        }
        let chunk = (start, &entries[start..end], bytes);
        start = end;
        Some(chunk)
    })
}

/// About how many bytes `v` takes as JSON (strings' lengths and a little for the rest).
fn json_size(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len() + 2,
        Value::Array(a) => a.iter().map(json_size).sum::<usize>() + a.len() + 2,
        Value::Object(o) => {
            o.iter()
                .map(|(k, v)| k.len() + 4 + json_size(v))
                .sum::<usize>()
                + 2
        }
        _ => 8,
    }
}

/// `{"entry": n}` / `{"line": n}` of a batch → the position in the whole input: a line of
/// the file (an entry of tokens.json by the line it starts on, when known).
fn position(err: &Value, entry_offset: usize, line_offset: usize, entry_lines: &[usize]) -> String {
    if let Some(n) = err["entry"].as_u64() {
        let entry = n as usize + entry_offset;
        match entry.checked_sub(1).and_then(|i| entry_lines.get(i)) {
            Some(line) => format!("line {line} (entry {entry})"),
            None => format!("entry {entry}"),
        }
    } else if let Some(n) = err["line"].as_u64() {
        format!("line {}", n as usize + line_offset)
    } else {
        "(position unknown)".to_string()
    }
}

/// The 1-based line on which each element of the `"tokens"` array starts (a small scanner
/// over the JSON text, which has already parsed: strings and nesting are tracked, nothing
/// else is checked).
fn entry_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let (mut line, mut depth, mut in_string, mut escaped) = (1usize, 0usize, false, false);
    let mut array_depth = None;
    let mut key = String::new();
    let mut last_key = String::new();
    let mut expecting = false;
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    in_string = false;
                    last_key = std::mem::take(&mut key);
                }
                (false, ch) => key.push(ch),
            }
            continue;
        }
        if expecting && !c.is_whitespace() && c != ',' && c != ']' {
            lines.push(line);
            expecting = false;
        }
        match c {
            '"' => in_string = true,
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '[' => {
                depth += 1;
                if array_depth.is_none() && depth == 2 && last_key == "tokens" {
                    array_depth = Some(depth);
                    expecting = true;
                }
            }
            ']' => {
                if array_depth == Some(depth) {
                    array_depth = None;
                    expecting = false;
                }
                depth = depth.saturating_sub(1);
            }
            ',' if array_depth == Some(depth) => expecting = true,
            _ => {}
        }
    }
    lines
}

/// A progress bar on a terminal, a line per batch otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    total: Option<u64>,
}

impl Progress {
    fn new() -> Self {
        Progress {
            bar: None,
            total: None,
        }
    }

    /// `total` in `unit`s (tokens, or a file's bytes); `None` when unknown (stdin).
    fn start(&mut self, total: Option<u64>, unit: &str) {
        self.total = total;
        if !std::io::stderr().is_terminal() {
            return;
        }
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let template = match (total, unit) {
            (Some(_), "bytes") => {
                "{elapsed_precise} [{wide_bar}] {percent:>3}% {binary_bytes_per_sec} ETA {eta} {msg}"
            }
            (Some(_), _) => "{elapsed_precise} [{wide_bar}] {percent:>3}% {per_sec} ETA {eta} {msg}",
            (None, _) => "{spinner} {elapsed_precise} {msg}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        self.bar = Some(bar);
    }

    /// Progress `at` (in the bar's unit), and the running counts.
    fn set(&self, at: u64, sent: u64, added: u64, skipped: u64) {
        let message = format!(
            "{} sent, {added} added, {skipped} skipped",
            plural(sent as usize, "token", "tokens")
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(at);
                bar.set_message(message);
            }
            None => match self.total {
                Some(t) if t > 0 => {
                    eprintln!("import: {:>3}% {message}", at.min(t) * 100 / t)
                }
                _ => eprintln!("import: {message}"),
            },
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_are_found_by_their_first_line() {
        let text = "{\"tokens\": [\n  {\"token\": \"a,[b]\\\"\"},\n\n  {\"token\": \"c\",\n   \"name\": \"x\"},\n  \"bare\"\n]}";
        assert_eq!(entry_lines(text), vec![2, 4, 6]);
        assert_eq!(plural(1, "entry", "entries"), "1 entry");
        assert_eq!(plural(3, "entry", "entries"), "3 entries");
    }

    #[test]
    fn batches_are_cut_by_count_and_by_bytes() {
        let short: Vec<Value> = (0..10).map(|i| json!({"token": format!("t{i}")})).collect();
        let cut: Vec<(usize, usize)> = chunks(&short, 4).map(|(o, c, _)| (o, c.len())).collect();
        assert_eq!(cut, vec![(0, 4), (4, 4), (8, 2)]);
        // Tokens of 1 MiB: 16 fit in a batch of at most BATCH_BYTES, whatever --batch says;
        // one larger than the cap still travels (alone), never an empty batch.
        let long: Vec<Value> = (0..40)
            .map(|i| json!({"token": format!("{i}{}", "x".repeat(1 << 20))}))
            .collect();
        let cut: Vec<(usize, usize)> = chunks(&long, 50_000)
            .map(|(o, c, _)| (o, c.len()))
            .collect();
        assert_eq!(cut, vec![(0, 16), (16, 16), (32, 8)]);
        let huge = vec![
            json!({"token": "x".repeat(BATCH_BYTES * 2)}),
            json!({"token": "y"}),
        ];
        let cut: Vec<(usize, usize)> = chunks(&huge, 10).map(|(o, c, _)| (o, c.len())).collect();
        assert_eq!(cut, vec![(0, 1), (1, 1)]);
        assert_eq!(chunks(&[], 10).count(), 0);
    }
}
