-- Agents' state history (keep in step with ../sqlite/0015_agent_states.sql): one row per change
-- of an agent's state, written by the triggers below in the transaction that changes it, so no
-- node writes it and no change is missed. The agents report reads logged-in time, pause time
-- and occupancy from it.
CREATE TABLE agent_states (
    id       BIGSERIAL PRIMARY KEY, -- the order of changes within one millisecond
    agent    TEXT   NOT NULL,
    state    TEXT   NOT NULL,
    since_ms BIGINT NOT NULL
);
CREATE INDEX agent_states_agent_since ON agent_states (agent, since_ms);
CREATE INDEX agent_states_since ON agent_states (since_ms, agent);

CREATE FUNCTION agent_states_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO agent_states (agent, state, since_ms)
    VALUES (NEW.extension, NEW.state, NEW.state_since_ms);
    RETURN NULL;
END
$$;

CREATE TRIGGER agent_states_on_insert AFTER INSERT ON agents FOR EACH ROW
    EXECUTE FUNCTION agent_states_log();
CREATE TRIGGER agent_states_on_update AFTER UPDATE ON agents FOR EACH ROW
    WHEN (NEW.state IS DISTINCT FROM OLD.state)
    EXECUTE FUNCTION agent_states_log();

-- Where the agents are now.
INSERT INTO agent_states (agent, state, since_ms) SELECT extension, state, state_since_ms FROM agents;
