-- Subsidy programs (惠民政策): what is paid, by whom, how often, how much.

CREATE TABLE programs (
    code          text PRIMARY KEY CHECK (code ~ '^[A-Z][A-Z0-9_]{1,31}$'),
    name          text NOT NULL,
    department    text NOT NULL,
    period_kind   text NOT NULL CHECK (period_kind IN ('monthly', 'quarterly', 'yearly', 'one_off')),
    -- The usual amount per period, and the most one payment may be, in fen.
    standard_fen  bigint NOT NULL CHECK (standard_fen > 0),
    ceiling_fen   bigint NOT NULL CHECK (ceiling_fen >= standard_fen),
    -- Paid once per household rather than per person (e.g. 危房改造).
    per_household boolean NOT NULL DEFAULT false,
    legal_basis   text NOT NULL,
    eligibility   text NOT NULL,
    active        boolean NOT NULL DEFAULT true
);
