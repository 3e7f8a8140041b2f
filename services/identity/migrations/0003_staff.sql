-- County staff accounts and the record of their reads of personal data.

CREATE TABLE staff (
    id             bigserial PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,63}$'),
    -- argon2id PHC string.
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('admin', 'inspector', 'department', 'town', 'auditor', 'provincial')),
    -- Department code for department officers, 9-digit town code for town officers.
    scope          text,
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((role IN ('department', 'town')) = (scope IS NOT NULL))
);

-- Append-only: who read whose personal data, when and why.
CREATE TABLE personal_data_access (
    id          bigserial PRIMARY KEY,
    staff       text NOT NULL,
    role        text NOT NULL,
    person_id   bigint NOT NULL REFERENCES persons (id),
    method      text NOT NULL,
    reason      text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX personal_data_access_staff_idx ON personal_data_access (staff, at DESC);
CREATE INDEX personal_data_access_person_idx ON personal_data_access (person_id, at DESC);

CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER personal_data_access_append_only
    BEFORE UPDATE OR DELETE ON personal_data_access
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
