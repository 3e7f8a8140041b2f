-- Failed bind attempts are also counted per person (by person key, the HMAC
-- of the ID number tried), so many openids cannot guess one person's name.
ALTER TABLE bind_failures ADD COLUMN person_key bytea;
CREATE INDEX bind_failures_person_idx ON bind_failures (person_key, failed_at)
    WHERE person_key IS NOT NULL;
