-- SIP trace per call (keep in step with ../sqlite/0012_sip_trace.sql).
--
-- A call's SIP messages (every leg, both directions) in chunks, written off the call path by
-- the node that held the call. The key is the call (node, Call-ID of the caller's leg, start
-- time, as on its CDR) and the chunk's number, and the write inserts a chunk once: a retried
-- write changes nothing. `blob` is the chunk's messages as a JSON array, zstd-compressed.
CREATE TABLE sip_trace (
    node          TEXT    NOT NULL,
    call_id       TEXT    NOT NULL,
    started_at_ms BIGINT NOT NULL,
    seq           BIGINT NOT NULL, -- 0, 1, ... in the order the chunks were cut
    at_ms         BIGINT NOT NULL, -- when the chunk was cut
    messages      BIGINT NOT NULL, -- messages in the chunk
    bytes         BIGINT NOT NULL, -- their size before compression
    cut           BIGINT NOT NULL, -- messages left out since the previous chunk (budget)
    blob          BYTEA   NOT NULL,
    PRIMARY KEY (node, call_id, started_at_ms, seq)
);
CREATE INDEX sip_trace_call_id ON sip_trace (call_id);
CREATE INDEX sip_trace_at_ms ON sip_trace (at_ms);
