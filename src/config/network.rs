//! How `provisio serve` faces the network: TLS, trusted reverse proxies, connection limits and
//! the request rate limit per token (flags, and their keys in the TOML file).

use super::FileConfig;
use crate::domain::{Error, Result};
use crate::listener::proxy::{Network, TrustedProxies};
use crate::listener::tls::TlsFiles;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Default time a new connection has to send its first request head.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// Default time a kept-alive connection may wait for its next request.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// Default sustained requests per second per token.
pub const DEFAULT_RATE_LIMIT: u32 = 1000;

/// The limit: requests per second per token, with bursts up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second per token; 0 turns the limit off.
    pub per_second: u32,
    /// Requests a token may send at once after a quiet spell.
    pub burst: u32,
}

impl RateLimit {
    /// No limit.
    pub const OFF: RateLimit = RateLimit {
        per_second: 0,
        burst: 0,
    };
}

/// The network flags of `provisio serve`.
#[derive(Debug, Clone, Args, Default)]
pub struct NetworkArgs {
    /// PEM certificate chain to serve HTTPS with (with --tls-key); read again when it changes.
    #[arg(long, env = "PROVISIO_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "PROVISIO_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Address or network of a reverse proxy whose X-Forwarded-Proto and X-Forwarded-Host are
    /// believed (repeat it, or separate with commas). From anyone else they are ignored.
    #[arg(
        long,
        env = "PROVISIO_TRUSTED_PROXY",
        value_name = "ADDR[/BITS]",
        value_delimiter = ','
    )]
    pub trusted_proxy: Vec<String>,
    /// Seconds a new connection has to send its first request head (and finish its TLS
    /// handshake). Default: 10.
    #[arg(long, env = "PROVISIO_HEADER_TIMEOUT", value_name = "SECS")]
    pub header_timeout: Option<u64>,
    /// Seconds a kept-alive connection may wait for its next request. Default: 60.
    #[arg(long, env = "PROVISIO_IDLE_TIMEOUT", value_name = "SECS")]
    pub idle_timeout: Option<u64>,
    /// Connections open at once; when full, the one idle longest (no request in hand) is closed
    /// for a new one. Default: the open-file limit less 256.
    #[arg(long, env = "PROVISIO_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Requests per second per bearer token on /scim/v2 and the admin API (0: no limit).
    /// Default: 1000.
    #[arg(long, env = "PROVISIO_RATE_LIMIT", value_name = "N")]
    pub rate_limit: Option<u32>,
    /// Requests a token may send at once after a quiet spell. Default: twice --rate-limit.
    #[arg(long, env = "PROVISIO_RATE_LIMIT_BURST", value_name = "N")]
    pub rate_limit_burst: Option<u32>,
}

/// The network settings in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// The certificate and key of HTTPS, when it is served.
    pub tls: Option<TlsFiles>,
    /// Reverse proxies whose forwarded headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Time to the first request head.
    pub header_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Connection cap; `None`: derived from the open-file limit at start.
    pub max_connections: Option<usize>,
    /// The request rate limit per token.
    pub rate_limit: RateLimit,
}

impl Default for NetworkConfig {
    /// Plain HTTP, no trusted proxy, the default timeouts, a cap from the file limit, and no rate
    /// limit (the flags' default turns it on: see [`NetworkArgs::resolve`]).
    fn default() -> Self {
        NetworkConfig {
            tls: None,
            trusted_proxies: TrustedProxies::default(),
            header_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS),
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
            max_connections: None,
            rate_limit: RateLimit::OFF,
        }
    }
}

impl NetworkArgs {
    /// The settings from the flags, then the file, then the defaults.
    pub(super) fn resolve(&self, file: &FileConfig) -> Result<NetworkConfig> {
        let cert = self.tls_cert.clone().or_else(|| file.tls_cert.clone());
        let key = self.tls_key.clone().or_else(|| file.tls_key.clone());
        let tls = match (cert, key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => return Err(Error::Config("tls_cert and tls_key are given together".into())),
        };
        let proxies = if self.trusted_proxy.is_empty() {
            file.trusted_proxy.clone().unwrap_or_default()
        } else {
            self.trusted_proxy.clone()
        };
        let proxies = proxies
            .iter()
            .map(|entry| {
                entry
                    .parse::<Network>()
                    .map_err(|e| Error::Config(format!("trusted_proxy: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let seconds =
            |flag: Option<u64>, key: Option<u64>, default: u64, name: &str| match flag.or(key).unwrap_or(default) {
                secs @ 1..=86_400 => Ok(Duration::from_secs(secs)),
                _ => Err(Error::Config(format!("{name} must be from 1 second to 86400 (a day)"))),
            };
        let max_connections = self.max_connections.or(file.max_connections);
        if max_connections == Some(0) {
            return Err(Error::Config("max_connections must be at least 1".into()));
        }
        let per_second = self.rate_limit.or(file.rate_limit).unwrap_or(DEFAULT_RATE_LIMIT);
        let burst = self
            .rate_limit_burst
            .or(file.rate_limit_burst)
            .unwrap_or_else(|| per_second.saturating_mul(2));
        if per_second > 0 && burst == 0 {
            return Err(Error::Config("rate_limit_burst must be at least 1".into()));
        }
        Ok(NetworkConfig {
            tls,
            trusted_proxies: TrustedProxies::new(proxies),
            header_timeout: seconds(
                self.header_timeout,
                file.header_timeout,
                DEFAULT_HEADER_TIMEOUT_SECS,
                "header_timeout",
            )?,
            idle_timeout: seconds(
                self.idle_timeout,
                file.idle_timeout,
                DEFAULT_IDLE_TIMEOUT_SECS,
                "idle_timeout",
            )?,
            max_connections,
            rate_limit: RateLimit { per_second, burst },
        })
    }
}
