-- The write path of a roll import, measured on a 1,000,000-row roll
-- (README, Benchmarks):
--
-- * A roll's payment.posted events are one outbox row covering `span`
--   consecutive cursors over the roll's block of payment ids, built when
--   read (huimin_kit::outbox), not a million jsonb rows. An ordinary event
--   row has no span (NULL): it is its own single event.
-- * The payments index that leads with program and period lets an import
--   read the live payments of the periods it pays in one range scan; the
--   disclosure lookup (village, program, period) uses it as well.
-- * The export filters periods while it walks by id: no index of its own.
-- * "Is this payment reversed" needs only the reversals indexed, not a
--   NULL entry for every payment.

ALTER TABLE events ADD COLUMN span bigint CHECK (span >= 1);

DROP INDEX payments_disclosure_idx;
CREATE INDEX payments_slot_idx ON payments (program_code, period, village_code, id);
DROP INDEX payments_period_idx;

ALTER TABLE payments DROP CONSTRAINT payments_reverses_key;
CREATE UNIQUE INDEX payments_reverses_idx ON payments (reverses) WHERE reverses IS NOT NULL;
