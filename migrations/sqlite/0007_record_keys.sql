-- Record keys (keep in step with ../postgres/0007_record_keys.sql).
--
-- Every call record carries a key of its own, so that a record written again (replayed from a
-- node's spool after a database outage, or retried after a lost answer) is recognised and not
-- stored twice. Keys are set by the node that made the record; rows from before have none.
ALTER TABLE cdrs ADD COLUMN uid TEXT;
CREATE UNIQUE INDEX cdrs_uid ON cdrs (uid);
ALTER TABLE queue_events ADD COLUMN uid TEXT;
CREATE UNIQUE INDEX queue_events_uid ON queue_events (uid);
-- A voicemail is its audio file on its node: one row per (node, path). Earlier duplicates
-- (a retried write) keep their first row.
DELETE FROM voicemails WHERE EXISTS (
    SELECT 1 FROM voicemails AS w
    WHERE w.node = voicemails.node AND w.path = voicemails.path AND w.id < voicemails.id
);
CREATE UNIQUE INDEX voicemails_node_path ON voicemails (node, path);
