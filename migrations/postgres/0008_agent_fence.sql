-- Agent fencing (keep in step with ../sqlite/0008_agent_fence.sql).
--
-- The fencing token of the lockd lease under which the agent's state last changed. A change
-- made under a lease carries that lease's token and is refused when the stored token is
-- newer: a holder whose lease ran out (a node paused or cut off, then back) cannot undo what
-- the next holder did. 0: no change under a lease yet.
ALTER TABLE agents ADD COLUMN fence BIGINT NOT NULL DEFAULT 0;
