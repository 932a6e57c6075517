-- The claim reads each app's oldest due jobs on their own, so that one app's long queue never
-- hides another app's jobs: an index range per app, in due order.
CREATE INDEX sync_jobs_app_ready ON sync_jobs (app_id, status, not_before, id);
