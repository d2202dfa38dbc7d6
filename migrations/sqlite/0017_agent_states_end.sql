-- Each agent state change keeps when it ended (keep in step with ../postgres/0017_agent_states_end.sql),
-- so the agents report sums time in states with one pass over the window's rows and no sort.
-- A change ends when the agent's next change is written (SQLite has one writer: the changes of
-- one agent are written in the order they happened, their `id` order), and each one closes the
-- one still open before it. A change still open has no end (it lasts until now).
ALTER TABLE agent_states ADD COLUMN end_ms INTEGER;

UPDATE agent_states SET end_ms = n.next_since
FROM (SELECT id, LEAD(since_ms) OVER (PARTITION BY agent ORDER BY id) AS next_since
      FROM agent_states) n
WHERE agent_states.id = n.id AND n.next_since IS NOT NULL;

-- The open change of each agent, found by the trigger below.
CREATE INDEX agent_states_open ON agent_states (agent) WHERE end_ms IS NULL;
-- The changes that reach into a window: `end_ms >= from` or still open.
CREATE INDEX agent_states_end ON agent_states (end_ms);

CREATE TRIGGER agent_states_close BEFORE INSERT ON agent_states
BEGIN
    UPDATE agent_states SET end_ms = NEW.since_ms WHERE agent = NEW.agent AND end_ms IS NULL;
END;
