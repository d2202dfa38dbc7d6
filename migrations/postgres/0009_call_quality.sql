-- RTP quality per call leg (keep in step with ../sqlite/0007_call_quality.sql).
--
-- One row per leg of a call (the caller's, the agent's), written by the node that held the
-- call when the leg's media stopped. The key is the call (node, Call-ID, start time, as on
-- its CDR) and the leg, and the write is an upsert: a retried write changes nothing.
-- Counts are of RTP packets; times are microseconds (jitter) or milliseconds (gaps).
CREATE TABLE call_quality (
    node               TEXT   NOT NULL,
    call_id            TEXT   NOT NULL,
    started_at_ms      BIGINT NOT NULL,
    leg                TEXT   NOT NULL CHECK (leg IN ('caller', 'agent')),
    ended_at_ms        BIGINT NOT NULL,
    codec              TEXT   NOT NULL,
    packets_in         BIGINT NOT NULL, -- received from the party, duplicates included
    bytes_in           BIGINT NOT NULL,
    packets_out        BIGINT NOT NULL, -- sent to the party, ours and relayed
    bytes_out          BIGINT NOT NULL,
    expected           BIGINT NOT NULL, -- from the sequence numbers (RFC 3550 A.3)
    lost               BIGINT NOT NULL,
    duplicates         BIGINT NOT NULL,
    out_of_order       BIGINT NOT NULL,
    jitter_us          BIGINT NOT NULL, -- interarrival jitter at the end (RFC 3550 A.8)
    jitter_max_us      BIGINT NOT NULL,
    longest_gap_ms     BIGINT NOT NULL,
    rtcp_sent          BIGINT NOT NULL,
    rtcp_received      BIGINT NOT NULL,
    -- The party's last RTCP report block on what we sent it; NULL when it sent none.
    peer_fraction_lost BIGINT,          -- in 1/256
    peer_lost          BIGINT,
    peer_jitter_us     BIGINT,
    rtt_us             BIGINT,
    PRIMARY KEY (node, call_id, started_at_ms, leg)
);
CREATE INDEX call_quality_call_id ON call_quality (call_id);
CREATE INDEX call_quality_ended_at_ms ON call_quality (ended_at_ms);
