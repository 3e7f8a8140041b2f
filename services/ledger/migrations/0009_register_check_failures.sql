-- Append-only: roll rows a staff member sent that the population register
-- did not confirm, counted per import. It is the record of who probed the
-- register through imports, and what the per-caller limit is counted on.
CREATE TABLE register_check_failures (
    id           bigserial PRIMARY KEY,
    staff        text NOT NULL,
    role         text NOT NULL,
    -- Rows of the import the register did not confirm (listed or not).
    failures     integer NOT NULL CHECK (failures > 0),
    file_sha256  bytea NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX register_check_failures_staff_idx ON register_check_failures (staff, at);

CREATE FUNCTION register_check_failures_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'register_check_failures is append-only';
END;
$$;
CREATE TRIGGER register_check_failures_append_only
    BEFORE UPDATE OR DELETE ON register_check_failures
    FOR EACH ROW EXECUTE FUNCTION register_check_failures_append_only();
