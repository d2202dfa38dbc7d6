-- Reports: departments (groups of queues) and the indexes the report queries read by.

CREATE TABLE departments (
    name          TEXT    PRIMARY KEY,
    created_at_ms BIGINT  NOT NULL
);

CREATE TABLE department_queues (
    department TEXT NOT NULL REFERENCES departments (name) ON DELETE CASCADE,
    queue      TEXT NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
    PRIMARY KEY (department, queue)
);
CREATE INDEX department_queues_queue ON department_queues (queue);

-- Calls by start time, optionally of one agent or one queue (the evening-states report, the
-- heatmap).
CREATE INDEX cdrs_started_at_ms ON cdrs (started_at_ms);
CREATE INDEX cdrs_agent_started ON cdrs (agent, started_at_ms);
CREATE INDEX cdrs_queue_started ON cdrs (queue, started_at_ms);
-- Calls by caller (the part of From before '@', e.g. `sip:+15551234567`): the repeat callers.
CREATE INDEX cdrs_caller_started ON cdrs ((split_part(from_uri, '@', 1)), started_at_ms);
-- Queue events by kind and time (the queue, department and agent reports); the outcome of
-- one queued call is found through queue_events_call_id.
CREATE INDEX queue_events_event_at ON queue_events (event, at_ms);
