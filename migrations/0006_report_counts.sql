-- The console's dashboard charts provisioning actions per hour by outcome. Counting report records
-- at page time reads every record of the span (a million in a busy month), so the counts are kept
-- as they are written: one row per hour (whole hours since the epoch: started_at in microseconds
-- divided by 3,600,000,000) and outcome, added to in the transaction that stores the records.
CREATE TABLE report_counts (
    hour BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (hour, outcome)
);
INSERT INTO report_counts (hour, outcome, n)
    SELECT started_at / 3600000000, outcome, COUNT(*) FROM provisioning_reports
    GROUP BY started_at / 3600000000, outcome;
