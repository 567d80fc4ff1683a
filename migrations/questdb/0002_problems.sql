-- Problems made visible (QuestDB).
--
-- `{problems}`: the equations left out when the equations were loaded (they do not
-- parse or check, or they read each other in a cycle), one row per problem, replaced
-- by every load (TRUNCATE, then INSERT); a small non-partitioned table, so both take
-- effect at once. The key columns are NULL when the problem names no single equation.

CREATE TABLE IF NOT EXISTS "{problems}" (
    at      TIMESTAMP,
    "type"  INT,
    id      INT,
    name    VARCHAR,
    problem VARCHAR
);
