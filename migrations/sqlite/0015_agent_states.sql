-- Agents' state history (keep in step with ../postgres/0015_agent_states.sql): one row per change
-- of an agent's state, written by the triggers below in the transaction that changes it, so no
-- node writes it and no change is missed. The agents report reads logged-in time, pause time
-- and occupancy from it.
CREATE TABLE agent_states (
    id       INTEGER PRIMARY KEY, -- the order of changes within one millisecond
    agent    TEXT    NOT NULL,
    state    TEXT    NOT NULL,
    since_ms INTEGER NOT NULL
);
CREATE INDEX agent_states_agent_since ON agent_states (agent, since_ms);
CREATE INDEX agent_states_since ON agent_states (since_ms, agent);

CREATE TRIGGER agent_states_on_insert AFTER INSERT ON agents
BEGIN
    INSERT INTO agent_states (agent, state, since_ms)
    VALUES (NEW.extension, NEW.state, NEW.state_since_ms);
END;

CREATE TRIGGER agent_states_on_update AFTER UPDATE OF state ON agents
    WHEN NEW.state IS NOT OLD.state
BEGIN
    INSERT INTO agent_states (agent, state, since_ms)
    VALUES (NEW.extension, NEW.state, NEW.state_since_ms);
END;

-- Where the agents are now.
INSERT INTO agent_states (agent, state, since_ms) SELECT extension, state, state_since_ms FROM agents;
