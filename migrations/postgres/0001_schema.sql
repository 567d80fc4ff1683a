-- The data, job and day tables (one shared schema), constants and equations, plus
-- recalcd's errors table (PostgreSQL).
-- `{name}` placeholders are replaced by the configured table names.
-- Tables that already exist (a producer created them) are left as they are.

CREATE TABLE IF NOT EXISTS "{data}" (
    datetime  timestamp NOT NULL,
    data_time timestamp NOT NULL,
    id        integer   NOT NULL,
    state     integer,
    "user"    text,
    gps       text,
    recalc    integer   NOT NULL DEFAULT 1,
    conjoined text      NOT NULL DEFAULT '',
    PRIMARY KEY (id, datetime)
);
-- Polling: the oldest flagged rows first, without touching the done ones.
CREATE INDEX IF NOT EXISTS "{data}_flagged" ON "{data}" (datetime, id) WHERE recalc > 0;
-- Loading a job: all data rows with one (id, data_time).
CREATE INDEX IF NOT EXISTS "{data}_job" ON "{data}" (id, data_time);

CREATE TABLE IF NOT EXISTS "{job}" (
    datetime  timestamp NOT NULL,
    data_time timestamp NOT NULL,
    id        integer   NOT NULL,
    state     integer,
    "user"    text,
    gps       text,
    recalc    integer   NOT NULL DEFAULT 1,
    conjoined text      NOT NULL DEFAULT '',
    PRIMARY KEY (id, datetime)
);
CREATE INDEX IF NOT EXISTS "{job}_flagged" ON "{job}" (datetime, id) WHERE recalc > 0;

CREATE TABLE IF NOT EXISTS "{day}" (
    datetime  timestamp NOT NULL,
    data_time timestamp NOT NULL,
    id        integer   NOT NULL,
    state     integer,
    "user"    text,
    gps       text,
    recalc    integer   NOT NULL DEFAULT 1,
    conjoined text      NOT NULL DEFAULT '',
    PRIMARY KEY (id, datetime)
);
CREATE INDEX IF NOT EXISTS "{day}_flagged" ON "{day}" (datetime, id) WHERE recalc > 0;

CREATE TABLE IF NOT EXISTS "{constants}" (
    id    integer NOT NULL,
    name  text    NOT NULL,
    value text,
    PRIMARY KEY (id, name)
);

CREATE TABLE IF NOT EXISTS "{equations}" (
    "type" integer NOT NULL,
    id     integer NOT NULL,
    name   text    NOT NULL,
    eq     text    NOT NULL,
    PRIMARY KEY ("type", id, name)
);

-- One row per output that could not be computed (recalc = -1 on the row).
CREATE TABLE IF NOT EXISTS "{errors}" (
    at       timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    level    text      NOT NULL,
    id       integer   NOT NULL,
    datetime timestamp NOT NULL,
    equation text      NOT NULL,
    reason   text      NOT NULL
);
CREATE INDEX IF NOT EXISTS "{errors}_at" ON "{errors}" (at DESC);
CREATE INDEX IF NOT EXISTS "{errors}_row" ON "{errors}" (level, id, datetime);
