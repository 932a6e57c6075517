//! HTTPS: the certificate chain and private key read from PEM files, served with rustls, and read
//! again when the files change on disk (a renewed certificate is served without a restart). A
//! pair that cannot be read leaves the one in use in place, and the log says why.

use crate::domain::{Error, Result};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often the files are looked at for a change.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// The certificate chain and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The certificate in use, swapped when its files change.
#[derive(Debug)]
pub struct ReloadingCertificate {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(PoisonError::into_inner).clone())
    }
}

impl ReloadingCertificate {
    /// Reads the pair; refuses files that are missing, unreadable, or do not belong together.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>> {
        let current = read_pair(&files)?;
        Ok(Arc::new(ReloadingCertificate {
            files,
            current: RwLock::new(current),
        }))
    }

    /// The rustls acceptor serving this certificate (HTTP/1.1 over TLS 1.2 and 1.3).
    pub fn acceptor(self: &Arc<Self>) -> Result<tokio_rustls::TlsAcceptor> {
        let provider = CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }

    /// Looks at the files every second until `shutdown`, and serves a changed pair once it reads
    /// whole.
    pub fn spawn_reloader(self: &Arc<Self>, tasks: &TaskTracker, shutdown: CancellationToken) {
        let this = self.clone();
        tasks.spawn(async move {
            let mut seen = stamp(&this.files);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(LOOK_EVERY) => {},
                }
                let now = stamp(&this.files);
                if now == seen {
                    continue;
                }
                match read_pair(&this.files) {
                    Ok(pair) => {
                        *this.current.write().unwrap_or_else(PoisonError::into_inner) = pair;
                        seen = now;
                        tracing::info!(cert = %this.files.cert.display(), "TLS certificate reloaded");
                    }
                    // A pair being written (the key before the certificate, say) is tried again
                    // at the next look; the log says so once per change.
                    Err(e) => {
                        seen = now;
                        tracing::warn!(error = %e, "TLS certificate changed on disk but cannot be used; serving the previous one");
                    }
                }
            }
        });
    }
}

/// When each file was last modified, and its size.
fn stamp(files: &TlsFiles) -> [Option<(SystemTime, u64)>; 2] {
    let of = |path: &Path| {
        std::fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    };
    [of(&files.cert), of(&files.key)]
}

fn read_pair(files: &TlsFiles) -> Result<Arc<CertifiedKey>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| Error::Config(format!("cannot read the TLS certificate {}: {e}", files.cert.display())))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Config(format!("the TLS certificate {} is not PEM: {e}", files.cert.display())))?;
    if chain.is_empty() {
        return Err(Error::Config(format!("{} holds no certificate", files.cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| Error::Config(format!("cannot read the TLS private key {}: {e}", files.key.display())))?;
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
        Error::Config(format!(
            "the TLS key {} does not fit the certificate {}: {e}",
            files.key.display(),
            files.cert.display()
        ))
    })?;
    Ok(Arc::new(certified))
}
