-- Reports of wrongdoing (举报), their photos, additions, replies and triage.
--
-- Anonymity is a property of the schema: an anonymous report has no openid,
-- and nothing about it records a time of day finer than the date
-- (received_on; status_since starts at midnight; additions carry a date).

CREATE TABLE triage_rules (
    id          integer PRIMARY KEY CHECK (id = 1),
    rules       jsonb NOT NULL,
    updated_by  text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reports (
    id                   bigserial PRIMARY KEY,
    number               text UNIQUE,
    source               text NOT NULL CHECK (source IN ('citizen', 'system')),
    anonymous            boolean NOT NULL,
    -- Real-name reports only: whom to tell of progress.
    reporter_openid      text,
    -- SHA-256 of the receipt code; the code itself is shown once and not kept.
    receipt_hash         bytea NOT NULL UNIQUE CHECK (length(receipt_hash) = 32),
    text                 text NOT NULL CHECK (length(text) BETWEEN 1 AND 5000),
    chosen_category      text,
    subject_person_key   text,
    subject_village      text,
    subject_program      text,
    subject_project      text,
    subject_official     text,
    subject_official_town text,
    -- Identity of "the same subject" for linking and escalation.
    subject_key          text,
    town_code            text,
    category             text NOT NULL,
    category_label       text NOT NULL,
    department           text NOT NULL,
    priority             integer NOT NULL CHECK (priority BETWEEN 1 AND 4),
    matched_keywords     jsonb NOT NULL DEFAULT '[]',
    escalated            boolean NOT NULL DEFAULT false,
    linked_reports       jsonb NOT NULL DEFAULT '[]',
    ledger_facts         jsonb NOT NULL DEFAULT '{}',
    status               text NOT NULL CHECK (status IN ('received', 'triaged', 'assigned', 'verifying',
                                                          'substantiated', 'unsubstantiated')),
    status_since         timestamptz NOT NULL,
    deadline             timestamptz,
    assigned_department  text,
    assigned_officer     text,
    case_number          text,
    received_on          date NOT NULL,
    CHECK (NOT anonymous OR reporter_openid IS NULL)
);
CREATE INDEX reports_subject_idx ON reports (subject_key, received_on);
CREATE INDEX reports_village_idx ON reports (subject_village, received_on);
CREATE INDEX reports_status_idx ON reports (status, deadline);

CREATE TABLE report_photos (
    id          bigserial PRIMARY KEY,
    report_id   bigint NOT NULL REFERENCES reports (id),
    object_key  text NOT NULL UNIQUE,
    sha256      bytea NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('jpeg', 'png')),
    width       integer NOT NULL,
    height      integer NOT NULL,
    bytes       bigint NOT NULL,
    added_on    date NOT NULL
);
CREATE INDEX report_photos_report_idx ON report_photos (report_id);

-- Information the reporter added later, by receipt code.
CREATE TABLE report_additions (
    id         bigserial PRIMARY KEY,
    report_id  bigint NOT NULL REFERENCES reports (id),
    text       text NOT NULL,
    added_on   date NOT NULL
);

-- Replies the reporter can read with the receipt code.
CREATE TABLE report_replies (
    id         bigserial PRIMARY KEY,
    report_id  bigint NOT NULL REFERENCES reports (id),
    text       text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);

-- Failed receipt-code lookups, by a hash of the gateway's client key, to throttle guessing.
CREATE TABLE receipt_failures (
    id          bigserial PRIMARY KEY,
    client_hash bytea NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX receipt_failures_client_idx ON receipt_failures (client_hash, failed_at);

-- Transactional outbox (see ledger's events for the ordering argument).
CREATE TABLE events (
    cursor       bigserial PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    kind         text NOT NULL,
    payload      jsonb NOT NULL,
    occurred_at  timestamptz NOT NULL
);
