-- Payment rolls (花名册) and payments. Payments are never updated or deleted:
-- a wrong payment is cancelled by a reversal row pointing at it.

CREATE TABLE rolls (
    id            bigserial PRIMARY KEY,
    -- SHA-256 of the file: the same file imported again is the same roll.
    file_sha256   bytea NOT NULL UNIQUE CHECK (length(file_sha256) = 32),
    file_name     text NOT NULL,
    imported_by   text NOT NULL,
    imported_at   timestamptz NOT NULL DEFAULT now(),
    payments      integer NOT NULL,
    reversals     integer NOT NULL,
    total_fen     bigint NOT NULL
);

CREATE TABLE payments (
    id              bigserial PRIMARY KEY,
    roll_id         bigint NOT NULL REFERENCES rolls (id),
    -- The row of the roll file it came from, for tracing back.
    line            integer NOT NULL,
    -- HMAC of the ID number, as identity keys persons.
    person_key      bytea NOT NULL CHECK (length(person_key) = 32),
    name_masked     text NOT NULL,
    id_masked       text NOT NULL,
    household_code  text NOT NULL,
    village_code    text NOT NULL CHECK (village_code ~ '^[0-9]{12}$'),
    town_code       text NOT NULL GENERATED ALWAYS AS (left(village_code, 9)) STORED,
    program_code    text NOT NULL REFERENCES programs (code),
    period          text NOT NULL,
    period_start    date NOT NULL,
    amount_fen      bigint NOT NULL CHECK (amount_fen <> 0),
    kind            text NOT NULL CHECK (kind IN ('payment', 'reversal')),
    reverses        bigint UNIQUE REFERENCES payments (id),
    bank_masked     text NOT NULL DEFAULT '',
    posted_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'reversal') = (reverses IS NOT NULL)),
    CHECK ((kind = 'reversal') = (amount_fen < 0))
);
CREATE INDEX payments_person_idx ON payments (person_key, id DESC);
CREATE INDEX payments_household_idx ON payments (household_code, id DESC);
CREATE INDEX payments_disclosure_idx ON payments (village_code, program_code, period, id);
CREATE INDEX payments_period_idx ON payments (period_start, id);
-- "At most one live payment per person, program and period" is checked by
-- the import under its lock, not by a constraint: the seeded irregularities
-- (paid twice in one period) must be representable for cross-checks to find.

-- Transactional outbox: written in the same transaction as the change.
-- Writers take an advisory lock before inserting, so cursor order is commit
-- order and a reader never skips an event committed late.
CREATE TABLE events (
    cursor       bigserial PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    kind         text NOT NULL,
    payload      jsonb NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now()
);
