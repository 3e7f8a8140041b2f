-- Households (户) and persons, keyed for other services by an HMAC of the ID
-- number (person_key); the number itself is kept only encrypted.

CREATE TABLE households (
    code          text PRIMARY KEY CHECK (length(code) BETWEEN 1 AND 40),
    village_code  text NOT NULL REFERENCES divisions (code),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX households_village_idx ON households (village_code);

CREATE TABLE persons (
    id              bigserial PRIMARY KEY,
    -- HMAC-SHA256 of the ID number under HUIMIN_PII_HMAC_KEY.
    person_key      bytea NOT NULL UNIQUE CHECK (length(person_key) = 32),
    -- AES-256-GCM (nonce || ciphertext) of the ID number.
    id_number_enc   bytea NOT NULL,
    -- 4509**********1234, for display without decrypting.
    id_number_masked text NOT NULL,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 50),
    gender          text NOT NULL CHECK (gender IN ('male', 'female')),
    birth_date      date NOT NULL,
    household_code  text NOT NULL REFERENCES households (code),
    -- 与户主关系: 户主, 配偶, 子, 女, ...
    relation        text NOT NULL,
    village_code    text NOT NULL REFERENCES divisions (code),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX persons_household_idx ON persons (household_code);
CREATE INDEX persons_village_idx ON persons (village_code);

-- Dated facts used by cross-checks (大数据比对).
CREATE TABLE person_facts (
    id          bigserial PRIMARY KEY,
    person_id   bigint NOT NULL REFERENCES persons (id),
    kind        text NOT NULL CHECK (kind IN ('deceased', 'public_employee', 'village_cadre',
                    'cadre_relative', 'vehicle_owner', 'company_owner', 'moved_out')),
    since       date NOT NULL,
    until       date CHECK (until IS NULL OR until >= since),
    detail      text NOT NULL DEFAULT '',
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (person_id, kind, since)
);
CREATE INDEX person_facts_person_idx ON person_facts (person_id);

-- WeChat openid → person. A family may bind several members.
CREATE TABLE wechat_bindings (
    openid     text NOT NULL CHECK (length(openid) BETWEEN 1 AND 128),
    person_id  bigint NOT NULL REFERENCES persons (id),
    bound_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (openid, person_id)
);
CREATE INDEX wechat_bindings_person_idx ON wechat_bindings (person_id);

-- Failed bind attempts, counted per openid to stop enumeration of the registry.
-- Kept in PostgreSQL, not Redis, so the limit holds while Redis is down.
CREATE TABLE bind_failures (
    id         bigserial PRIMARY KEY,
    openid     text NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bind_failures_openid_idx ON bind_failures (openid, failed_at);
