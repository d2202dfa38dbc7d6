-- Outbound calls (keep in step with ../postgres/0020_outbound.sql).
--
-- An agent's phone may dial an external number through the outbound trunk: the CDR says
-- which way the call went and, for an outbound call, the number dialled (E.164). The
-- call-quality report groups the far party's leg (`leg = 'caller'`: the carrier's caller,
-- or the trunk of an outbound call) by that party's number prefix: for an outbound call the
-- destination, not the phone's From.
ALTER TABLE cdrs ADD COLUMN direction TEXT NOT NULL DEFAULT 'inbound';
ALTER TABLE cdrs ADD COLUMN destination TEXT;

DROP TRIGGER call_quality_from_cdr;
CREATE TRIGGER call_quality_from_cdr AFTER INSERT ON call_quality
    WHEN NEW.leg = 'caller'
BEGIN
    UPDATE call_quality SET (caller_prefix, cdr_agent, cdr_queue) = (
        SELECT CASE WHEN c.direction = 'outbound' THEN substr('sip:' || c.destination, 1, 10)
                ELSE substr(CASE WHEN instr(c.from_uri, '@') > 0
                    THEN substr(c.from_uri, 1, instr(c.from_uri, '@') - 1) ELSE c.from_uri END,
                    1, 10) END,
            c.agent, c.queue
        FROM cdrs c
        WHERE c.started_at_ms = NEW.started_at_ms AND c.node = NEW.node
            AND c.call_id = NEW.call_id
        ORDER BY c.id LIMIT 1)
    WHERE rowid = NEW.rowid;
END;

DROP TRIGGER cdrs_to_call_quality;
CREATE TRIGGER cdrs_to_call_quality AFTER INSERT ON cdrs
BEGIN
    UPDATE call_quality
    SET caller_prefix = CASE WHEN NEW.direction = 'outbound'
            THEN substr('sip:' || NEW.destination, 1, 10)
            ELSE substr(CASE WHEN instr(NEW.from_uri, '@') > 0
                THEN substr(NEW.from_uri, 1, instr(NEW.from_uri, '@') - 1) ELSE NEW.from_uri END,
                1, 10) END,
        cdr_agent = NEW.agent, cdr_queue = NEW.queue
    WHERE node = NEW.node AND call_id = NEW.call_id AND started_at_ms = NEW.started_at_ms
        AND leg = 'caller' AND caller_prefix IS NULL;
END;
