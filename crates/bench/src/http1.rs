//! A minimal HTTP/1.1 keep-alive client connection, built for load generation.
//!
//! The load client must cost less per request than the servers it measures, or it becomes the
//! bottleneck and every ratio drifts towards 1. A general client (hyper's, reqwest's) builds
//! header maps, body streams and futures per request; here a request is a pre-built byte
//! string written as is, and the answer is read into one reused buffer and parsed just far
//! enough: the status, `Content-Length` or `Transfer-Encoding: chunked`, and
//! `Connection: close`. Responses are never pipelined, so one buffer per connection holds at
//! most one answer. Bounds: 64 KiB of headers, 16 MiB of body; anything else is an error,
//! never a panic.

use std::net::SocketAddr;
use std::ops::Range;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("malformed response: {0}")]
    Malformed(&'static str),
}

/// Where the body of the last answer is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Body {
    /// A range of the read buffer (`Content-Length` answers).
    InBuffer(Range<usize>),
    /// Decoded from a chunked answer into `Conn::decoded`.
    Decoded,
}

/// One answer: its status, and whether the server will close the connection after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub close: bool,
    body: Body,
}

/// A keep-alive connection to one server.
pub struct Conn {
    stream: TcpStream,
    /// Bytes read from the socket; `consumed` of them belong to answers already returned.
    buf: Vec<u8>,
    consumed: usize,
    /// The body of the last chunked answer.
    decoded: Vec<u8>,
}

/// A GET request with the given extra header lines (each ending in `\r\n`).
pub fn get(host: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n").into_bytes()
}

/// A POST request with a body.
pub fn post(host: &str, path: &str, content_type: &str, body: &[u8], extra: &str) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Result<Conn, HttpError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            consumed: 0,
            decoded: Vec::new(),
        })
    }

    /// Writes `request` and reads its whole answer.
    pub async fn send(&mut self, request: &[u8]) -> Result<Response, HttpError> {
        self.buf.drain(..self.consumed);
        self.consumed = 0;
        self.stream.write_all(request).await?;
        self.read_response().await
    }

    /// The body of `r`, which must be the last answer read on this connection.
    pub fn body(&self, r: &Response) -> &[u8] {
        match &r.body {
            Body::InBuffer(range) => self.buf.get(range.clone()).unwrap_or(&[]),
            Body::Decoded => &self.decoded,
        }
    }

    async fn fill(&mut self) -> Result<(), HttpError> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(HttpError::Closed);
        }
        Ok(())
    }

    async fn read_response(&mut self) -> Result<Response, HttpError> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(HttpError::Malformed("headers too large"));
            }
            self.fill().await?;
        };
        let head = parse_head(&self.buf[..head_end])?;
        match head.length {
            Length::Fixed(len) => {
                if len > MAX_BODY {
                    return Err(HttpError::Malformed("body too large"));
                }
                while self.buf.len() < head_end + len {
                    self.fill().await?;
                }
                self.consumed = head_end + len;
                Ok(Response {
                    status: head.status,
                    close: head.close,
                    body: Body::InBuffer(head_end..head_end + len),
                })
            }
            Length::Chunked => {
                self.read_chunks(head_end).await?;
                Ok(Response {
                    status: head.status,
                    close: head.close,
                    body: Body::Decoded,
                })
            }
        }
    }

    /// Decodes a chunked body starting at `pos` into `decoded` (trailers are skipped).
    async fn read_chunks(&mut self, mut pos: usize) -> Result<(), HttpError> {
        self.decoded.clear();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buf[pos..], b"\r\n") {
                    break pos + i;
                }
                if self.buf.len() - pos > 1024 {
                    return Err(HttpError::Malformed("chunk size line too long"));
                }
                self.fill().await?;
            };
            let size = chunk_size(&self.buf[pos..line_end])?;
            if self.decoded.len() + size > MAX_BODY {
                return Err(HttpError::Malformed("body too large"));
            }
            pos = line_end + 2;
            if size == 0 {
                // Trailers end with an empty line.
                loop {
                    if let Some(i) = find(&self.buf[pos..], b"\r\n") {
                        let empty = i == 0;
                        pos += i + 2;
                        if empty {
                            self.consumed = pos;
                            return Ok(());
                        }
                    } else {
                        self.fill().await?;
                    }
                }
            }
            while self.buf.len() < pos + size + 2 {
                self.fill().await?;
            }
            self.decoded.extend_from_slice(&self.buf[pos..pos + size]);
            pos += size + 2;
        }
    }
}

enum Length {
    Fixed(usize),
    Chunked,
}

struct Head {
    status: u16,
    close: bool,
    length: Length,
}

fn parse_head(head: &[u8]) -> Result<Head, HttpError> {
    let text = std::str::from_utf8(head).map_err(|_| HttpError::Malformed("non-UTF-8 head"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed("not an HTTP/1.x status line"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or(HttpError::Malformed("bad status code"))?;
    let mut close = version == "HTTP/1.0";
    let mut length = Length::Fixed(0);
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(HttpError::Malformed("header line without a colon"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse()
                .map_err(|_| HttpError::Malformed("bad Content-Length"))?;
            length = Length::Fixed(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            length = Length::Chunked;
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    Ok(Head {
        status,
        close,
        length,
    })
}

fn chunk_size(line: &[u8]) -> Result<usize, HttpError> {
    let text = std::str::from_utf8(line).map_err(|_| HttpError::Malformed("chunk size"))?;
    let hex = text.split(';').next().unwrap_or("").trim();
    usize::from_str_radix(hex, 16).map_err(|_| HttpError::Malformed("chunk size"))
}

/// First position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The string value of `"key":"…"` in a flat JSON answer, without parsing the document (the
/// lease id of a `get` answer). `None` when absent or not a plain string.
pub fn json_str<'a>(body: &'a [u8], key: &str) -> Option<&'a str> {
    let pattern = format!("\"{key}\":\"");
    let start = find(body, pattern.as_bytes())? + pattern.len();
    let len = body[start..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\')?;
    if body[start + len] != b'"' {
        return None;
    }
    std::str::from_utf8(&body[start..start + len]).ok()
}

#[cfg(test)]
mod tests;
