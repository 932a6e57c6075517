//! Encryption at rest for secrets the hub must be able to read back (app bearer tokens):
//! XChaCha20-Poly1305 with a 256-bit key from a key file, and the record's id as associated data
//! so that a ciphertext cannot be moved to another record.

use crate::domain::{Error, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use secrecy::SecretString;
use std::path::Path;

const VERSION_PREFIX: &str = "v1:";

/// The key that encrypts app tokens. Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct SecretKey {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

impl SecretKey {
    /// Builds a key from its base64 text (32 bytes).
    pub fn from_base64(text: &str) -> Result<Self> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| Error::Config("the secret key is not valid base64".into()))?;
        let key =
            Key::try_from(bytes.as_slice()).map_err(|_| Error::Config("the secret key must be 32 bytes".into()))?;
        Ok(Self {
            cipher: XChaCha20Poly1305::new(&key),
        })
    }

    /// Reads the key file, creating it with a new random key (mode 0600) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
                }
                let key = Key::generate();
                let text = STANDARD.encode(key.as_slice());
                write_private(path, &text)?;
                tracing::info!(path = %path.display(), "created a new secret key for app tokens");
                Self::from_base64(&text)
            }
            Err(e) => Err(Error::Config(format!(
                "cannot read the secret key file {}: {e}",
                path.display()
            ))),
        }
    }

    /// Encrypts `plaintext` bound to `context` (the owning record's id).
    pub fn encrypt(&self, plaintext: &str, context: &str) -> Result<String> {
        let nonce = XNonce::generate();
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| Error::Storage("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{VERSION_PREFIX}{}", STANDARD.encode(out)))
    }

    /// Decrypts what [`SecretKey::encrypt`] produced for the same `context`.
    pub fn decrypt(&self, ciphertext: &str, context: &str) -> Result<SecretString> {
        let refused = || {
            Error::Config(
                "a stored app token cannot be decrypted with this secret key: was the key file replaced?".into(),
            )
        };
        let body = ciphertext.strip_prefix(VERSION_PREFIX).ok_or_else(refused)?;
        let bytes = STANDARD.decode(body).map_err(|_| refused())?;
        if bytes.len() < 24 {
            return Err(refused());
        }
        let (nonce, sealed) = bytes.split_at(24);
        let nonce = XNonce::try_from(nonce).map_err(|_| refused())?;
        let plain = self
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| refused())?;
        String::from_utf8(plain).map(SecretString::from).map_err(|_| refused())
    }
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| Error::Config(format!("cannot create the key file {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn round_trip_and_binding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let key = SecretKey::load_or_create(&path).unwrap();
        let sealed = key.encrypt("token-123", "app-1").unwrap();
        assert!(!sealed.contains("token-123"));
        assert_eq!(key.decrypt(&sealed, "app-1").unwrap().expose_secret(), "token-123");
        assert!(key.decrypt(&sealed, "app-2").is_err(), "bound to its record");
        let again = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(again.decrypt(&sealed, "app-1").unwrap().expose_secret(), "token-123");
        assert!(!format!("{key:?}").contains(&std::fs::read_to_string(&path).unwrap()));
    }
}
