-- Reference datasets (比对数据): facts imported from other departments' files, each
-- with its source and file; a stream position (version) on every fact; kind-specific
-- attributes; property ownership; and two kinds derived from the register itself:
-- household membership over dated spans, and birth.

-- One imported file. The same file (fingerprint) of the same kind is imported once.
CREATE TABLE fact_imports (
    id                 bigserial PRIMARY KEY,
    kind               text NOT NULL,
    source_department  text NOT NULL CHECK (length(source_department) BETWEEN 1 AND 100),
    file_name          text NOT NULL,
    -- SHA-256 of the file's bytes.
    fingerprint        bytea NOT NULL CHECK (length(fingerprint) = 32),
    imported_by        text NOT NULL,
    rows_total         integer NOT NULL,
    inserted           integer NOT NULL,
    updated            integer NOT NULL,
    unchanged          integer NOT NULL,
    not_in_register    integer NOT NULL,
    imported_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (fingerprint, kind)
);

ALTER TABLE person_facts DROP CONSTRAINT person_facts_kind_check;
ALTER TABLE person_facts ADD CONSTRAINT person_facts_kind_check CHECK (kind IN (
    'deceased', 'public_employee', 'village_cadre', 'cadre_relative', 'vehicle_owner',
    'company_owner', 'property_owner', 'moved_out', 'household_member', 'born'));

ALTER TABLE person_facts
    -- The department the fact came from; '' for facts recorded before sources were kept.
    ADD COLUMN source text NOT NULL DEFAULT '',
    ADD COLUMN import_id bigint REFERENCES fact_imports (id),
    -- The kind's attributes as the stream carries them (docs/architecture.md,
    -- "Reference datasets"): string keys, string values.
    ADD COLUMN attrs jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attrs) = 'object');

-- Attributes of the facts recorded before this migration, from their detail text as the
-- seed wrote it (the same mapping as identity's bulk register path).
UPDATE person_facts f SET attrs = CASE f.kind
    WHEN 'deceased' THEN jsonb_build_object('source_text', f.detail)
    WHEN 'public_employee' THEN jsonb_build_object('employer', f.detail)
    WHEN 'village_cadre' THEN jsonb_build_object('village_code', p.village_code, 'post', f.detail)
    WHEN 'cadre_relative' THEN jsonb_build_object(
        'cadre_key', COALESCE((SELECT encode(h.person_key, 'hex') FROM persons h
                               WHERE h.household_code = p.household_code AND h.relation = '户主'
                               ORDER BY h.id LIMIT 1), ''),
        'relation', p.relation)
    WHEN 'vehicle_owner' THEN CASE WHEN position(' ' IN f.detail) > 0
        THEN jsonb_build_object('vehicle_type', split_part(f.detail, ' ', 1),
                                'plate', substr(f.detail, position(' ' IN f.detail) + 1))
        ELSE jsonb_build_object('vehicle_type', '', 'plate', f.detail) END
    WHEN 'company_owner' THEN jsonb_build_object('company', f.detail, 'credit_code', '',
                                                 'role', '法定代表人')
    WHEN 'moved_out' THEN jsonb_build_object('destination', regexp_replace(f.detail, '^迁往', ''))
    ELSE '{}'::jsonb END
FROM persons p WHERE p.id = f.person_id;

-- A fact's natural key beside (person, kind): nothing for deceased and born (one each),
-- else its start and its key attribute. An imported row with an existing natural key
-- corrects that fact in place. Days since 2000 rather than since::text, which depends
-- on DateStyle and so may not be in a generated column.
ALTER TABLE person_facts DROP CONSTRAINT person_facts_person_id_kind_since_key;
ALTER TABLE person_facts ADD COLUMN natural_key text GENERATED ALWAYS AS (
    CASE WHEN kind IN ('deceased', 'born') THEN ''
    ELSE (since - DATE '2000-01-01')::text || '|' || COALESCE(CASE kind
        WHEN 'public_employee' THEN attrs->>'employer'
        WHEN 'village_cadre' THEN (attrs->>'village_code') || '|' || (attrs->>'post')
        WHEN 'cadre_relative' THEN attrs->>'cadre_key'
        WHEN 'vehicle_owner' THEN attrs->>'plate'
        WHEN 'company_owner' THEN attrs->>'credit_code'
        WHEN 'property_owner' THEN attrs->>'location'
        WHEN 'moved_out' THEN attrs->>'destination'
        WHEN 'household_member' THEN attrs->>'household_code'
    END, '') END) STORED;
CREATE UNIQUE INDEX person_facts_natural_key_idx ON person_facts (person_id, kind, natural_key);

-- Birth and household membership of every person registered before this migration. The
-- register kept no history: each person's household as registered is taken to hold
-- since birth (for seeded persons that is how the seed made them; for imported ones it
-- is the best the register knows). Later changes open spans on the day they are seen.
INSERT INTO person_facts (person_id, kind, since, source)
SELECT id, 'born', birth_date, '户籍登记' FROM persons ORDER BY id;
INSERT INTO person_facts (person_id, kind, since, source, attrs)
SELECT id, 'household_member', birth_date, '户籍登记',
       jsonb_build_object('household_code', household_code, 'relation', relation)
FROM persons ORDER BY id;

-- The stream position: every insert takes the next value, every change takes a new one
-- (trigger below), so a follower that asks for versions after the last it saw gets
-- every fact that is new or changed since. Writers of facts serialise on one advisory
-- lock (identity's facts::WRITE_LOCK) held until commit, so versions become visible in
-- order and a follower never skips one still being written.
CREATE SEQUENCE person_facts_version_seq;
ALTER TABLE person_facts ADD COLUMN version bigint;
UPDATE person_facts f SET version = o.n
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM person_facts) o WHERE o.id = f.id;
SELECT setval('person_facts_version_seq', GREATEST((SELECT max(version) FROM person_facts), 1),
              (SELECT count(*) > 0 FROM person_facts));
ALTER TABLE person_facts
    ALTER COLUMN version SET DEFAULT nextval('person_facts_version_seq'),
    ALTER COLUMN version SET NOT NULL;
ALTER SEQUENCE person_facts_version_seq OWNED BY person_facts.version;
CREATE UNIQUE INDEX person_facts_version_idx ON person_facts (version);

CREATE FUNCTION person_facts_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.person_id, NEW.kind, NEW.since, NEW.until, NEW.detail, NEW.attrs, NEW.source)
       IS DISTINCT FROM (OLD.person_id, OLD.kind, OLD.since, OLD.until, OLD.detail, OLD.attrs, OLD.source) THEN
        NEW.version := nextval('person_facts_version_seq');
        NEW.recorded_at := now();
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER person_facts_version BEFORE UPDATE ON person_facts
    FOR EACH ROW EXECUTE FUNCTION person_facts_bump_version();

-- Household membership (户籍) as dated history: who was in which household when. Kept as
-- person_facts of kind household_member, so the history has one source and streams with
-- the other facts; this view gives it its own shape.
CREATE VIEW household_members AS
SELECT person_id, attrs->>'household_code' AS household_code, attrs->>'relation' AS relation,
       since, until
FROM person_facts WHERE kind = 'household_member';
CREATE INDEX person_facts_household_idx ON person_facts ((attrs->>'household_code'))
    WHERE kind = 'household_member';
