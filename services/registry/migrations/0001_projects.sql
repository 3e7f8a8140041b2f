-- Poverty-alleviation projects (扶贫项目), every version of them, and the outbox.

CREATE TABLE projects (
    id                      bigserial PRIMARY KEY,
    code                    text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9_-]{1,40}$'),
    name                    text NOT NULL CHECK (name <> ''),
    kind                    text NOT NULL CHECK (kind IN ('roads', 'water', 'housing', 'industry',
                                                          'education', 'health', 'environment', 'other')),
    town_code               text NOT NULL CHECK (town_code ~ '^[0-9]{9}$'),
    -- NULL for a project of the whole town; otherwise one of the town's villages.
    village_code            text CHECK (village_code ~ '^[0-9]{12}$' AND left(village_code, 9) = town_code),
    year                    integer NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    -- The budget by fund source; the sources add up to approved_fen (checked by the service).
    central_fen             bigint NOT NULL CHECK (central_fen >= 0),
    region_fen              bigint NOT NULL CHECK (region_fen >= 0),
    city_fen                bigint NOT NULL CHECK (city_fen >= 0),
    county_fen              bigint NOT NULL CHECK (county_fen >= 0),
    other_fen               bigint NOT NULL CHECK (other_fen >= 0),
    approved_fen            bigint NOT NULL CHECK (approved_fen >= 0),
    disbursed_fen           bigint NOT NULL CHECK (disbursed_fen >= 0),
    contractor              text NOT NULL,
    department              text NOT NULL,
    officer                 text NOT NULL,
    planned_start           date,
    planned_end             date,
    actual_start            date,
    actual_end              date,
    beneficiary_households  integer NOT NULL CHECK (beneficiary_households >= 0),
    -- [{name, planned_date, done_date, note}], replaced whole on update.
    milestones              jsonb NOT NULL DEFAULT '[]',
    status                  text NOT NULL CHECK (status IN ('planned', 'approved', 'under_construction',
                                                            'accepted', 'cancelled')),
    version                 bigint NOT NULL CHECK (version > 0),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    -- Backstops of the service's own checks.
    CONSTRAINT projects_disbursed_within_approved CHECK (disbursed_fen <= approved_fen),
    CONSTRAINT projects_planned_dates_in_order CHECK (planned_end >= planned_start),
    CONSTRAINT projects_actual_dates_in_order CHECK (actual_end >= actual_start)
);
CREATE INDEX projects_village_idx ON projects (village_code, id);
CREATE INDEX projects_town_idx ON projects (town_code, id);

-- Every change of a project, written in the transaction of the change.
CREATE TABLE project_versions (
    project_id  bigint NOT NULL REFERENCES projects (id),
    version     bigint NOT NULL,
    staff       text NOT NULL,
    role        text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    action      text NOT NULL CHECK (action IN ('created', 'updated', 'status_changed', 'imported')),
    -- {field: [old, new]}; old is null on creation.
    changes     jsonb NOT NULL,
    -- Whether funding, approved_fen or disbursed_fen changed: the public money history.
    money       boolean NOT NULL,
    note        text NOT NULL DEFAULT '',
    PRIMARY KEY (project_id, version)
);

-- Transactional outbox (see huimin_kit::outbox): writers take an advisory
-- lock before inserting, so cursor order is commit order.
CREATE TABLE events (
    cursor       bigserial PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    kind         text NOT NULL,
    payload      jsonb NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now()
);
