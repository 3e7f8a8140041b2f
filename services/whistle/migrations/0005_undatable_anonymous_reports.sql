-- Nothing stored about an anonymous report may order it against timed
-- events more finely than its day (issue 10, point 3).
--
-- Sequential ids do: an anonymous report's photo or addition id would sit
-- between the ids of real-name ones whose times are known, and the held
-- trail's ids between each other. These tables take random ids instead,
-- from gen_random_uuid() (a strong random source, unlike random()), below
-- 2^53 so JSON clients read them exactly. A collision in 2^52 is not worth
-- a retry loop at a few hundred rows a year; it would fail the insert, not
-- corrupt anything.
CREATE FUNCTION random_id() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT (('x' || substr(md5(gen_random_uuid()::text), 1, 13))::bit(52))::bigint + 1
$$;

ALTER TABLE report_photos ALTER COLUMN id SET DEFAULT random_id();
ALTER TABLE report_additions ALTER COLUMN id SET DEFAULT random_id();
ALTER TABLE pending_audit ALTER COLUMN id SET DEFAULT random_id();
ALTER TABLE pending_events ALTER COLUMN id SET DEFAULT random_id();

-- An anonymous report's photos are kept here rather than as files: a file
-- system records a change and a birth time no one can set back, and the
-- report's directory would record them too. NULL for files in the store;
-- object_key stays, unique, so a photo sent twice is still stored once.
ALTER TABLE report_photos ADD COLUMN content bytea;

-- A staff member's listings of a day that showed anonymous reports are
-- held as one entry per member and day (see workflow.rs): one entry per
-- listing, in step with the timed ones, would date the reports again.
CREATE UNIQUE INDEX pending_audit_listed_idx ON pending_audit (day, actor)
    WHERE action = 'reports.listed';
