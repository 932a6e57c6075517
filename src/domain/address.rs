//! Which network addresses apps may live at. Link-local addresses (169.254.0.0/16, fe80::/10, and
//! their IPv4-mapped or IPv4-compatible IPv6 forms) are where clouds answer with instance metadata
//! and credentials, so app base URLs naming them are refused unless the server allows them. The
//! host of a URL is read the way URL parsers (WHATWG, as the HTTP client uses) read it, so
//! `http://2852039166/` or `http://0xa9.0xfe.0xa9.0xfe/` count as 169.254.169.254.

use super::{Error, Result};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is a link-local address (169.254.0.0/16 or fe80::/10, also as an IPv4-mapped or
/// IPv4-compatible IPv6 address).
pub fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local() || v6.to_ipv4().is_some_and(|v4| v4.is_link_local()),
    }
}

/// The address a URL host names literally (`169.254.169.254`, `[fe80::1]`, `2852039166`), or
/// `None` when the host is a name to resolve. `host` is the host part without port or brackets
/// removed: `[fe80::1]` keeps its brackets.
pub fn literal_address(host: &str) -> Option<IpAddr> {
    let host = decoded_host(host)?;
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        // A zone (`fe80::1%eth0`) does not change the address.
        let address = inner.split('%').next().unwrap_or(inner);
        return address.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    whatwg_ipv4(&host).map(IpAddr::V4)
}

/// The host of `url` (`scheme://[user@]host[:port]/...`), brackets kept for IPv6.
pub fn url_host(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    if host_port.starts_with('[') {
        let end = host_port.find(']')?;
        return Some(&host_port[..=end]);
    }
    Some(host_port.split(':').next().unwrap_or(host_port))
}

/// The link-local address `url`'s host names literally, if it does.
pub fn link_local_in_url(url: &str) -> Option<IpAddr> {
    url_host(url).and_then(literal_address).filter(|ip| is_link_local(*ip))
}

/// Explains why a link-local address is refused, naming the setting that allows it.
pub fn refusal(what: &str, address: IpAddr) -> String {
    format!(
        "{what} the link-local address {address} (169.254.0.0/16 or fe80::/10, where cloud instance metadata \
         and credentials are served): such targets are refused unless the server runs with \
         --allow-link-local-targets"
    )
}

/// Refuses an app base URL whose host is a link-local address, unless `allow_link_local`.
/// Host names are not resolved here (no remote work while validating); the HTTP client refuses
/// link-local addresses again when it connects.
pub fn check_base_url_address(url: &str, allow_link_local: bool) -> Result<()> {
    match link_local_in_url(url) {
        Some(address) if !allow_link_local => Err(Error::invalid(
            "base_url",
            format!(
                "'{url}' is not an allowed SCIM base URL: {}",
                refusal("it points to", address)
            ),
        )),
        _ => Ok(()),
    }
}

/// A URL host with its `%XX` escapes decoded (bracketed IPv6 hosts, whose `%` starts a zone id,
/// stay as they are).
fn decoded_host(text: &str) -> Option<String> {
    if !text.contains('%') || text.starts_with('[') {
        return Some(text.to_owned());
    }
    percent_decode(text)
}

/// Decodes `%XX` escapes (as UTF-8); `None` when an escape is malformed or the result is not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Reads a host as the WHATWG URL standard's IPv4 parser does: one to four dot-separated numbers,
/// each decimal, hexadecimal (`0x`) or octal (leading `0`); the last fills the remaining bytes.
fn whatwg_ipv4(host: &str) -> Option<Ipv4Addr> {
    let host = match host.strip_suffix('.') {
        Some(stripped) if !stripped.is_empty() => stripped,
        _ => host,
    };
    let parts: Vec<&str> = host.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let numbers = parts.iter().map(|p| ipv4_number(p)).collect::<Option<Vec<u64>>>()?;
    let (last, init) = numbers.split_last()?;
    if init.iter().any(|n| *n > 255) {
        return None;
    }
    let last_bytes = u32::try_from(4 - init.len()).ok()?;
    if *last >= 256u64.pow(last_bytes) {
        return None;
    }
    let mut value = *last;
    for (i, n) in init.iter().enumerate() {
        value += n << (8 * (3 - i));
    }
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

fn ipv4_number(part: &str) -> Option<u64> {
    if part.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() {
        return Some(0);
    }
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_ranges() {
        for address in [
            "169.254.169.254",
            "169.254.0.1",
            "fe80::1",
            "febf::1",
            "::ffff:169.254.169.254",
            "::169.254.1.1",
        ] {
            assert!(is_link_local(address.parse().unwrap()), "{address}");
        }
        for address in [
            "127.0.0.1",
            "10.0.0.1",
            "169.253.255.255",
            "::1",
            "fec0::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_link_local(address.parse().unwrap()), "{address}");
        }
    }

    #[test]
    fn url_hosts_are_read_like_url_parsers_do() {
        for url in [
            "http://169.254.169.254/scim",
            "http://[fe80::1]/scim",
            "http://[::ffff:169.254.169.254]/",
            "https://u@169.254.169.254:8443/v2",
            "http://2852039166/",
            "http://0xa9.0xfe.0xa9.0xfe/",
            "http://0251.0376.0251.0376/",
            "http://169.254.43518/",
            "http://169.254.169.254./",
            "http://%31%36%39.254.169.254/",
            "http://[fe80::1%25eth0]:80/",
        ] {
            assert!(link_local_in_url(url).is_some(), "{url}");
        }
        for url in [
            "http://127.0.0.1:8080/scim",
            "https://api.monday.com/scim/v2",
            "http://169.254.example.com/",
            "http://[::1]:8080/",
            "http://metadata/",
        ] {
            assert_eq!(link_local_in_url(url), None, "{url}");
        }
    }

    #[test]
    fn base_url_check_follows_the_setting() {
        let error = check_base_url_address("http://169.254.169.254/scim", false).unwrap_err();
        assert!(matches!(&error, Error::Validation { field, .. } if field == "base_url"));
        assert!(error.to_string().contains("link-local"), "{error}");
        assert!(check_base_url_address("http://169.254.169.254/scim", true).is_ok());
        assert!(check_base_url_address("http://127.0.0.1:9000/scim", false).is_ok());
    }
}
