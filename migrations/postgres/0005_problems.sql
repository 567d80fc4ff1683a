-- Problems made visible (PostgreSQL).
--
-- `{problems}`: the equations left out when the equations were loaded (they do not
-- parse or check, or they read each other in a cycle), one row per problem, replaced
-- by every load; `at` is when the problem was first seen. The key columns are NULL when
-- the problem names no single equation.
--
-- The failed-row indexes make counting the rows at `recalc = -1` (`recalcd status`) one
-- index probe per level; only failed rows are in them. Building them reads each table
-- once and blocks writes to it meanwhile; on very large tables, create them beforehand
-- with CREATE INDEX CONCURRENTLY under these names.

CREATE TABLE IF NOT EXISTS "{problems}" (
    at      timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    "type"  integer,
    id      integer,
    name    text,
    problem text      NOT NULL PRIMARY KEY
);

CREATE INDEX IF NOT EXISTS "{data}_failed" ON "{data}" (id, datetime) WHERE recalc < 0;
CREATE INDEX IF NOT EXISTS "{job}_failed" ON "{job}" (id, datetime) WHERE recalc < 0;
CREATE INDEX IF NOT EXISTS "{day}_failed" ON "{day}" (id, datetime) WHERE recalc < 0;
