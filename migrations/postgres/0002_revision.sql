-- The revision of the equations and constants (PostgreSQL): a one-row counter that
-- statement-level triggers bump in the same transaction as any change to either table,
-- so `recalcd run` reads one tiny row per poll and reloads the equations only when it
-- moved. Being transactional, the new value is visible exactly when the change is.

CREATE TABLE IF NOT EXISTS "{revision}" (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    revision bigint  NOT NULL
);
INSERT INTO "{revision}" (one, revision) VALUES (true, 1) ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION "{revision}_bump"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE "{revision}" SET revision = revision + 1;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS "{revision}_bump" ON "{equations}";
CREATE TRIGGER "{revision}_bump"
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "{equations}"
    FOR EACH STATEMENT EXECUTE FUNCTION "{revision}_bump"();

DROP TRIGGER IF EXISTS "{revision}_bump" ON "{constants}";
CREATE TRIGGER "{revision}_bump"
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "{constants}"
    FOR EACH STATEMENT EXECUTE FUNCTION "{revision}_bump"();
