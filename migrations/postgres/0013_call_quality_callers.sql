-- The call-quality report without a join (keep in step with ../sqlite/0013_call_quality_callers.sql).
--
-- The call-quality report groups the callers' legs by the caller's number prefix and filters
-- them by the call's agent or queue: those come from the call's CDR. Joining a million legs
-- with a million CDRs on (node, Call-ID, start) cost seconds, the planner estimating one
-- row for it; so the caller's leg keeps them, written by the triggers below whichever of the
-- two rows is written first (a leg without its CDR yet has NULLs and is not counted).
ALTER TABLE call_quality ADD COLUMN caller_prefix TEXT; -- the first 10 characters of the
                                                         -- CDR's caller (From before '@')
ALTER TABLE call_quality ADD COLUMN cdr_agent TEXT;
ALTER TABLE call_quality ADD COLUMN cdr_queue TEXT;
CREATE INDEX call_quality_caller_started ON call_quality (started_at_ms) WHERE leg = 'caller';

CREATE FUNCTION call_quality_from_cdr() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.leg = 'caller' THEN
        SELECT substr(split_part(c.from_uri, '@', 1), 1, 10), c.agent, c.queue
        INTO NEW.caller_prefix, NEW.cdr_agent, NEW.cdr_queue
        FROM cdrs c
        WHERE c.started_at_ms = NEW.started_at_ms AND c.node = NEW.node
            AND c.call_id = NEW.call_id
        ORDER BY c.id LIMIT 1;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER call_quality_from_cdr BEFORE INSERT ON call_quality FOR EACH ROW
    EXECUTE FUNCTION call_quality_from_cdr();

CREATE FUNCTION cdrs_to_call_quality() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE call_quality
    SET caller_prefix = substr(split_part(NEW.from_uri, '@', 1), 1, 10),
        cdr_agent = NEW.agent, cdr_queue = NEW.queue
    WHERE node = NEW.node AND call_id = NEW.call_id AND started_at_ms = NEW.started_at_ms
        AND leg = 'caller' AND caller_prefix IS NULL;
    RETURN NULL;
END
$$;

CREATE TRIGGER cdrs_to_call_quality AFTER INSERT ON cdrs FOR EACH ROW
    EXECUTE FUNCTION cdrs_to_call_quality();

-- The legs written before this migration.
UPDATE call_quality q
SET caller_prefix = substr(split_part(c.from_uri, '@', 1), 1, 10),
    cdr_agent = c.agent, cdr_queue = c.queue
FROM cdrs c
WHERE q.leg = 'caller' AND c.node = q.node AND c.call_id = q.call_id
    AND c.started_at_ms = q.started_at_ms;
