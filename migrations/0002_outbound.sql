-- Outbound provisioning: apps, policies, what each app holds, the durable work queue and the
-- provisioning report. Portable SQL, as in 0001.

CREATE TABLE apps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    base_url TEXT NOT NULL,
    token_ciphertext TEXT NOT NULL,
    features TEXT NOT NULL,
    deprovision TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    mapping TEXT NOT NULL,
    preset TEXT,
    capabilities TEXT,
    connection_status TEXT NOT NULL,
    connection_message TEXT,
    connection_checked_at BIGINT,
    flow TEXT NOT NULL,
    state TEXT NOT NULL,
    state_reason TEXT,
    next_probe_at BIGINT,
    probe_interval_ms BIGINT,
    throttled_until BIGINT,
    consecutive_failures BIGINT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE policies (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    UNIQUE (app_id, group_id)
);
CREATE INDEX policies_group ON policies (group_id);

-- One row per (app, user) the engine has pushed: the target's id and what was last sent.
CREATE TABLE app_accounts (
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    target_username TEXT NOT NULL,
    state TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    pushed TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, user_id)
);
CREATE INDEX app_accounts_user ON app_accounts (user_id);

-- One row per (app, group) pushed to the target.
CREATE TABLE app_groups (
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    pushed_name TEXT NOT NULL,
    pushed_members TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, group_id)
);

-- The durable queue. A job reconciles one subject (a user, a group, or the app's connection) of
-- one app with the directory's current state; at most one pending job per subject.
CREATE TABLE sync_jobs (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    not_before BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    correlation_id TEXT NOT NULL,
    run_id TEXT,
    cause TEXT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX sync_jobs_one_pending ON sync_jobs (app_id, subject_kind, subject_id) WHERE status = 'pending';
CREATE INDEX sync_jobs_ready ON sync_jobs (status, not_before, id);
CREATE INDEX sync_jobs_subject ON sync_jobs (app_id, subject_kind, subject_id, status);
CREATE INDEX sync_jobs_run ON sync_jobs (run_id);

-- How far each consumer has read the change log.
CREATE TABLE change_cursors (
    name TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
INSERT INTO change_cursors (name, last_seq) VALUES ('outbound', 0);

-- Every provisioning action taken or skipped. The *_key columns are lower-cased copies for
-- case-insensitive exact and prefix search; each identifier has an index with the time, so that a
-- search by user, app and time span reads only that user's rows.
CREATE TABLE provisioning_reports (
    id TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    app_id TEXT NOT NULL,
    app_name TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    username TEXT,
    username_key TEXT,
    email TEXT,
    email_key TEXT,
    target_id TEXT,
    operation TEXT NOT NULL,
    outcome TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    http_method TEXT,
    http_path TEXT,
    http_status BIGINT,
    diff TEXT,
    message TEXT,
    request_body TEXT,
    response_body TEXT,
    correlation_id TEXT NOT NULL,
    cause TEXT NOT NULL
);
CREATE INDEX provisioning_reports_time ON provisioning_reports (started_at, id);
CREATE INDEX provisioning_reports_app_time ON provisioning_reports (app_id, started_at);
CREATE INDEX provisioning_reports_subject ON provisioning_reports (subject_id, started_at);
CREATE INDEX provisioning_reports_username ON provisioning_reports (username_key, started_at);
CREATE INDEX provisioning_reports_email ON provisioning_reports (email_key, started_at);
CREATE INDEX provisioning_reports_target ON provisioning_reports (target_id, started_at);
CREATE INDEX provisioning_reports_correlation ON provisioning_reports (correlation_id);
