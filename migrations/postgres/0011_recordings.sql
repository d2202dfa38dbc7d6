-- Call recordings and background jobs (keep in step with ../sqlite/0011_recordings.sql).
--
-- A queue's recording policy: 'never', 'always', or the percentage of calls recorded ('0' to
-- '100', checked by the application); with recording_prompt = 1 callers hear "this call may
-- be recorded" before they queue.
ALTER TABLE queues ADD COLUMN recording TEXT NOT NULL DEFAULT 'never';
ALTER TABLE queues ADD COLUMN recording_prompt BIGINT NOT NULL DEFAULT 0 CHECK (recording_prompt IN (0, 1));

-- One row per recorded conversation, written by the node that holds the file (through its
-- record writer: the key uid makes a replayed write a no-op). The file lives on that node
-- (path is local to it); format and size change when the MP3 job replaces the WAV.
CREATE TABLE recordings (
    id            BIGSERIAL PRIMARY KEY,
    uid           TEXT    NOT NULL UNIQUE,
    node          TEXT    NOT NULL,
    call_id       TEXT    NOT NULL,
    queue         TEXT,
    agent         TEXT,
    caller        TEXT    NOT NULL,
    path          TEXT    NOT NULL,
    format        TEXT    NOT NULL CHECK (format IN ('wav', 'mp3')),
    duration_ms   BIGINT  NOT NULL,
    size_bytes    BIGINT  NOT NULL,
    dropped_frames BIGINT NOT NULL, -- audio lost because the disk was too slow
    started_at_ms BIGINT  NOT NULL,
    created_at_ms BIGINT  NOT NULL
);
CREATE INDEX recordings_call_id ON recordings (call_id);
CREATE INDEX recordings_node_created ON recordings (node, created_at_ms);

-- Durable background work (the MP3 conversion first). A job is claimed by one node until
-- claimed_until; a claim that ran out (its node died) is taken again. A failed attempt puts
-- the job back with next_at later; after too many it is 'failed' and kept for inspection.
-- node: the node that must run it (the one holding the file), NULL for any node.
CREATE TABLE jobs (
    id            BIGSERIAL PRIMARY KEY,
    kind          TEXT    NOT NULL,
    payload       TEXT    NOT NULL, -- JSON
    node          TEXT,
    state         TEXT    NOT NULL CHECK (state IN ('queued', 'done', 'failed')),
    attempts      BIGINT  NOT NULL,
    next_at_ms    BIGINT  NOT NULL,
    claimed_by    TEXT,
    claimed_until_ms BIGINT,
    last_error    TEXT,
    created_at_ms BIGINT  NOT NULL,
    updated_at_ms BIGINT  NOT NULL
);
CREATE INDEX jobs_ready ON jobs (state, next_at_ms);
