-- Wrong receipt codes, counted per client and hour: the client is named by
-- an HMAC with a key outside the database (HUIMIN_RECEIPT_HMAC_KEY), and no
-- failure keeps its own time or row, so none can be set against a report's.
DROP TABLE receipt_failures;
CREATE TABLE receipt_failures (
    client_hash  bytea NOT NULL,
    -- The hour the failures fell in (date_trunc('hour', now())).
    hour         timestamptz NOT NULL CHECK (hour = date_trunc('hour', hour)),
    failures     integer NOT NULL CHECK (failures > 0),
    PRIMARY KEY (client_hash, hour)
);
