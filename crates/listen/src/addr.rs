//! Listen addresses as people write them: `127.0.0.1:8000`, `[::1]:8000`, or a host name
//! such as `localhost:8000`, resolved once at start.

use std::net::{SocketAddr, ToSocketAddrs};

/// Parses `IP:PORT`, or resolves `HOST:PORT` (an IPv4 answer is preferred, so `localhost`
/// means 127.0.0.1 as most people expect). The error says what was wrong, in one sentence.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!(
            "{text:?} is not an address: write HOST:PORT, e.g. 127.0.0.1:8000 or localhost:8000"
        ));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!(
            "{text:?} is not an address: write HOST:PORT with a port from 0 to 65535"
        ));
    }
    let found: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host:?}: {e}"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| format!("{host:?} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_host_names() {
        assert_eq!(
            parse_addr("127.0.0.1:8000").unwrap(),
            "127.0.0.1:8000".parse().unwrap()
        );
        assert_eq!(parse_addr("[::1]:80").unwrap(), "[::1]:80".parse().unwrap());
        assert_eq!(
            parse_addr("localhost:18110").unwrap(),
            "127.0.0.1:18110".parse().unwrap()
        );
        assert!(parse_addr("localhost").unwrap_err().contains("HOST:PORT"));
        assert!(parse_addr("localhost:99999").unwrap_err().contains("port"));
        assert!(parse_addr("no-such-host.invalid:80").is_err());
    }
}
