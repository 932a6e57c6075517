-- Imports and reconciliations: runs that read what an app's target holds. Each app keeps its
-- import and reconciliation settings (match rule, how far fixes go, schedule) and when each
-- runs next on its own.
ALTER TABLE apps ADD COLUMN sync_settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE apps ADD COLUMN next_import_at BIGINT;
ALTER TABLE apps ADD COLUMN next_reconcile_at BIGINT;

CREATE TABLE target_runs (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    dry_run BIGINT NOT NULL,
    apply TEXT NOT NULL,
    status TEXT NOT NULL,
    cause TEXT NOT NULL,
    accounts_read BIGINT NOT NULL,
    counts TEXT NOT NULL,
    error TEXT,
    warning TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT
);
CREATE INDEX target_runs_app ON target_runs (app_id, created_at);

-- One row per outcome of a run: an account's import outcome or one difference found.
CREATE TABLE target_run_items (
    run_id TEXT NOT NULL REFERENCES target_runs (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    target_id TEXT,
    target_username TEXT,
    user_id TEXT,
    detail TEXT NOT NULL,
    applied BIGINT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Accounts an import could not link on its own, until an administrator links or ignores them.
CREATE TABLE import_conflicts (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    target_id TEXT NOT NULL,
    target_username TEXT,
    account TEXT NOT NULL,
    candidates TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    resolved_user TEXT,
    resolved_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (app_id, target_id)
);
CREATE INDEX import_conflicts_status ON import_conflicts (app_id, status);
