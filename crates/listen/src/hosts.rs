//! The Host allow-list (DESIGN §9): the names a listener answers for.
//!
//! A listener answers for `localhost`, `127.0.0.1`, `[::1]`, the address it listens on (for a
//! wildcard listen such as `0.0.0.0`, every address of the machine's interfaces) and the
//! names it is given (`allowed_hosts`), each with or without a port. Names compare without
//! regard to case and to a trailing dot; IPv6 addresses compare as addresses, so `[::1]` and
//! `[0:0:0:0:0:0:0:1]` are one name. A request without any `Host` (HTTP/1.0) passes: every
//! browser sends one, so it cannot be a page re-pointing its domain at us.
//!
//! The port is not compared: the name is what DNS rebinding cannot fake, and a forwarded port
//! (`ssh -L 9000:localhost:8000`) legitimately changes the port.

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The names `Host` may carry.
#[derive(Clone, Debug, Default)]
pub struct Hosts {
    any: bool,
    names: Vec<String>,
    ips: Vec<IpAddr>,
    /// The exact `Host` values clients send (each name and address as written, alone and
    /// with the listener's port): a request carrying one of these passes on a byte compare,
    /// without the parse that any other spelling goes through.
    exact: Vec<Box<[u8]>>,
}

impl Hosts {
    /// Every `Host` passes (the benchmark's baseline; `allowed_hosts = ["*"]`).
    pub fn any() -> Hosts {
        Hosts {
            any: true,
            ..Hosts::default()
        }
    }

    /// The names of a listener on `addr`, plus `allowed` (`"*"` among them allows any).
    pub fn for_listener(addr: SocketAddr, allowed: &[String]) -> Hosts {
        let mut hosts = Hosts {
            any: false,
            names: vec!["localhost".to_string()],
            ips: vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
            exact: Vec::new(),
        };
        if addr.ip().is_unspecified() {
            match if_addrs::get_if_addrs() {
                Ok(interfaces) => hosts.ips.extend(interfaces.iter().map(|i| i.ip())),
                Err(e) => tracing::warn!(
                    error = %e,
                    "cannot list the network interfaces: only localhost and allowed_hosts are accepted as Host"
                ),
            }
        } else {
            hosts.ips.push(addr.ip().to_canonical());
        }
        for entry in allowed {
            let entry = entry.trim();
            if entry == "*" {
                hosts.any = true;
            } else if let Some(name) = name_of(entry) {
                match name.parse::<IpAddr>() {
                    Ok(ip) => hosts.ips.push(ip.to_canonical()),
                    Err(_) => hosts.names.push(name),
                }
            }
        }
        hosts.ips.sort();
        hosts.ips.dedup();
        hosts.names.sort();
        hosts.names.dedup();
        hosts.exact = hosts.spellings(addr.port());
        hosts
    }

    /// The usual spellings of every name: `name`, `name:port`, `1.2.3.4`, `[::1]:port`.
    fn spellings(&self, port: u16) -> Vec<Box<[u8]>> {
        let ips = self.ips.iter().map(|ip| match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        });
        self.names
            .iter()
            .cloned()
            .chain(ips)
            .flat_map(|name| [format!("{name}:{port}"), name])
            .map(|s| s.into_bytes().into_boxed_slice())
            .collect()
    }

    /// Whether a `Host` value (with or without port) names this listener.
    pub fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let Some(name) = name_of(host) else {
            return false;
        };
        match name.parse::<IpAddr>() {
            Ok(ip) => self.ips.contains(&ip.to_canonical()),
            Err(_) => self.names.contains(&name),
        }
    }

    /// Whether the request's `Host` header and URI authority (HTTP/2's `:authority`, or an
    /// absolute-form request line) both name this listener, where present.
    pub fn allows_request<B>(&self, req: &Request<B>) -> bool {
        if self.any {
            return true;
        }
        let header_ok = req.headers().get_all(header::HOST).iter().all(|v| {
            let exact = self.exact.iter().any(|e| **e == *v.as_bytes());
            exact || v.to_str().map(|h| self.allows(h)).unwrap_or(false)
        });
        let authority_ok = req
            .uri()
            .authority()
            .is_none_or(|a| self.allows(a.as_str()));
        header_ok && authority_ok
    }

    /// What the listener answers for, for the start-up log.
    pub fn describe(&self) -> String {
        if self.any {
            return "any Host".to_string();
        }
        let ips = self.ips.iter().map(|ip| match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        });
        self.names
            .iter()
            .cloned()
            .chain(ips)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The host part of a `Host` value, lower case, without port, brackets or trailing dot;
/// `None` when it is not a well-formed `host[:port]`.
fn name_of(value: &str) -> Option<String> {
    let value = value.trim();
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        inner.parse::<Ipv6Addr>().ok()?;
        (inner, after.strip_prefix(':'))
    } else {
        match value.matches(':').count() {
            0 => (value, None),
            1 => {
                let (h, p) = value.split_once(':')?;
                (h, Some(p))
            }
            // A bare IPv6 address (not valid in Host, but unambiguous).
            _ => {
                value.parse::<Ipv6Addr>().ok()?;
                (value, None)
            }
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    let well_formed = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    well_formed.then(|| host.to_ascii_lowercase())
}

/// `421 Misdirected Request` with the JSON error shape (the Host is not echoed).
pub(crate) fn misdirected() -> Response<Body> {
    let body = r#"{"error":{"code":"misdirected_request","message":"this server does not answer for the name in the Host header; if it is reached by that name on purpose, add the name to allowed_hosts (TOKENLB_ALLOWED_HOSTS)"}}"#;
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::MISDIRECTED_REQUEST;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(port: u16) -> Hosts {
        Hosts::for_listener(
            SocketAddr::from(([127, 0, 0, 1], port)),
            &["tokens.internal".to_string(), "10.1.2.3:443".to_string()],
        )
    }

    #[test]
    fn own_names_pass_with_or_without_port_and_in_any_case() {
        let h = local(8000);
        for ok in [
            "localhost",
            "localhost:8000",
            "LOCALHOST:8000",
            "localhost.",
            "127.0.0.1",
            "127.0.0.1:8000",
            "[::1]",
            "[::1]:8000",
            "[0:0:0:0:0:0:0:1]:8000",
            "tokens.internal",
            "Tokens.Internal:9443",
            "10.1.2.3",
        ] {
            assert!(h.allows(ok), "{ok} must pass");
        }
    }

    #[test]
    fn the_byte_compare_passes_only_what_the_parse_passes() {
        for h in [
            local(8000),
            Hosts::for_listener(SocketAddr::from(([0, 0, 0, 0], 80)), &[]),
        ] {
            assert!(h.exact.len() >= 6, "{:?}", h.exact);
            for e in &h.exact {
                let text = std::str::from_utf8(e).unwrap();
                assert!(h.allows(text), "{text}");
            }
        }
    }

    #[test]
    fn foreign_and_malformed_names_are_refused() {
        let h = local(8000);
        for bad in [
            "evil.example",
            "evil.example:8000",
            "localhost.evil.example",
            "127.0.0.2",
            "[::2]:8000",
            "[::1",
            "localhost:80a",
            "localhost:",
            "",
            "local host",
            "10.1.2.4",
        ] {
            assert!(!h.allows(bad), "{bad:?} must be refused");
        }
    }

    #[test]
    fn a_specific_listen_address_and_a_star_entry() {
        let h = Hosts::for_listener(SocketAddr::from(([192, 168, 7, 9], 8000)), &[]);
        assert!(h.allows("192.168.7.9:8000"));
        assert!(!h.allows("example.com"));
        let any = Hosts::for_listener(SocketAddr::from(([127, 0, 0, 1], 1)), &["*".into()]);
        assert!(any.allows("example.com"));
    }

    #[test]
    fn a_wildcard_listen_answers_for_the_interfaces() {
        let h = Hosts::for_listener(SocketAddr::from(([0, 0, 0, 0], 8000)), &[]);
        for i in if_addrs::get_if_addrs().unwrap_or_default() {
            let ip = match i.ip() {
                IpAddr::V6(v6) => format!("[{v6}]"),
                IpAddr::V4(v4) => v4.to_string(),
            };
            assert!(h.allows(&ip), "{ip}");
        }
        assert!(!h.allows("evil.example"));
    }

    #[test]
    fn header_and_authority_are_both_checked() {
        let h = local(8000);
        let req = |host: &str, uri: &str| {
            Request::builder()
                .uri(uri)
                .header(header::HOST, host)
                .body(())
                .unwrap()
        };
        assert!(h.allows_request(&req("localhost:8000", "/api")));
        assert!(!h.allows_request(&req("evil.example", "/api")));
        assert!(!h.allows_request(&req("localhost", "http://evil.example/api")));
        let no_host = Request::builder().uri("/api").body(()).unwrap();
        assert!(h.allows_request(&no_host));
    }
}
