-- Administrator accounts with roles, console sessions, failed-login throttling and the audit log.
-- `admins.role` is 'administrator' (everything) or 'auditor' (reads, changes nothing, sees no
-- secret). A disabled administrator can neither log in nor use the API tokens issued to them.
ALTER TABLE admins ADD COLUMN role TEXT NOT NULL DEFAULT 'administrator';
ALTER TABLE admins ADD COLUMN disabled_at BIGINT;
ALTER TABLE admins ADD COLUMN failed_logins BIGINT NOT NULL DEFAULT 0;
ALTER TABLE admins ADD COLUMN locked_until BIGINT;

-- The administrator a token acts for; its role is theirs. NULL: issued by the server itself
-- (`provisio admin-token`, which needs the store's files or URL) or by a token that had none.
ALTER TABLE api_tokens ADD COLUMN admin_id TEXT;

-- Console sessions, by the SHA-256 of the cookie's secret. The CSRF token is the session's own.
CREATE TABLE admin_sessions (
    id_hash TEXT PRIMARY KEY,
    admin_id TEXT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    remote_addr TEXT
);
CREATE INDEX admin_sessions_admin ON admin_sessions (admin_id);

-- Logins, failures, locks, logouts and account changes, newest last.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    occurred_at BIGINT NOT NULL,
    event TEXT NOT NULL,
    username TEXT NOT NULL,
    actor TEXT NOT NULL,
    remote_addr TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_time ON audit_log (occurred_at, id);
