-- Staff login throttle: counters taken atomically before a password is checked,
-- and the sources each username has logged in from (see docs/security.md, "Staff login").

-- One counter per key: kind 'pair' (username and source), 'username' (all
-- sources) or 'source' (all usernames); the unused part of the key is ''.
CREATE TABLE login_throttle (
    kind           text NOT NULL CHECK (kind IN ('pair', 'username', 'source')),
    username       text NOT NULL,
    source         text NOT NULL,
    -- Attempts counted since the counter was last reset (success) or forgotten (a quiet day).
    failures       integer NOT NULL DEFAULT 0,
    last_failure   timestamptz NOT NULL DEFAULT now(),
    -- No attempt on this key is checked before this time.
    blocked_until  timestamptz NOT NULL DEFAULT '-infinity',
    PRIMARY KEY (kind, username, source)
);

-- A source that has logged in to a username: the username-wide counter does
-- not hold it back, so strangers cannot lock the owner out.
CREATE TABLE staff_login_sources (
    username      text NOT NULL,
    source        text NOT NULL,
    last_success  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (username, source)
);

-- Replaced by login_throttle; it only ever held usernames and times.
DROP TABLE login_failures;
