//! `multipart/form-data` for `upload2C`: the client's encoder and the emulator's parser.
//!
//! Written here rather than taken from a crate because the need is small and fixed: text
//! fields plus one file part of at most one upload part (8 MiB), built and read whole in
//! memory. The encoder follows the HTML form rules (RFC 7578): a random boundary that cannot
//! occur in the text fields, `"`, CR and LF in names percent-escaped. The parser accepts what
//! browsers and HTTP libraries send (CRLF line ends, any header case, extra headers ignored)
//! and refuses everything else with a reason instead of guessing.

use bytes::{Bytes, BytesMut};
use rand::Rng;

/// A form being built: text fields and at most one file.
pub struct FormBuilder {
    boundary: String,
    head: BytesMut,
}

fn escape(name: &str) -> String {
    name.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

impl FormBuilder {
    pub fn new() -> Self {
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::thread_rng();
        let tail: String = (0..32)
            .map(|_| ALNUM[rng.gen_range(0..ALNUM.len())] as char)
            .collect();
        FormBuilder {
            boundary: format!("----tokenlb{tail}"),
            head: BytesMut::new(),
        }
    }

    /// The `Content-Type` header value.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        let part = format!(
            "--{}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{}\r\n",
            self.boundary,
            escape(name),
            value
        );
        self.head.extend_from_slice(part.as_bytes());
        self
    }

    /// The whole body: the text fields, then the file part `name` with `bytes`.
    pub fn finish_with_file(self, name: &str, filename: &str, bytes: &[u8]) -> Bytes {
        let mut body = self.head;
        let header = format!(
            "--{}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n",
            self.boundary,
            escape(name),
            escape(filename)
        );
        body.reserve(header.len() + bytes.len() + self.boundary.len() + 8);
        body.extend_from_slice(header.as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{}--\r\n", self.boundary).as_bytes());
        body.freeze()
    }
}

impl Default for FormBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// One part of a parsed form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub data: Bytes,
}

/// The boundary named by a `Content-Type: multipart/form-data; boundary=…` value.
pub fn boundary_of(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        let v = v.trim().trim_matches('"');
        (k.trim().eq_ignore_ascii_case("boundary") && !v.is_empty() && v.len() <= 70)
            .then(|| v.to_string())
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| &hay[i..i + needle.len()] == needle)
}

/// `name="…"` (or `filename="…"`) out of a `Content-Disposition` value.
fn disposition_param(value: &str, key: &str) -> Option<String> {
    value.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Splits a whole form body into its parts.
pub fn parse(body: &Bytes, boundary: &str) -> Result<Vec<Part>, String> {
    let delim = format!("--{boundary}");
    let mut pos = find(body, delim.as_bytes(), 0).ok_or("no opening boundary")?;
    let next_delim = format!("\r\n--{boundary}");
    let mut parts = Vec::new();
    loop {
        let after = pos + delim.len();
        if body.get(after..after + 2) == Some(b"--") {
            return Ok(parts);
        }
        if body.get(after..after + 2) != Some(b"\r\n") {
            return Err("boundary not followed by a line end".into());
        }
        let head_start = after + 2;
        let head_end = find(body, b"\r\n\r\n", head_start).ok_or("part headers never end")?;
        let head = std::str::from_utf8(&body[head_start..head_end])
            .map_err(|_| "part headers are not UTF-8")?;
        let mut name = None;
        let mut filename = None;
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                return Err("malformed part header".into());
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                name = disposition_param(v, "name");
                filename = disposition_param(v, "filename");
            }
        }
        let name = name.ok_or("part without a name")?;
        let data_start = head_end + 4;
        let end = find(body, next_delim.as_bytes(), data_start).ok_or("part never ends")?;
        parts.push(Part {
            name,
            filename,
            data: body.slice(data_start..end),
        });
        pos = end + 2;
        if parts.len() > 64 {
            return Err("too many parts".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut f = FormBuilder::new();
        f.text("a", "1").text("fileName", "名字 \"q\".bin");
        let ct = f.content_type();
        let payload = b"\r\n--not-a-boundary\r\n\x00\xff".to_vec();
        let body = f.finish_with_file("file", "x\".bin", &payload);
        let b = boundary_of(&ct).unwrap();
        let parts = parse(&body, &b).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].name, "a");
        assert_eq!(&parts[0].data[..], b"1");
        assert_eq!(&parts[1].data[..], "名字 \"q\".bin".as_bytes());
        assert_eq!(parts[2].filename.as_deref(), Some("x%22.bin"));
        assert_eq!(&parts[2].data[..], &payload[..]);
    }

    #[test]
    fn refuses_garbage() {
        assert!(boundary_of("application/json").is_none());
        assert_eq!(
            boundary_of("multipart/form-data; boundary=\"ab\"").as_deref(),
            Some("ab")
        );
        let body = Bytes::from_static(b"--ab\r\nContent-Disposition: form-data\r\n\r\nx\r\n--ab--");
        assert!(parse(&body, "ab").is_err());
        assert!(parse(&Bytes::from_static(b"nothing"), "ab").is_err());
        let body =
            Bytes::from_static(b"--ab\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\nv");
        assert!(parse(&body, "ab").is_err());
    }
}
