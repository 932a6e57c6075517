//! The LDAP client of the sources: connect (`ldap://`, `ldaps://`, StartTLS, a CA of the
//! administrator's), bind as the source's service account, and read users and groups with paged
//! searches into [`LdapEntry`] values. Every failure becomes an [`Error::LdapServer`] that says
//! what to check (address, credentials, base DN, filter, unique id), and a read either returns
//! everything or fails: a sync never plans from half a directory.

use crate::domain::ldap::plan::SourceRead;
use crate::domain::ldap::{ChangeMarker, LdapEntry, LdapSettings};
use crate::domain::{Error, Result};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long connecting (TCP, TLS, StartTLS) and each operation may take.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// Checks a search filter with the client's own parser, so that a bad filter is refused when the
/// source is saved, not at its first sync.
pub fn check_filter(field: &str, filter: &str) -> Result<()> {
    ldap3::parse_filter(filter)
        .map(|_| ())
        .map_err(|_| Error::invalid(field, format!("'{filter}' is not a valid LDAP filter (RFC 4515)")))
}

/// An open, bound connection.
pub struct Connection {
    ldap: Ldap,
}

impl Connection {
    /// Connects to the source's server and binds with `password`.
    pub async fn open(settings: &LdapSettings, password: &SecretString) -> Result<Self> {
        if password.expose_secret().is_empty() {
            // An empty password makes a simple bind anonymous (RFC 4513 §5.1.2), which some
            // servers accept: never bind so.
            return Err(Error::LdapServer("the bind password is empty".into()));
        }
        let mut conn_settings = LdapConnSettings::new()
            .set_conn_timeout(TIMEOUT)
            .set_starttls(settings.starttls);
        if let Some(pem) = &settings.ca_certificate {
            conn_settings = conn_settings.set_config(tls_config(pem)?);
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(conn_settings, &settings.url)
            .await
            .map_err(|e| Error::LdapServer(format!("cannot connect to {}: {}", settings.url, describe(&e))))?;
        // The connection's own task: it ends when the connection closes.
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection ended");
            }
        });
        ldap.with_timeout(TIMEOUT)
            .simple_bind(&settings.bind_dn, password.expose_secret())
            .await
            .and_then(|result| result.success())
            .map_err(|e| Error::LdapServer(format!("binding as {} failed: {}", settings.bind_dn, describe(&e))))?;
        Ok(Self { ldap })
    }

    /// Every entry below `base` that `filter` matches, with `attributes`, read in pages of
    /// `page_size`. Each entry must carry `unique_id`.
    pub async fn search(
        &mut self,
        base: &str,
        filter: &str,
        attributes: &[String],
        page_size: u32,
        unique_id: &str,
    ) -> Result<Vec<LdapEntry>> {
        let failed =
            |e: LdapError| Error::LdapServer(format!("searching {base} for {filter} failed: {}", describe(&e)));
        let adapters: Vec<Box<dyn Adapter<'static, String, Vec<String>>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(i32::try_from(page_size).unwrap_or(i32::MAX))),
        ];
        let mut stream = self
            .ldap
            .with_timeout(TIMEOUT)
            .streaming_search_with(adapters, base, Scope::Subtree, filter, attributes.to_vec())
            .await
            .map_err(failed)?;
        let mut entries = Vec::new();
        while let Some(entry) = stream.next().await.map_err(failed)? {
            entries.push(entry_of(SearchEntry::construct(entry), unique_id)?);
        }
        stream.finish().await.success().map_err(failed)?;
        Ok(entries)
    }

    /// Reads the users and (when the source has a group base) the groups a sync compares.
    pub async fn read_source(&mut self, settings: &LdapSettings) -> Result<SourceRead> {
        let users = self
            .search(
                &settings.user_base,
                &settings.user_filter,
                &settings.user_attributes(),
                settings.page_size,
                &settings.unique_id,
            )
            .await?;
        let groups = match &settings.group_base {
            Some(base) => {
                self.search(
                    base,
                    &settings.group_filter,
                    &settings.group_attributes(),
                    settings.page_size,
                    &settings.unique_id,
                )
                .await?
            }
            None => Vec::new(),
        };
        Ok(SourceRead {
            present_users: users.iter().map(|e| (e.id.clone(), e.dn.clone())).collect(),
            present_groups: groups.iter().map(|e| (e.id.clone(), e.dn.clone())).collect(),
            users,
            groups,
            groups_read: settings.group_base.is_some(),
        })
    }

    /// Reads what changed since `since` (the source's change marker): the users and groups
    /// changed (whole), and every entry's unique id and DN, so that the plan sees who is gone.
    pub async fn read_changes(
        &mut self,
        settings: &LdapSettings,
        marker: ChangeMarker,
        since: &str,
    ) -> Result<SourceRead> {
        let ids_only = [settings.unique_id.clone()];
        let users = self
            .search(
                &settings.user_base,
                &marker.changed_since(&settings.user_filter, since),
                &settings.user_attributes(),
                settings.page_size,
                &settings.unique_id,
            )
            .await?;
        let present_users = self
            .search(
                &settings.user_base,
                &settings.user_filter,
                &ids_only,
                settings.page_size,
                &settings.unique_id,
            )
            .await?;
        // Nested groups need every group's members to expand a changed one: read them all.
        let group_filter = if settings.nested_groups {
            settings.group_filter.clone()
        } else {
            marker.changed_since(&settings.group_filter, since)
        };
        let (groups, present_groups) = match &settings.group_base {
            Some(base) => (
                self.search(
                    base,
                    &group_filter,
                    &settings.group_attributes(),
                    settings.page_size,
                    &settings.unique_id,
                )
                .await?,
                self.search(
                    base,
                    &settings.group_filter,
                    &ids_only,
                    settings.page_size,
                    &settings.unique_id,
                )
                .await?,
            ),
            None => (Vec::new(), Vec::new()),
        };
        Ok(SourceRead {
            present_users: present_users.into_iter().map(|e| (e.id, e.dn)).collect(),
            present_groups: present_groups.into_iter().map(|e| (e.id, e.dn)).collect(),
            users,
            groups,
            groups_read: settings.group_base.is_some(),
        })
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }
}

/// An entry with its unique id read; `Err` when it has none (a wrong unique id setting would
/// otherwise make every entry look new).
fn entry_of(entry: SearchEntry, unique_id: &str) -> Result<LdapEntry> {
    let id = unique_id_of(&entry, unique_id).ok_or_else(|| {
        Error::LdapServer(format!(
            "the entry {} has no {unique_id}, the unique id attribute: check the source's unique_id setting \
             (entryUUID on OpenLDAP, objectGUID on Active Directory)",
            entry.dn
        ))
    })?;
    let mut attributes: HashMap<String, Vec<String>> = HashMap::with_capacity(entry.attrs.len());
    for (name, values) in entry.attrs {
        attributes.entry(name.to_ascii_lowercase()).or_default().extend(values);
    }
    Ok(LdapEntry {
        dn: entry.dn,
        id,
        attributes,
    })
}

/// The unique id as text. `objectGUID` is 16 bytes in Microsoft's mixed-endian order, shown as
/// the usual GUID text; other attributes are taken as text.
fn unique_id_of(entry: &SearchEntry, unique_id: &str) -> Option<String> {
    let named = |name: &String| name.eq_ignore_ascii_case(unique_id);
    let bytes: Option<Vec<u8>> = entry
        .bin_attrs
        .iter()
        .find(|(name, _)| named(name))
        .and_then(|(_, values)| values.first().cloned())
        .or_else(|| {
            entry
                .attrs
                .iter()
                .find(|(name, _)| named(name))
                .and_then(|(_, values)| values.first())
                .map(|value| value.as_bytes().to_vec())
        });
    let bytes = bytes.filter(|b| !b.is_empty())?;
    if unique_id.eq_ignore_ascii_case("objectGUID") && bytes.len() == 16 {
        return uuid::Uuid::from_slice_le(&bytes).ok().map(|id| id.to_string());
    }
    match String::from_utf8(bytes) {
        Ok(text) => Some(text.trim().to_owned()).filter(|t| !t.is_empty()),
        Err(e) => Some(e.into_bytes().iter().map(|b| format!("{b:02x}")).collect()),
    }
}

/// A TLS configuration that trusts the CA certificates in `pem` (and only those).
fn tls_config(pem: &str) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let invalid = |message: String| Error::invalid("ca_certificate", message);
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let certificate = certificate.map_err(|e| invalid(format!("is not PEM: {e}")))?;
        roots
            .add(certificate)
            .map_err(|e| invalid(format!("holds a certificate that cannot be used: {e}")))?;
    }
    if roots.is_empty() {
        return Err(invalid("holds no CERTIFICATE block".into()));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Checks that `pem` holds usable CA certificates (when a source is saved).
pub fn check_ca_certificate(pem: &str) -> Result<()> {
    tls_config(pem).map(|_| ())
}

/// An LDAP failure in the administrator's words.
fn describe(error: &LdapError) -> String {
    use std::io::ErrorKind;
    match error {
        LdapError::Io { source } => {
            if let Some(tls) = source.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                return format!("the TLS handshake failed: {tls}");
            }
            match source.kind() {
                ErrorKind::ConnectionRefused => {
                    "the server refused the connection (is it running, and is this its port?)".into()
                }
                ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset => {
                    "the server closed the connection (TLS on a plain port, or plain on a TLS port?)".into()
                }
                _ => format!("network error: {source}"),
            }
        }
        LdapError::Timeout { .. } => format!("no answer within {} s", TIMEOUT.as_secs()),
        LdapError::FilterParsing => "the filter is not a valid LDAP filter".into(),
        LdapError::UrlParsing { .. } | LdapError::UnknownScheme(_) => "the URL is not a valid LDAP URL".into(),
        LdapError::DNSName { .. } => "the host name cannot be used for TLS".into(),
        LdapError::LdapResult { result } => {
            let text = if result.text.is_empty() {
                String::new()
            } else {
                format!(" ({})", result.text)
            };
            match result.rc {
                49 => format!("invalid credentials: wrong bind DN or password{text}"),
                32 => format!("no such object: the base DN does not exist{text}"),
                50 => format!("insufficient access: the bind account may not read this{text}"),
                4 => format!("the server's size limit was exceeded (is paging allowed?){text}"),
                8 | 13 => format!("the server requires TLS (use ldaps:// or StartTLS){text}"),
                rc => format!("the server answered {rc}{text}"),
            }
        }
        LdapError::OpSend { .. } | LdapError::ResultRecv { .. } | LdapError::EndOfStream => {
            "the connection was lost".into()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_checked_by_the_parser() {
        assert!(check_filter("user_filter", "(&(objectClass=person)(uid=*))").is_ok());
        assert!(matches!(
            check_filter("user_filter", "(objectClass=person"),
            Err(Error::Validation { field, .. }) if field == "user_filter"
        ));
    }

    #[test]
    fn object_guids_read_as_microsoft_guids() {
        let mut entry = SearchEntry {
            dn: "CN=x".into(),
            attrs: HashMap::new(),
            bin_attrs: HashMap::new(),
        };
        // 33221100-5544-7766-8899-aabbccddeeff in AD's byte order.
        let bytes = vec![
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
        ];
        entry.bin_attrs.insert("objectGUID".into(), vec![bytes]);
        assert_eq!(
            unique_id_of(&entry, "objectguid").as_deref(),
            Some("33221100-5544-7766-8899-aabbccddeeff")
        );
        assert_eq!(unique_id_of(&entry, "entryUUID"), None);
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        assert!(matches!(
            check_ca_certificate("not a certificate"),
            Err(Error::Validation { field, .. }) if field == "ca_certificate"
        ));
    }
}
