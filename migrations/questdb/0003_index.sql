-- The feature index (QuestDB).
--
-- `{index}`: the catalogue of built indexes, one row per (kind, channel), as on
-- PostgreSQL; QuestDB has no DELETE, so a dropped index is a row with `dropped = true`
-- (the latest row of a key wins: DEDUP UPSERT KEYS on the designated timestamp `at`,
-- which is always the same for a key, and the key).
--
-- `{index_dirty}`: the finest buckets a write-back changed, written before the data
-- rows; `pending` is upserted false once the index holds their new features.

CREATE TABLE IF NOT EXISTS "{index}" (
    at           TIMESTAMP,
    kind         SYMBOL,
    channel      SYMBOL,
    params       VARCHAR,
    bucket_table VARCHAR,
    range_from   TIMESTAMP,
    range_to     TIMESTAMP,
    built_at     TIMESTAMP,
    points       LONG,
    other        LONG,
    dropped      BOOLEAN
) TIMESTAMP(at) PARTITION BY YEAR WAL DEDUP UPSERT KEYS(at, kind, channel);

CREATE TABLE IF NOT EXISTS "{index_dirty}" (
    start   TIMESTAMP,
    channel SYMBOL,
    id      INT,
    pending BOOLEAN,
    marked  TIMESTAMP
) TIMESTAMP(start) PARTITION BY DAY WAL DEDUP UPSERT KEYS(start, channel, id);
