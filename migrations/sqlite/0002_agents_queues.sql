-- callfleet schema v2, SQLite flavour (keep in step with ../postgres/0002_agents_queues.sql).
-- Agents, phones and their registrations, queues, the cluster-wide queue of
-- waiting calls, queue events, voicemails, and the config version.
-- Integer and text columns only: booleans are INTEGER 0/1, times are INTEGER
-- milliseconds since the UNIX epoch.

-- Phones. HA1 = H(extension:realm:password), hex, for MD5 and SHA-256 digest
-- auth; no plaintext password is stored.
CREATE TABLE devices (
    extension     TEXT    PRIMARY KEY NOT NULL,
    ha1_md5       TEXT    NOT NULL,
    ha1_sha256    TEXT    NOT NULL,
    realm         TEXT    NOT NULL,
    display_name  TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL
);

-- Registrar bindings, one per (address of record, contact URI).
CREATE TABLE registrations (
    aor           TEXT    NOT NULL,
    contact       TEXT    NOT NULL,
    received      TEXT    NOT NULL, -- ip:port the REGISTER came from
    transport     TEXT    NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    user_agent    TEXT    NOT NULL,
    node          TEXT    NOT NULL,
    call_id       TEXT    NOT NULL,
    cseq          INTEGER NOT NULL,
    PRIMARY KEY (aor, contact)
);
CREATE INDEX registrations_expires_at_ms ON registrations (expires_at_ms);

-- Agents: configuration (name, pin_hash, daily_limit) and runtime state.
-- An agent is logged out exactly when it holds no device; a device holds at
-- most one agent. calls_today counts handled calls plus recorded sales on
-- the day calls_day (YYYY-MM-DD).
CREATE TABLE agents (
    extension        TEXT    PRIMARY KEY NOT NULL,
    name             TEXT    NOT NULL,
    pin_hash         TEXT    NOT NULL, -- sha256 hex of "ext:pin"
    device           TEXT    UNIQUE,
    state            TEXT    NOT NULL CHECK (state IN ('logged_out', 'available', 'reserved',
                                 'ringing', 'in_call', 'wrap_up', 'paused')),
    state_since_ms   INTEGER NOT NULL,
    last_call_end_ms INTEGER,
    calls_today      INTEGER NOT NULL DEFAULT 0 CHECK (calls_today >= 0),
    calls_day        TEXT,
    daily_limit      INTEGER CHECK (daily_limit >= 0),
    paused           INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    current_call     TEXT,
    current_node     TEXT,
    CHECK ((device IS NULL) = (state = 'logged_out'))
);
CREATE INDEX agents_current_node ON agents (current_node);

CREATE TABLE queues (
    name                 TEXT    PRIMARY KEY NOT NULL,
    strategy             TEXT    NOT NULL CHECK (strategy IN ('ringall', 'leastrecent',
                                     'fewestcalls', 'random', 'rrmemory', 'linear', 'wrandom')),
    ring_timeout_ms      INTEGER NOT NULL CHECK (ring_timeout_ms >= 0),
    max_wait_ms          INTEGER NOT NULL CHECK (max_wait_ms >= 0),
    announce_interval_ms INTEGER NOT NULL CHECK (announce_interval_ms >= 0),
    moh_class            TEXT    NOT NULL,
    wrapup_ms            INTEGER NOT NULL CHECK (wrapup_ms >= 0),
    fallback             TEXT    NOT NULL CHECK (fallback IN ('voicemail', 'queue', 'hangup')),
    fallback_target      TEXT,
    rr_last              TEXT -- runtime: the agent rrmemory offered last
);

-- Deleting a queue or an agent deletes its memberships.
CREATE TABLE queue_members (
    queue       TEXT    NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
    agent       TEXT    NOT NULL REFERENCES agents (extension) ON DELETE CASCADE,
    tier        INTEGER NOT NULL CHECK (tier >= 0), -- 0 = best
    vip_allowed INTEGER NOT NULL CHECK (vip_allowed IN (0, 1)),
    weight      INTEGER NOT NULL CHECK (weight >= 0), -- wrandom
    position    INTEGER NOT NULL, -- linear and rrmemory order
    PRIMARY KEY (queue, agent)
);
CREATE INDEX queue_members_agent ON queue_members (agent);

CREATE TABLE vip_callers (
    number TEXT NOT NULL,
    queue  TEXT NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
    PRIMARY KEY (number, queue)
);
CREATE INDEX vip_callers_queue ON vip_callers (queue);

-- The cluster-wide queue: one row per call waiting in (or being offered
-- from) a queue, on whichever node holds the call. No foreign key to
-- queues: a call in progress outlives a change of configuration.
CREATE TABLE queue_entries (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    queue          TEXT    NOT NULL,
    node           TEXT    NOT NULL,
    call_id        TEXT    NOT NULL,
    caller         TEXT    NOT NULL,
    priority       INTEGER NOT NULL, -- lower = first
    vip            INTEGER NOT NULL CHECK (vip IN (0, 1)),
    enqueued_at_ms INTEGER NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('waiting', 'offering', 'bridged')),
    offered_to     TEXT,
    UNIQUE (node, call_id)
);
CREATE INDEX queue_entries_order ON queue_entries (state, priority, enqueued_at_ms, id);

-- Append-only log of what happened to queued calls.
CREATE TABLE queue_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms   INTEGER NOT NULL,
    queue   TEXT    NOT NULL,
    call_id TEXT    NOT NULL,
    node    TEXT    NOT NULL,
    agent   TEXT,
    event   TEXT    NOT NULL, -- enqueue|offer|answer|noanswer|abandon|timeout|complete
    detail  TEXT
);
CREATE INDEX queue_events_at_ms ON queue_events (at_ms);
CREATE INDEX queue_events_call_id ON queue_events (call_id);

CREATE TABLE voicemails (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    agent         TEXT    NOT NULL, -- mailbox
    caller        TEXT    NOT NULL,
    path          TEXT    NOT NULL,
    duration_ms   INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    node          TEXT    NOT NULL
);
CREATE INDEX voicemails_agent ON voicemails (agent);

-- One row: bumped by every configuration write, polled by nodes to drop
-- their caches.
CREATE TABLE config_version (
    id      INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);
