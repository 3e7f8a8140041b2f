-- The one shape of a producer's outbox (huimin_kit::outbox), applied by each
-- producer's own migration (a link to this file). Written so that it also
-- brings every earlier per-service shape into this one without losing a row:
-- registry's and whistle's tables lacked `span`, whistle's `occurred_at` had
-- no default, ledger had dropped the unique event id.
--
-- This text is a landed migration of every producer: never edit it. A later
-- change of shape is a new file here and a new link in each producer.
--
-- Writers take the outbox's advisory lock before inserting, so cursor order
-- is commit order and a reader never skips an event committed late.
CREATE TABLE IF NOT EXISTS events (
    cursor       bigserial PRIMARY KEY,
    event_id     uuid NOT NULL,
    kind         text NOT NULL,
    payload      jsonb NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    -- A span row stands for `span` consecutive cursors whose events the
    -- service builds when they are read; NULL on an ordinary event.
    span         bigint
);

ALTER TABLE events ADD COLUMN IF NOT EXISTS span bigint;
ALTER TABLE events ALTER COLUMN occurred_at SET DEFAULT now();

-- One name for the span check: ledger's came with its column.
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_span_check;
ALTER TABLE events ADD CONSTRAINT events_span_check CHECK (span >= 1);

-- Followers drop an event whose id they have handled: ids must be unique.
-- (ledger dropped this while a roll wrote one row per payment; a roll now
-- writes one span row, so the index costs nothing measurable.)
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_event_id_key;
ALTER TABLE events ADD CONSTRAINT events_event_id_key UNIQUE (event_id);
