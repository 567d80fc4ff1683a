-- When a built index's stored data last changed (PostgreSQL).
--
-- `updated_at`: the build, or the last catch-up that rewrote entries of a similarity
-- index. `recalcd serve` keeps a similarity index loaded between queries and reloads it
-- when this (or the build) changed; a row without it reads as its `built_at`. (On QuestDB
-- the catalogue gains the column when recalcd first connects to it as the index store.)

ALTER TABLE "{index}" ADD COLUMN IF NOT EXISTS updated_at timestamp;
