-- Outbound calls (keep in step with ../sqlite/0020_outbound.sql).
--
-- An agent's phone may dial an external number through the outbound trunk: the CDR says
-- which way the call went and, for an outbound call, the number dialled (E.164). The
-- call-quality report groups the far party's leg (`leg = 'caller'`: the carrier's caller,
-- or the trunk of an outbound call) by that party's number prefix: for an outbound call the
-- destination, not the phone's From.
ALTER TABLE cdrs ADD COLUMN direction TEXT NOT NULL DEFAULT 'inbound';
ALTER TABLE cdrs ADD COLUMN destination TEXT;

CREATE OR REPLACE FUNCTION call_quality_from_cdr() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.leg = 'caller' THEN
        SELECT CASE WHEN c.direction = 'outbound' THEN substr('sip:' || c.destination, 1, 10)
                ELSE substr(split_part(c.from_uri, '@', 1), 1, 10) END,
            c.agent, c.queue
        INTO NEW.caller_prefix, NEW.cdr_agent, NEW.cdr_queue
        FROM cdrs c
        WHERE c.started_at_ms = NEW.started_at_ms AND c.node = NEW.node
            AND c.call_id = NEW.call_id
        ORDER BY c.id LIMIT 1;
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION cdrs_to_call_quality() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE call_quality
    SET caller_prefix = CASE WHEN NEW.direction = 'outbound'
            THEN substr('sip:' || NEW.destination, 1, 10)
            ELSE substr(split_part(NEW.from_uri, '@', 1), 1, 10) END,
        cdr_agent = NEW.agent, cdr_queue = NEW.queue
    WHERE node = NEW.node AND call_id = NEW.call_id AND started_at_ms = NEW.started_at_ms
        AND leg = 'caller' AND caller_prefix IS NULL;
    RETURN NULL;
END
$$;
