-- Entries are HMACs under a key kept outside the database from now on
-- (issue 10, point 4); those already written keep their SHA-256 and say so.
-- Verification refuses an unkeyed entry after a keyed one.
ALTER TABLE audit_log ADD COLUMN keyed boolean NOT NULL DEFAULT false;
