-- The feature index (PostgreSQL).
--
-- `{index}`: the catalogue of built indexes, one row per (kind, channel). The channel
-- is stored lower-case (channels compare case-insensitively); `params` are the levels
-- and devices it was built with (e.g. `1d/1h/10m/1m devices=7,9`), `bucket_table` the
-- table holding its buckets (created by `recalcd index build`, dropped by `index drop`),
-- `range_from`/`range_to` the time range built, `points`/`other` the numeric and
-- non-numeric values counted at build time. When `index.database_url` names another
-- database, recalcd creates this table there on first use.
--
-- `{index_dirty}`: the finest buckets a write-back changed, written in the write-back's
-- transaction and deleted once the index holds their new features (a row re-marked
-- meanwhile has a new `xmin` and stays). Until then a search reads those spans raw.

CREATE TABLE IF NOT EXISTS "{index}" (
    kind         text      NOT NULL,
    channel      text      NOT NULL,
    params       text      NOT NULL,
    bucket_table text      NOT NULL,
    range_from   timestamp,
    range_to     timestamp,
    built_at     timestamp NOT NULL,
    points       bigint    NOT NULL DEFAULT 0,
    other        bigint    NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, channel)
);

CREATE TABLE IF NOT EXISTS "{index_dirty}" (
    channel text      NOT NULL,
    id      integer   NOT NULL,
    start   timestamp NOT NULL,
    PRIMARY KEY (channel, id, start)
);
