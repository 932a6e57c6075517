//! Forwarded headers, trusted only from the configured reverse proxies.
//!
//! Behind a proxy that ends TLS, the console's Secure cookies and the SCIM base URL follow
//! `X-Forwarded-Proto` and `X-Forwarded-Host`. Anyone could send those headers, so the listener
//! removes them from every request that does not come from a listed proxy address, and a request
//! that arrived over the hub's own TLS says `https` whatever it claims. Handlers then read the
//! headers as facts.

use axum::http::{HeaderMap, HeaderValue};
use std::net::IpAddr;
use std::str::FromStr;

/// The forwarded headers the hub acts on.
const FORWARDED: [&str; 2] = ["x-forwarded-proto", "x-forwarded-host"];

/// Addresses and networks (`10.0.0.5`, `10.0.0.0/8`, `fd00::/8`) of trusted reverse proxies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Network>);

/// One address or network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("'{text}' is not an IP address or network (e.g. 10.0.0.0/8)"))?;
        let longest = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => longest,
            Some(bits) => bits
                .parse::<u8>()
                .ok()
                .filter(|bits| *bits <= longest)
                .ok_or_else(|| format!("'{text}': the prefix length must be 0 to {longest}"))?,
        };
        Ok(Network { address, prefix })
    }
}

impl Network {
    fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.address, ip) {
            // An IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d.
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            _ => ip,
        };
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl TrustedProxies {
    /// The proxies of `entries`.
    pub fn new(entries: Vec<Network>) -> Self {
        TrustedProxies(entries)
    }

    /// Whether `ip` is one of them.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(ip))
    }
}

/// Removes the forwarded headers of a request that does not come from a trusted proxy, and
/// marks a request that came over the hub's own TLS as `https`.
pub fn sanitize(headers: &mut HeaderMap, peer: IpAddr, over_tls: bool, trusted: &TrustedProxies) {
    if !trusted.contains(peer) {
        for name in FORWARDED {
            headers.remove(name);
        }
    }
    if over_tls {
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|t| t.parse().unwrap()).collect())
    }

    #[test]
    fn addresses_and_networks_match_what_they_cover() {
        let trusted = proxies(&["10.0.0.0/8", "192.168.1.7", "fd00::/8"]);
        assert!(trusted.contains("10.200.3.4".parse().unwrap()));
        assert!(trusted.contains("192.168.1.7".parse().unwrap()));
        assert!(!trusted.contains("192.168.1.8".parse().unwrap()));
        assert!(trusted.contains("fd12::1".parse().unwrap()));
        assert!(!trusted.contains("fe80::1".parse().unwrap()));
        assert!(trusted.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(proxies(&["0.0.0.0/0"]).contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "proxy.example", "10.0.0.0/x", "fd00::/129"] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_headers_stay_only_from_trusted_proxies() {
        let trusted = proxies(&["10.0.0.1"]);
        let forwarded = || {
            let mut headers = HeaderMap::new();
            headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
            headers.insert("x-forwarded-host", HeaderValue::from_static("hub.example"));
            headers
        };
        let mut from_proxy = forwarded();
        sanitize(&mut from_proxy, "10.0.0.1".parse().unwrap(), false, &trusted);
        assert_eq!(from_proxy["x-forwarded-host"], "hub.example");
        let mut from_anyone = forwarded();
        sanitize(&mut from_anyone, "10.0.0.2".parse().unwrap(), false, &trusted);
        assert!(from_anyone.get("x-forwarded-proto").is_none());
        assert!(from_anyone.get("x-forwarded-host").is_none());
        let mut over_tls = HeaderMap::new();
        over_tls.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        sanitize(&mut over_tls, "10.0.0.2".parse().unwrap(), true, &trusted);
        assert_eq!(over_tls["x-forwarded-proto"], "https");
    }
}
