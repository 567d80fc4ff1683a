-- The data, job and day tables (one shared schema), constants and equations, plus
-- recalcd's errors table (QuestDB).
-- `{name}` placeholders are replaced by the configured table names.
-- data, job and day: `datetime` is the designated timestamp, WAL, one partition per
-- day, and DEDUP on (datetime, id) so that re-inserting a row replaces it.
-- constants and equations are small, non-partitioned (hence non-WAL, synchronous)
-- tables; with duplicates the row read last wins.

CREATE TABLE IF NOT EXISTS "{data}" (
    datetime  TIMESTAMP,
    data_time TIMESTAMP,
    id        INT,
    state     INT,
    "user"    VARCHAR,
    gps       VARCHAR,
    recalc    INT,
    conjoined VARCHAR
) TIMESTAMP(datetime) PARTITION BY DAY WAL DEDUP UPSERT KEYS(datetime, id);

CREATE TABLE IF NOT EXISTS "{job}" (
    datetime  TIMESTAMP,
    data_time TIMESTAMP,
    id        INT,
    state     INT,
    "user"    VARCHAR,
    gps       VARCHAR,
    recalc    INT,
    conjoined VARCHAR
) TIMESTAMP(datetime) PARTITION BY DAY WAL DEDUP UPSERT KEYS(datetime, id);

CREATE TABLE IF NOT EXISTS "{day}" (
    datetime  TIMESTAMP,
    data_time TIMESTAMP,
    id        INT,
    state     INT,
    "user"    VARCHAR,
    gps       VARCHAR,
    recalc    INT,
    conjoined VARCHAR
) TIMESTAMP(datetime) PARTITION BY DAY WAL DEDUP UPSERT KEYS(datetime, id);

CREATE TABLE IF NOT EXISTS "{constants}" (
    id    INT,
    name  VARCHAR,
    value VARCHAR
);

CREATE TABLE IF NOT EXISTS "{equations}" (
    "type" INT,
    id     INT,
    name   VARCHAR,
    eq     VARCHAR
);

-- One row per output that could not be computed; append-only, retention by
-- `ALTER TABLE … DROP PARTITION`.
CREATE TABLE IF NOT EXISTS "{errors}" (
    at       TIMESTAMP,
    level    SYMBOL,
    id       INT,
    datetime TIMESTAMP,
    equation VARCHAR,
    reason   VARCHAR
) TIMESTAMP(at) PARTITION BY DAY WAL;
