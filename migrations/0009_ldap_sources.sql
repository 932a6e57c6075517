-- LDAP and Active Directory sources: where the directory is read from, which hub users and
-- groups each source owns (by the entries' unique ids), and the runs (syncs and connection
-- tests) queued for the source runner.
CREATE TABLE ldap_sources (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    settings TEXT NOT NULL,
    password_ciphertext TEXT NOT NULL,
    -- The highest change marker (modifyTimestamp or uSNChanged) the last full or incremental
    -- sync saw; an incremental sync reads entries changed since.
    watermark TEXT,
    next_sync_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One row per entry a source owns: a hub user or group, keyed by the entry's unique id.
CREATE TABLE ldap_links (
    source_id TEXT NOT NULL REFERENCES ldap_sources (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    ldap_id TEXT NOT NULL,
    hub_id TEXT NOT NULL,
    dn TEXT NOT NULL,
    gone_since BIGINT,
    PRIMARY KEY (source_id, kind, ldap_id)
);
CREATE UNIQUE INDEX ldap_links_hub ON ldap_links (kind, hub_id);

CREATE TABLE ldap_runs (
    id TEXT PRIMARY KEY,
    source_id TEXT NOT NULL REFERENCES ldap_sources (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    mode TEXT NOT NULL,
    dry_run BIGINT NOT NULL,
    status TEXT NOT NULL,
    cause TEXT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    counts TEXT NOT NULL,
    error TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT
);
CREATE INDEX ldap_runs_queue ON ldap_runs (status, created_at);
CREATE INDEX ldap_runs_source ON ldap_runs (source_id, created_at);
