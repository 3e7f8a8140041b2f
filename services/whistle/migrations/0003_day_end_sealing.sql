-- An anonymous report's own audit entries and events wait here until the day
-- is over, then join the chain and the outbox in random order with the
-- day's midnight as their time: appended as they happen, their position
-- between precisely timed entries of other reports would date them.
-- Nothing here holds a time; `day` is the China date they belong to.
CREATE TABLE pending_audit (
    id         bigserial PRIMARY KEY,
    day        date NOT NULL,
    actor      text NOT NULL,
    action     text NOT NULL,
    report_id  bigint,
    detail     jsonb NOT NULL
);

CREATE TABLE pending_events (
    id       bigserial PRIMARY KEY,
    day      date NOT NULL,
    kind     text NOT NULL,
    payload  jsonb NOT NULL
);
