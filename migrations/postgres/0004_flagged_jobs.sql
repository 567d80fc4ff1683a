-- The jobs with flagged data rows, by device and job start: a batch asks, for each day
-- it is about to compute, whether another of the day's jobs is still flagged (then the
-- day waits for that job's batch). Only flagged rows are in the index, so the answer
-- takes one index probe per flagged job of the day instead of a read of every row of the
-- day; rows whose flag recalcd clears leave it (their new version is not indexed).
--
-- Building it reads the data table once and blocks writes to it meanwhile; on a very
-- large table, create it beforehand with CREATE INDEX CONCURRENTLY under this name.

CREATE INDEX IF NOT EXISTS "{data}_flagged_job" ON "{data}" (id, data_time) WHERE recalc > 0;
