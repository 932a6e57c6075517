//! The LDAP client of the identity sources against a real OpenLDAP server (a private slapd per
//! test): paged reads of a directory larger than the server's size limit, entries keyed by
//! `entryUUID`, groups with their members, the planner's first sync of what was read, and a
//! clear error for each way a source can be wrong (password, address, base DN, filter, unique id).

mod common;

use common::slapd::{self, Slapd};
use provisio::domain::Error;
use provisio::domain::ldap::plan::{Current, GroupStep, UserStep, plan_sync};
use provisio::domain::ldap::{LdapPreset, LdapSettings};
use provisio::sources::ldap::Connection;
use secrecy::SecretString;

fn settings(server: &Slapd) -> LdapSettings {
    LdapSettings {
        url: server.url(),
        bind_dn: slapd::READER_DN.into(),
        user_base: slapd::PEOPLE_DN.into(),
        group_base: Some(slapd::GROUPS_DN.into()),
        page_size: 200,
        ..LdapPreset::Openldap.settings()
    }
}

fn reader_password() -> SecretString {
    SecretString::from(slapd::READER_PASSWORD)
}

/// The message of an `Error::LdapServer`, or a panic naming what came instead.
fn ldap_error<T>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::LdapServer(message)) => message,
        Err(other) => panic!("expected an LDAP server error, got {other:?}"),
        Ok(_) => panic!("expected an LDAP server error, got success"),
    }
}

#[tokio::test]
async fn a_directory_larger_than_the_size_limit_is_read_whole_in_pages() {
    let server = Slapd::start();
    let people = 600;
    let ldif: String = (0..people)
        .map(|i| {
            slapd::person_ldif(
                &format!("user{i:04}"),
                "Pat",
                &format!("Person{i}"),
                &format!("user{i:04}@example.org"),
            )
        })
        .collect();
    server.add_bulk(&ldif);
    let members: Vec<String> = ["user0001", "user0002", "user0003"]
        .iter()
        .map(|uid| slapd::person_dn(uid))
        .collect();
    server.add(&slapd::group_ldif("Staff", &members));
    assert!(
        people > slapd::SIZE_LIMIT,
        "the directory must exceed the size limit for paging to matter"
    );

    let settings = settings(&server);
    let mut connection = Connection::open(&settings, &reader_password())
        .await
        .expect("bind as the reader");
    let read = connection.read_source(&settings).await.expect("read the source");
    connection.close().await;

    assert_eq!(read.users.len(), people);
    assert_eq!(read.present_users.len(), people, "every entry has its own entryUUID");
    let first = read
        .users
        .iter()
        .find(|e| e.first("uid") == Some("user0000"))
        .expect("user0000 read");
    assert!(
        uuid::Uuid::parse_str(&first.id).is_ok(),
        "entryUUID is a UUID: {}",
        first.id
    );
    assert_eq!(first.first("mail"), Some("user0000@example.org"));
    assert_eq!(read.groups.len(), 1);
    assert_eq!(read.groups[0].values("member").len(), 3);

    // The first sync of what was read: every person a new user, the group with its three members.
    let plan = plan_sync(&settings, &[], &read, &Current::default(), provisio::domain::now());
    let creates = plan
        .users
        .iter()
        .filter(|s| matches!(s, UserStep::Create { .. }))
        .count();
    assert_eq!(
        creates,
        people,
        "{:?}",
        plan.users.iter().find(|s| !matches!(s, UserStep::Create { .. }))
    );
    assert!(matches!(plan.groups.as_slice(), [GroupStep::Create { name, .. }] if name == "Staff"));
    assert_eq!(plan.memberships.len(), 1);
    assert_eq!(plan.memberships[0].add.len(), 3);
}

#[tokio::test]
async fn each_wrong_setting_gets_a_clear_error() {
    let mut server = Slapd::start();
    server.add(&slapd::person_ldif("ann", "Ann", "Lee", "ann@example.org"));
    let good = settings(&server);

    let message = ldap_error(Connection::open(&good, &SecretString::from("wrong")).await);
    assert!(message.contains("invalid credentials"), "{message}");
    let message = ldap_error(Connection::open(&good, &SecretString::from("")).await);
    assert!(message.contains("empty"), "{message}");

    // A base DN that does not exist.
    let missing_base = LdapSettings {
        user_base: "ou=nobody,dc=example,dc=org".into(),
        ..good.clone()
    };
    let mut connection = Connection::open(&missing_base, &reader_password()).await.expect("bind");
    let message = ldap_error(connection.read_source(&missing_base).await);
    assert!(message.contains("no such object"), "{message}");

    // A filter the parser refuses, before anything is sent.
    let bad_filter = LdapSettings {
        user_filter: "(objectClass=inetOrgPerson".into(),
        ..good.clone()
    };
    let message = ldap_error(connection.read_source(&bad_filter).await);
    assert!(message.contains("not a valid LDAP filter"), "{message}");

    // A unique id attribute the entries do not have.
    let no_unique_id = LdapSettings {
        unique_id: "employeeNumber".into(),
        ..good.clone()
    };
    let message = ldap_error(connection.read_source(&no_unique_id).await);
    assert!(message.contains("has no employeeNumber"), "{message}");
    connection.close().await;

    // The server is down.
    server.stop();
    let message = ldap_error(Connection::open(&good, &reader_password()).await);
    assert!(message.contains("refused the connection"), "{message}");
}

#[tokio::test]
async fn ldaps_and_starttls_trust_the_configured_ca_only() {
    let server = Slapd::start_with_tls();
    server.add(&slapd::person_ldif("ann", "Ann", "Lee", "ann@example.org"));
    let ca = server.ca_pem();
    let read_with = |settings: LdapSettings| async move {
        let mut connection = Connection::open(&settings, &reader_password()).await?;
        let read = connection.read_source(&settings).await;
        connection.close().await;
        read
    };

    // TLS from the start, trusting the test CA.
    let ldaps = LdapSettings {
        url: server.ldaps_url(),
        ca_certificate: Some(ca.clone()),
        ..settings(&server)
    };
    assert_eq!(
        read_with(ldaps.clone()).await.expect("ldaps with the CA").users.len(),
        1
    );
    // StartTLS on the plain port, trusting the test CA.
    let starttls = LdapSettings {
        starttls: true,
        ca_certificate: Some(ca),
        ..settings(&server)
    };
    assert_eq!(
        read_with(starttls.clone())
            .await
            .expect("StartTLS with the CA")
            .users
            .len(),
        1
    );
    // Without the CA the server's certificate is not trusted.
    let message = ldap_error(
        read_with(LdapSettings {
            ca_certificate: None,
            ..ldaps
        })
        .await,
    );
    assert!(message.contains("TLS handshake failed"), "{message}");
    let message = ldap_error(
        read_with(LdapSettings {
            ca_certificate: None,
            ..starttls
        })
        .await,
    );
    assert!(message.contains("TLS"), "{message}");
}
