-- The job queue's metrics (issue 17 §4, internal/jobs/metrics.go) count the
-- discarded jobs by kind on every scrape. Available and running jobs have
-- partial indexes already (jobs_due, jobs_leased); discarded ones sat among
-- a week of completed jobs, so counting them read the whole table. This
-- partial index holds only discarded rows: as small as the failures.

-- +goose Up
CREATE INDEX jobs_discarded ON jobs (kind) WHERE state = 'discarded';

-- +goose Down
DROP INDEX jobs_discarded;
