-- Usage figures the county reports, by day in China time (identity::usage).
-- The gateway counts in memory and flushes here every few seconds, so a
-- request never writes a row; each flush is one short transaction.

-- Counters, added to by each flush (INSERT .. ON CONFLICT DO UPDATE).
CREATE TABLE usage_daily (
    day    date   NOT NULL,
    figure text   NOT NULL CHECK (figure IN (
        'chat_messages', 'page_views', 'real_name_lookups', 'disclosure_lookups',
        'reports_started', 'reports_submitted', 'distinct_visitors')),
    count  bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (day, figure)
);

-- The visitors of recent days as keyed hashes of their openids (the
-- gateway's HMAC key, which identity does not hold; never an openid). A
-- hash inserted for the first time on its day adds one to the day's
-- distinct_visitors; old days are pruned, their count stays.
CREATE TABLE usage_visitors (
    day     date  NOT NULL,
    visitor bytea NOT NULL CHECK (length(visitor) = 32),
    PRIMARY KEY (day, visitor)
);

-- Flushes already recorded, so one sent again (its answer was lost) is not
-- counted twice. Pruned with the hashes.
CREATE TABLE usage_batches (
    batch_id    uuid        PRIMARY KEY,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_batches_recorded_at ON usage_batches (recorded_at);
