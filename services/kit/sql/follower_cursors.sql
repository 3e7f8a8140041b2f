-- Where a follower of another service's WatchEvents feed has got to
-- (huimin_kit::follower), in the follower's own schema, applied by its own
-- migration (a link to this file). Never edit: a landed migration.
CREATE TABLE IF NOT EXISTS cursors (
    -- The followed feed, e.g. `registry` or `ledger:payment.posted`.
    feed        text PRIMARY KEY,
    -- The last cursor whose event the handler has taken.
    cursor      bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The ids of events handled, written in the handler's transaction, so that
-- an event delivered again (after a reconnect, or by a producer that repeats
-- itself) is dropped. Pruned after a retention period by the follower.
CREATE TABLE IF NOT EXISTS handled_events (
    feed        text NOT NULL,
    event_id    uuid NOT NULL,
    handled_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (feed, event_id)
);
CREATE INDEX IF NOT EXISTS handled_events_age_idx ON handled_events (handled_at);
