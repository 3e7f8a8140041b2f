-- Roll imports write millions of rows; measured on a 1,000,000-row roll,
-- the row-by-row foreign-key checks and the unique index on random event
-- ids cost about a quarter of the import. Both guarantees are kept by the
-- only writers, in the same transaction: an import checks every program
-- code before writing and inserts its roll first; event ids are fresh
-- random UUIDs (consumers deduplicate on them; the cursor is the key).

ALTER TABLE payments DROP CONSTRAINT payments_roll_id_fkey;
ALTER TABLE payments DROP CONSTRAINT payments_program_code_fkey;
ALTER TABLE events DROP CONSTRAINT events_event_id_key;
