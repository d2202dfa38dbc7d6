-- Ring groups (keep in step with ../postgres/0021_ring_groups.sql). Configuration: every write
-- bumps config_version, and nodes ring from their configuration cache, never per call. A
-- number or an IVR choice sends a caller to a group with the destination kind 'group'.

-- ring_groups: how the members are rung (strategy 'all': every member at once for ring_ms;
-- 'ordered': one member after another, each for ring_ms), where the caller goes when nobody
-- answers (a destination, as in numbers), and the music-on-hold class the caller hears
-- meanwhile (empty: the node's default class).
CREATE TABLE ring_groups (
    name             TEXT   PRIMARY KEY NOT NULL,
    strategy         TEXT   NOT NULL,
    ring_ms          BIGINT NOT NULL CHECK (ring_ms > 0),
    no_answer_kind   TEXT   NOT NULL,
    no_answer_target TEXT   NOT NULL,
    moh_class        TEXT   NOT NULL DEFAULT '',
    created_at_ms    BIGINT NOT NULL
);

-- ring_group_members: the members in ring order (position from 0): an agent's extension
-- (kind 'agent': the phone the agent is logged in on) or a phone's device extension (kind
-- 'device'). Written with their group, as a whole, in one transaction.
CREATE TABLE ring_group_members (
    group_name TEXT    NOT NULL REFERENCES ring_groups (name) ON DELETE CASCADE,
    position   INTEGER NOT NULL CHECK (position >= 0),
    kind       TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    PRIMARY KEY (group_name, position)
);
