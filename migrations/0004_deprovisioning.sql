-- Deprovisioning per event: when an account was deactivated and why its user lost access
-- ('unassigned', 'deactivated' or 'deleted'), so that a deactivated account is deleted only by a
-- new event whose choice is 'delete' or by the app's deletion after N days. `apps.deprovision`
-- now holds the per-event settings as JSON (a bare 'deactivate' or 'delete' still reads as that
-- choice for every event).
ALTER TABLE app_accounts ADD COLUMN deactivated_at BIGINT;
ALTER TABLE app_accounts ADD COLUMN lost_access TEXT;
UPDATE app_accounts SET deactivated_at = updated_at WHERE state = 'deactivated';
CREATE INDEX app_accounts_deactivated ON app_accounts (state, deactivated_at);
