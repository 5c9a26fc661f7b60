//! Listing answers as bytes: rendered once per listing, copied per request.
//!
//! `/api/files` and `/api/folders` answer the same listing over and over while it is cached;
//! building a `serde_json::Value` tree of every entry for every request (a map per entry,
//! a string per key) was most of a cached answer's cost. Each [`Listing`] now keeps the JSON
//! of its entry arrays and its `cached_at`, made on first use by typed `Serialize` structs,
//! and an answer is those parts joined with the per-request fields (`source`, `stale`).
//!
//! The answer's shape is unchanged: the same keys in the same (sorted) order as before,
//! `{"cached_at","count","files"|"folders","folder","source","stale"}`, entries
//! `{"create_time","fid"(files only),"file_type","id","name","size","type"}`.

use crate::cache::{Entry, Listing};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::OnceLock;

/// The rendered parts of one listing's answers.
#[derive(Debug)]
pub(crate) struct Rendered {
    /// `cached_at` as a JSON value (an RFC 3339 string, or `null`).
    cached_at: String,
    /// The folder path as a JSON string.
    folder: String,
    /// Every entry, as the `files` array.
    files: Vec<u8>,
    /// The folders only, as the `folders` array, and how many.
    folders: Vec<u8>,
    folder_count: usize,
}

/// A listing's rendered answer parts. Not part of the listing's identity: it compares equal
/// and clones empty.
#[derive(Default)]
pub(crate) struct RenderCache(OnceLock<Rendered>);

impl Clone for RenderCache {
    fn clone(&self) -> Self {
        RenderCache::default()
    }
}

impl PartialEq for RenderCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for RenderCache {}

impl std::fmt::Debug for RenderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "rendered"
        } else {
            "not rendered"
        })
    }
}

#[derive(Serialize)]
struct EntryOut<'a> {
    create_time: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fid: Option<&'a str>,
    file_type: &'a str,
    id: &'a str,
    name: &'a str,
    size: u64,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl<'a> From<&'a Entry> for EntryOut<'a> {
    fn from(e: &'a Entry) -> Self {
        EntryOut {
            create_time: &e.create_time,
            fid: (!e.is_folder).then_some(e.fid.as_str()),
            file_type: &e.file_type,
            id: &e.id,
            name: &e.name,
            size: e.size,
            kind: if e.is_folder { "folder" } else { "file" },
        }
    }
}

/// `cached_at` as sent in every answer: RFC 3339 with milliseconds, UTC.
/// One entry as listings show it (for the write routes' answers).
pub fn entry_json(e: &Entry) -> serde_json::Value {
    serde_json::to_value(EntryOut::from(e)).unwrap_or(serde_json::Value::Null)
}

pub fn rfc3339(ms: u64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn json<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    // Serializing strings, numbers and arrays of them into memory cannot fail.
    serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec())
}

fn render(l: &Listing) -> Rendered {
    let files: Vec<EntryOut<'_>> = l.entries.iter().map(EntryOut::from).collect();
    let folders: Vec<EntryOut<'_>> = l
        .entries
        .iter()
        .filter(|e| e.is_folder)
        .map(EntryOut::from)
        .collect();
    Rendered {
        cached_at: String::from_utf8(json(&rfc3339(l.fetched_at))).unwrap_or_default(),
        folder: String::from_utf8(json(&l.path)).unwrap_or_default(),
        files: json(&files),
        folder_count: folders.len(),
        folders: json(&folders),
    }
}

/// Which listing answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `/api/files`: every entry under `files`.
    Files,
    /// `/api/folders`: the folders under `folders`.
    Folders,
}

/// The JSON body of a listing answer.
pub fn listing_body(l: &Listing, kind: Kind, realtime: bool, stale: bool) -> Vec<u8> {
    let r = l.rendered.0.get_or_init(|| render(l));
    let (key, array, count) = match kind {
        Kind::Files => ("files", &r.files, l.entries.len()),
        Kind::Folders => ("folders", &r.folders, r.folder_count),
    };
    let source = if realtime { "realtime" } else { "cache" };
    let mut out = Vec::with_capacity(array.len() + r.folder.len() + 128);
    out.extend_from_slice(b"{\"cached_at\":");
    out.extend_from_slice(r.cached_at.as_bytes());
    out.extend_from_slice(b",\"count\":");
    out.extend_from_slice(count.to_string().as_bytes());
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(array);
    out.extend_from_slice(b",\"folder\":");
    out.extend_from_slice(r.folder.as_bytes());
    out.extend_from_slice(b",\"source\":\"");
    out.extend_from_slice(source.as_bytes());
    out.extend_from_slice(if stale {
        b"\",\"stale\":true}"
    } else {
        b"\",\"stale\":false}"
    });
    out
}

/// A ready JSON body as a 200 answer.
pub fn json_response(body: Vec<u8>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::DrivePath;
    use serde_json::{json, Value};

    fn entry(name: &str, folder: bool) -> Entry {
        Entry {
            name: name.into(),
            id: format!("id-{name}"),
            fid: if folder {
                "0".into()
            } else {
                format!("f-{name}")
            },
            is_folder: folder,
            size: if folder { 0 } else { 42 },
            file_type: if folder { "0".into() } else { "2".into() },
            create_time: "20240101000000".into(),
        }
    }

    #[test]
    fn answers_have_the_documented_shape_and_key_order() {
        let path = DrivePath::parse("A/\"电影\"", "folder", false).unwrap();
        let l = Listing::new(
            "personal",
            &path,
            "d".into(),
            1_700_000_000_123,
            vec![entry("sub", true), entry("01.mp4", false)],
        );
        let body = listing_body(&l, Kind::Files, false, false);
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"cached_at":"2023-11-14T22:13:20.123Z","count":2,"files":[{"create_time":"20240101000000","file_type":"0","id":"id-sub","name":"sub","size":0,"type":"folder"},{"create_time""#),
            "{text}"
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["folder"], "A/\"电影\"");
        assert_eq!(v["files"][1]["fid"], "f-01.mp4");
        assert_eq!(
            (v["source"].clone(), v["stale"].clone()),
            (json!("cache"), json!(false))
        );
        let v: Value =
            serde_json::from_slice(&listing_body(&l, Kind::Folders, true, false)).unwrap();
        assert_eq!(v["count"], 1);
        assert_eq!(v["folders"][0]["name"], "sub");
        assert_eq!(
            (v["source"].clone(), v["stale"].clone()),
            (json!("realtime"), json!(false))
        );
        let v: Value =
            serde_json::from_slice(&listing_body(&l, Kind::Folders, false, true)).unwrap();
        assert_eq!(v["stale"], true);
        // The rendered parts are not part of a listing's identity.
        assert_eq!(l.clone(), l);
    }
}
