-- The directory, the change log and administrator access.
-- Portable SQL: it runs unchanged on SQLite and PostgreSQL. Times are microseconds since the Unix
-- epoch (BIGINT), booleans are 0/1 (BIGINT), ids are UUID text, documents are JSON text.

CREATE TABLE change_sequence (
    id BIGINT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
INSERT INTO change_sequence (id, last_seq) VALUES (1, 0);

CREATE TABLE change_log (
    seq BIGINT PRIMARY KEY,
    occurred_at BIGINT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    related_id TEXT,
    operation TEXT NOT NULL,
    actor TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX change_log_entity ON change_log (entity_id, seq);
CREATE INDEX change_log_related ON change_log (related_id, seq);

CREATE TABLE attribute_definitions (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    required BIGINT NOT NULL,
    description TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    username_key TEXT NOT NULL UNIQUE,
    given_name TEXT,
    family_name TEXT,
    display_name TEXT,
    display_key TEXT,
    formatted_name TEXT,
    email TEXT,
    email_key TEXT,
    active BIGINT NOT NULL,
    external_id TEXT,
    source TEXT NOT NULL,
    extensions TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX users_email_key ON users (email_key);
CREATE INDEX users_display_key ON users (display_key);
CREATE INDEX users_external_id ON users (external_id);

CREATE TABLE user_attribute_values (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL REFERENCES attribute_definitions (name),
    value TEXT NOT NULL,
    PRIMARY KEY (user_id, name)
);
CREATE INDEX user_attribute_values_name ON user_attribute_values (name);

CREATE TABLE groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    external_id TEXT,
    source TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE admins (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    username_key TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    must_change_password BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
