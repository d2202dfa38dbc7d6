-- Reports: departments (groups of queues), one summary row per queued call kept up to date
-- from queue_events by a trigger, and the indexes the report queries read by.

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
CREATE INDEX cdrs_caller_started ON cdrs ((CASE WHEN instr(from_uri, '@') > 0 THEN substr(from_uri, 1, instr(from_uri, '@') - 1) ELSE from_uri END), started_at_ms);

-- One row per call and queue it waited in: when it entered, was answered (and by whom), ended
-- its conversation, or was given up (abandon, timeout). Written only by the trigger below, from
-- the queue_events every node appends; events may arrive in any order.
CREATE TABLE queue_calls (
    node            TEXT   NOT NULL,
    call_id         TEXT   NOT NULL,
    queue           TEXT   NOT NULL,
    enqueued_at_ms  BIGINT,
    answered_at_ms  BIGINT,
    agent           TEXT,
    completed_at_ms BIGINT,
    outcome         TEXT, -- abandon | timeout | NULL
    PRIMARY KEY (node, call_id, queue)
);
-- Covering the queue and department reports (by entry time) and the agent report (by answer).
CREATE INDEX queue_calls_enqueued ON queue_calls
    (enqueued_at_ms, queue, answered_at_ms, completed_at_ms, outcome);
CREATE INDEX queue_calls_answered ON queue_calls (answered_at_ms, agent, completed_at_ms);

CREATE TRIGGER queue_calls_from_events AFTER INSERT ON queue_events
    WHEN NEW.event IN ('enqueue', 'answer', 'complete', 'abandon', 'timeout')
BEGIN
    INSERT INTO queue_calls (node, call_id, queue, enqueued_at_ms, answered_at_ms, agent,
        completed_at_ms, outcome)
    VALUES (NEW.node, NEW.call_id, NEW.queue,
        CASE WHEN NEW.event = 'enqueue' THEN NEW.at_ms END,
        CASE WHEN NEW.event = 'answer' THEN NEW.at_ms END,
        CASE WHEN NEW.event = 'answer' THEN NEW.agent END,
        CASE WHEN NEW.event = 'complete' THEN NEW.at_ms END,
        CASE WHEN NEW.event IN ('abandon', 'timeout') THEN NEW.event END)
    ON CONFLICT (node, call_id, queue) DO UPDATE SET
        enqueued_at_ms = COALESCE(queue_calls.enqueued_at_ms, excluded.enqueued_at_ms),
        answered_at_ms = COALESCE(excluded.answered_at_ms, queue_calls.answered_at_ms),
        agent = COALESCE(excluded.agent, queue_calls.agent),
        completed_at_ms = COALESCE(excluded.completed_at_ms, queue_calls.completed_at_ms),
        outcome = COALESCE(excluded.outcome, queue_calls.outcome);
END;

-- The calls queued before this migration.
INSERT INTO queue_calls (node, call_id, queue, enqueued_at_ms, answered_at_ms, agent,
    completed_at_ms, outcome)
SELECT node, call_id, queue,
    MIN(CASE WHEN event = 'enqueue' THEN at_ms END),
    MAX(CASE WHEN event = 'answer' THEN at_ms END),
    MAX(CASE WHEN event = 'answer' THEN agent END),
    MAX(CASE WHEN event = 'complete' THEN at_ms END),
    MAX(CASE WHEN event IN ('abandon', 'timeout') THEN event END)
FROM queue_events
WHERE event IN ('enqueue', 'answer', 'complete', 'abandon', 'timeout')
GROUP BY node, call_id, queue;
