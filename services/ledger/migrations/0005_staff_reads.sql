-- Append-only: which staff member read whose payments, when. A person's
-- payment history is personal data even with the name masked.
CREATE TABLE staff_reads (
    id         bigserial PRIMARY KEY,
    staff      text NOT NULL,
    role       text NOT NULL,
    -- The person's key (hex) or the household code read.
    subject    text NOT NULL,
    method     text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX staff_reads_subject_idx ON staff_reads (subject, at DESC);

CREATE FUNCTION staff_reads_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'staff_reads is append-only';
END;
$$;
CREATE TRIGGER staff_reads_append_only
    BEFORE UPDATE OR DELETE ON staff_reads
    FOR EACH ROW EXECUTE FUNCTION staff_reads_append_only();
