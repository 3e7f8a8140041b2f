-- Big-data cross-checks (大数据比对): what a roll records, the facts mirrored
-- from identity, the rules as data, and the findings they turn up.
--
-- Every query of the checks is set-based SQL over these tables joined by
-- person_key (or household_code), so at provincial scale the same text runs on
-- Citus with payments, facts and findings distributed by person_key (see
-- docs/architecture.md, "Cross-checks").

-- A roll is a pre-payment check (预审: every rule refuses) or the record of
-- payments the bank has made (发放记录: stored whole; each substantive breach
-- becomes a finding). History loads and every earlier roll were checks.
ALTER TABLE rolls ADD COLUMN kind text NOT NULL DEFAULT 'pre_check'
    CHECK (kind IN ('pre_check', 'record'));

-- A keyed hash (HMAC-SHA256 under HUIMIN_BANK_HMAC_KEY) of the account's
-- digits, to find one account paid for several households; never the
-- account in clear. NULL when the roll gave no account.
ALTER TABLE payments ADD COLUMN bank_hash bytea CHECK (length(bank_hash) = 32);
CREATE INDEX payments_bank_hash_idx ON payments (bank_hash) WHERE bank_hash IS NOT NULL;
CREATE INDEX payments_roll_idx ON payments (roll_id);

-- 易地扶贫搬迁: the relocation grant that excludes a house-renovation grant.
INSERT INTO programs
    (code, name, department, period_kind, standard_fen, ceiling_fen, per_household, legal_basis, eligibility)
VALUES
-- Estimate: the build subsidy of 易地扶贫搬迁 was about 20,000 yuan a person with the
-- household's share capped; the ceiling is a six-person household's.
('RELOCATION', '易地扶贫搬迁补助', '博白县发展和改革局', 'one_off', 6000000, 12000000, true,
 '《全国“十三五”易地扶贫搬迁规划》（发改地区〔2016〕2022号）；《广西壮族自治区易地扶贫搬迁工作实施方案》',
 '住在“一方水土养不起一方人”地方的建档立卡贫困户，搬到安置点住上新房子，按人头发建房补助。享受了易地扶贫搬迁的，不能再享受农村危房改造。');

-- Person facts as identity streams them (StreamPersonFacts), kept in step by
-- fact id: a corrected fact overwrites its row. Kinds: deceased,
-- public_employee, village_cadre, cadre_relative, vehicle_owner,
-- company_owner, property_owner, moved_out, household_member, born.
CREATE TABLE facts (
    fact_id     bigint PRIMARY KEY,
    person_key  bytea NOT NULL CHECK (length(person_key) = 32),
    kind        text NOT NULL,
    since       date NOT NULL,
    until       date,
    -- Kind-specific attributes as identity names them (employer, vehicle_type,
    -- household_code, cadre_key, area_centi_m2, ...).
    attrs       jsonb NOT NULL DEFAULT '{}',
    source      text NOT NULL DEFAULT '',
    version     bigint NOT NULL
);
CREATE INDEX facts_person_idx ON facts (person_key, kind);
CREATE INDEX facts_kind_idx ON facts (kind);
CREATE INDEX facts_household_idx ON facts ((attrs->>'household_code'))
    WHERE kind = 'household_member';
CREATE INDEX facts_cadre_idx ON facts ((attrs->>'cadre_key')) WHERE kind = 'cadre_relative';

-- How far the mirror has read identity's stream.
CREATE TABLE facts_cursor (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    version     bigint NOT NULL
);
INSERT INTO facts_cursor (version) VALUES (0);

-- The rules as one validated JSON document (the defaults ship in the binary
-- and are the first version); every change is a new version.
CREATE TABLE check_rules (
    version     bigserial PRIMARY KEY,
    document    jsonb NOT NULL,
    changed_by  text NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);

-- Runs: full, or incremental over the persons a roll or a facts import touched.
CREATE TABLE check_runs (
    id          bigserial PRIMARY KEY,
    scope       text NOT NULL CHECK (scope IN ('full', 'roll', 'facts')),
    roll_id     bigint,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    persons     bigint,
    found       integer,
    reopened    integer,
    closed      integer,
    started_by  text NOT NULL
);

-- Rolls waiting for their incremental run, written in the roll's own
-- transaction, so a crash between the two loses nothing.
CREATE TABLE check_queue (
    roll_id     bigint PRIMARY KEY,
    queued_at   timestamptz NOT NULL DEFAULT now()
);

-- Persons whose facts changed and who wait for their incremental run, written
-- in the same transaction as the facts (the cursor moves with them, so a crash
-- before the run must not lose it). A full run empties it.
CREATE TABLE facts_check_queue (
    person_key  bytea PRIMARY KEY CHECK (length(person_key) = 32),
    queued_at   timestamptz NOT NULL DEFAULT now()
);

-- One finding per rule and cause (dedupe_key), whatever the number of runs
-- that see it. Open until staff dismiss it (with a reason) or open it as a
-- whistle report, or until a run no longer sees its cause (closed; it opens
-- again if the cause comes back, unless dismissed).
CREATE TABLE findings (
    id              bigserial PRIMARY KEY,
    rule_id         text NOT NULL,
    dedupe_key      text NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('high', 'medium', 'low')),
    state           text NOT NULL DEFAULT 'open'
                        CHECK (state IN ('open', 'closed', 'dismissed', 'reported')),
    person_key      bytea NOT NULL CHECK (length(person_key) = 32),
    household_code  text NOT NULL,
    village_code    text NOT NULL,
    town_code       text NOT NULL GENERATED ALWAYS AS (left(village_code, 9)) STORED,
    program_code    text NOT NULL,
    period          text NOT NULL,
    amount_fen      bigint NOT NULL DEFAULT 0,
    -- What triggered it: payment ids, fact ids and the figures compared,
    -- masked (names and ID numbers as payments keep them).
    evidence        jsonb NOT NULL,
    first_run       bigint NOT NULL,
    last_run        bigint NOT NULL,
    found_at        timestamptz NOT NULL DEFAULT now(),
    closed_at       timestamptz,
    decided_by      text,
    decided_at      timestamptz,
    reason          text,
    report_number   text,
    UNIQUE (rule_id, dedupe_key)
);
CREATE INDEX findings_person_idx ON findings (person_key);
CREATE INDEX findings_list_idx ON findings (state, rule_id, town_code, id);

-- Append-only: every staff read of findings and every action on them or on
-- the rules (the actor, what, which finding, when).
CREATE TABLE check_audit (
    id          bigserial PRIMARY KEY,
    actor       text NOT NULL,
    role        text NOT NULL,
    action      text NOT NULL,
    finding_id  bigint,
    detail      jsonb NOT NULL DEFAULT '{}',
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX check_audit_finding_idx ON check_audit (finding_id, at);

CREATE FUNCTION check_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'check_audit is append-only';
END;
$$;
CREATE TRIGGER check_audit_append_only
    BEFORE UPDATE OR DELETE ON check_audit
    FOR EACH ROW EXECUTE FUNCTION check_audit_append_only();
CREATE TRIGGER check_audit_no_truncate
    BEFORE TRUNCATE ON check_audit
    FOR EACH STATEMENT EXECUTE FUNCTION check_audit_append_only();
