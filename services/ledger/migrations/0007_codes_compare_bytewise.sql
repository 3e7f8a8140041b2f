-- Codes (village, household, program, period) are ASCII identifiers: they
-- compare byte by byte. Under the database's locale (C.UTF-8 here) every
-- index comparison went through strcoll, which made the code indexes the
-- slowest part of a roll's COPY (README, Benchmarks). Equality and order of
-- these codes are the same either way.
ALTER TABLE payments DROP COLUMN town_code;
ALTER TABLE payments
    ALTER COLUMN village_code TYPE text COLLATE "C",
    ALTER COLUMN household_code TYPE text COLLATE "C",
    ALTER COLUMN program_code TYPE text COLLATE "C",
    ALTER COLUMN period TYPE text COLLATE "C";
ALTER TABLE payments
    ADD COLUMN town_code text COLLATE "C" NOT NULL GENERATED ALWAYS AS (left(village_code, 9)) STORED;
