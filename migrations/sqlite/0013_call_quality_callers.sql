-- The call-quality report without a join (keep in step with ../postgres/0013_call_quality_callers.sql).
--
-- The call-quality report groups the callers' legs by the caller's number prefix and filters
-- them by the call's agent or queue: those come from the call's CDR. Joining a million legs
-- with a million CDRs on (node, Call-ID, start) cost seconds; so the caller's leg keeps
-- them, written by the triggers below whichever of the two rows is written first (a leg
-- without its CDR yet has NULLs and is not counted).
ALTER TABLE call_quality ADD COLUMN caller_prefix TEXT; -- the first 10 characters of the
                                                         -- CDR's caller (From before '@')
ALTER TABLE call_quality ADD COLUMN cdr_agent TEXT;
ALTER TABLE call_quality ADD COLUMN cdr_queue TEXT;
CREATE INDEX call_quality_caller_started ON call_quality (started_at_ms) WHERE leg = 'caller';

CREATE TRIGGER call_quality_from_cdr AFTER INSERT ON call_quality
    WHEN NEW.leg = 'caller'
BEGIN
    UPDATE call_quality SET (caller_prefix, cdr_agent, cdr_queue) = (
        SELECT substr(CASE WHEN instr(c.from_uri, '@') > 0
                THEN substr(c.from_uri, 1, instr(c.from_uri, '@') - 1) ELSE c.from_uri END,
                1, 10),
            c.agent, c.queue
        FROM cdrs c
        WHERE c.started_at_ms = NEW.started_at_ms AND c.node = NEW.node
            AND c.call_id = NEW.call_id
        ORDER BY c.id LIMIT 1)
    WHERE rowid = NEW.rowid;
END;

CREATE TRIGGER cdrs_to_call_quality AFTER INSERT ON cdrs
BEGIN
    UPDATE call_quality
    SET caller_prefix = substr(CASE WHEN instr(NEW.from_uri, '@') > 0
            THEN substr(NEW.from_uri, 1, instr(NEW.from_uri, '@') - 1) ELSE NEW.from_uri END,
            1, 10),
        cdr_agent = NEW.agent, cdr_queue = NEW.queue
    WHERE node = NEW.node AND call_id = NEW.call_id AND started_at_ms = NEW.started_at_ms
        AND leg = 'caller' AND caller_prefix IS NULL;
END;

-- The legs written before this migration.
UPDATE call_quality SET (caller_prefix, cdr_agent, cdr_queue) = (
    SELECT substr(CASE WHEN instr(c.from_uri, '@') > 0
            THEN substr(c.from_uri, 1, instr(c.from_uri, '@') - 1) ELSE c.from_uri END, 1, 10),
        c.agent, c.queue
    FROM cdrs c
    WHERE c.started_at_ms = call_quality.started_at_ms AND c.node = call_quality.node
        AND c.call_id = call_quality.call_id
    ORDER BY c.id LIMIT 1)
WHERE leg = 'caller';
