//! Where the HTTP client may connect: a DNS resolver that resolves with the system resolver and
//! drops link-local addresses (169.254.0.0/16, fe80::/10: cloud instance metadata), and a redirect
//! policy that refuses redirects to link-local literal addresses. So no connection is opened to a
//! link-local address unless the server allows it, whatever a name resolves to when the request is
//! sent. Literal addresses in a base URL are refused by the SCIM client before it sends.

use crate::domain::Error;
use crate::domain::address::{is_link_local, link_local_in_url, refusal};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::SocketAddr;

/// Resolves target host names with the system resolver, keeping link-local addresses only when
/// allowed.
#[derive(Debug, Clone, Copy)]
pub struct TargetResolver {
    /// Keep link-local addresses.
    pub allow_link_local: bool,
}

impl Resolve for TargetResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_link_local;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept = allowed_addresses(&host, found, allow)?;
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// The addresses `host` resolved to that may be connected to: all of them when `allow_link_local`,
/// else those that are not link-local. When every address was link-local, the refusal (a
/// validation error of the base URL, naming the address and the setting).
pub fn allowed_addresses(host: &str, found: Vec<SocketAddr>, allow_link_local: bool) -> Result<Vec<SocketAddr>, Error> {
    if allow_link_local {
        return Ok(found);
    }
    let first_refused = found.iter().find(|a| is_link_local(a.ip())).map(SocketAddr::ip);
    let kept: Vec<SocketAddr> = found.into_iter().filter(|a| !is_link_local(a.ip())).collect();
    match first_refused {
        Some(address) if kept.is_empty() => Err(Error::invalid(
            "base_url",
            refusal(
                &format!("the hub refuses to connect to {host}: it resolves to"),
                address,
            ),
        )),
        _ => Ok(kept),
    }
}

/// Follows up to 10 redirects, refusing one to a link-local literal address unless allowed
/// (redirects to names go through [`TargetResolver`]).
pub fn redirect_policy(allow_link_local: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 10 {
            return attempt.error("too many redirects");
        }
        match link_local_in_url(attempt.url().as_str()) {
            Some(address) if !allow_link_local => {
                let message = refusal("the hub refuses to follow a redirect to", address);
                attempt.error(Error::invalid("base_url", message))
            }
            _ => attempt.follow(),
        }
    })
}

/// The hub's refusal to connect somewhere, when it is the cause of `error`.
pub fn refusal_cause(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(Error::Validation { message, .. }) = e.downcast_ref::<Error>() {
            return Some(message.clone());
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| SocketAddr::new(a.parse().unwrap(), 0)).collect()
    }

    #[test]
    fn a_name_resolving_only_to_link_local_is_refused() {
        for found in [
            addresses(&["169.254.169.254"]),
            addresses(&["fe80::1", "169.254.1.1"]),
            addresses(&["::ffff:169.254.169.254"]),
        ] {
            let error = allowed_addresses("metadata.internal", found, false).unwrap_err();
            assert!(error.to_string().contains("link-local"), "{error}");
            assert!(error.to_string().contains("metadata.internal"), "{error}");
            assert!(refusal_cause(&error).is_some());
        }
    }

    #[test]
    fn link_local_addresses_are_dropped_from_a_mix() {
        let kept = allowed_addresses(
            "mixed.example",
            addresses(&["169.254.169.254", "127.0.0.1", "fe80::2"]),
            false,
        )
        .unwrap();
        assert_eq!(kept, addresses(&["127.0.0.1"]));
    }

    #[test]
    fn the_setting_keeps_everything() {
        let found = addresses(&["169.254.169.254", "fe80::1"]);
        assert_eq!(allowed_addresses("m", found.clone(), true).unwrap(), found);
        assert_eq!(
            allowed_addresses("local", addresses(&["127.0.0.1", "::1"]), false).unwrap(),
            addresses(&["127.0.0.1", "::1"])
        );
    }

    #[tokio::test]
    async fn the_resolver_resolves_loopback_names() {
        let resolver = TargetResolver {
            allow_link_local: false,
        };
        let name: Name = "localhost".parse().unwrap();
        let found: Vec<SocketAddr> = resolver.resolve(name).await.unwrap().collect();
        assert!(found.iter().all(|a| a.ip().is_loopback()), "{found:?}");
    }
}
