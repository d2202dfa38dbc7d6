-- RTP quality per call leg (keep in step with ../postgres/0007_call_quality.sql).
--
-- One row per leg of a call (the caller's, the agent's), written by the node that held the
-- call when the leg's media stopped. The key is the call (node, Call-ID, start time, as on
-- its CDR) and the leg, and the write is an upsert: a retried write changes nothing.
-- Counts are of RTP packets; times are microseconds (jitter) or milliseconds (gaps).
CREATE TABLE call_quality (
    node               TEXT   NOT NULL,
    call_id            TEXT   NOT NULL,
    started_at_ms      INTEGER NOT NULL,
    leg                TEXT   NOT NULL CHECK (leg IN ('caller', 'agent')),
    ended_at_ms        INTEGER NOT NULL,
    codec              TEXT   NOT NULL,
    packets_in         INTEGER NOT NULL, -- received from the party, duplicates included
    bytes_in           INTEGER NOT NULL,
    packets_out        INTEGER NOT NULL, -- sent to the party, ours and relayed
    bytes_out          INTEGER NOT NULL,
    expected           INTEGER NOT NULL, -- from the sequence numbers (RFC 3550 A.3)
    lost               INTEGER NOT NULL,
    duplicates         INTEGER NOT NULL,
    out_of_order       INTEGER NOT NULL,
    jitter_us          INTEGER NOT NULL, -- interarrival jitter at the end (RFC 3550 A.8)
    jitter_max_us      INTEGER NOT NULL,
    longest_gap_ms     INTEGER NOT NULL,
    rtcp_sent          INTEGER NOT NULL,
    rtcp_received      INTEGER NOT NULL,
    -- The party's last RTCP report block on what we sent it; NULL when it sent none.
    peer_fraction_lost INTEGER,          -- in 1/256
    peer_lost          INTEGER,
    peer_jitter_us     INTEGER,
    rtt_us             INTEGER,
    PRIMARY KEY (node, call_id, started_at_ms, leg)
);
CREATE INDEX call_quality_call_id ON call_quality (call_id);
CREATE INDEX call_quality_ended_at_ms ON call_quality (ended_at_ms);
