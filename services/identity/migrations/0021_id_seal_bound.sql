-- ID numbers are sealed with the person key as associated data, so a
-- ciphertext moved to another person's row does not open. Rows sealed
-- before this are marked 1 until `huimin keys reseal` re-seals them; new
-- rows (inserts do not name the column) are sealed bound, 2.
ALTER TABLE persons ADD COLUMN id_seal smallint NOT NULL DEFAULT 1
    CHECK (id_seal IN (1, 2));
ALTER TABLE persons ALTER COLUMN id_seal SET DEFAULT 2;
