-- Tokens revoked before they expire, by token id (the `jti` claim). The
-- durable list: identity publishes the unexpired ids to Redis, where every
-- process reads them (docs/security.md, "A leaked service token").
CREATE TABLE revoked_tokens (
    jti text PRIMARY KEY,
    -- The token's own expiry: after it the entry is of no use and is pruned.
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now(),
    -- Who revoked it (a staff username or "cli") and why, for the record.
    revoked_by text NOT NULL,
    reason text NOT NULL DEFAULT ''
);
