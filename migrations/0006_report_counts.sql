-- The console's dashboard counts provisioning actions per hour by outcome. This index holds the
-- hour (whole hours since the epoch: started_at in microseconds divided by 3,600,000,000), the
-- outcome and the time itself, so that the count over a span of hours reads only this index, in
-- the order of its groups (no table rows, no sorting), on SQLite and PostgreSQL alike. Queries
-- must spell the expression exactly as here: `started_at / 3600000000`.
CREATE INDEX provisioning_reports_hour ON provisioning_reports ((started_at / 3600000000), outcome, started_at);
