-- TRUNCATE fires no row triggers, so the append-only trigger of 0002 let it
-- empty the trail, and an empty chain verifies (issue 10, point 4).
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
