-- callfleet schema v1, SQLite flavour (keep in step with ../postgres/0001_init.sql).
-- Integer and text columns only, so one query text serves both databases:
-- booleans are INTEGER 0/1, times are INTEGER milliseconds since the UNIX epoch.

-- One row per node, rewritten by the node at every beat. The row is also the
-- node's static description (role, addresses, services, version): there is no
-- separate `nodes` table.
CREATE TABLE heartbeats (
    name          TEXT    PRIMARY KEY NOT NULL,
    role          TEXT    NOT NULL,
    sip_addr      TEXT    NOT NULL,
    http_addr     TEXT    NOT NULL,
    generation    INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    calls         INTEGER NOT NULL,
    capacity      INTEGER NOT NULL,
    cpu_milli     INTEGER NOT NULL,
    load1_milli   INTEGER NOT NULL,
    mem_used_kb   INTEGER NOT NULL,
    mem_total_kb  INTEGER NOT NULL,
    shed_level    INTEGER NOT NULL,
    draining      INTEGER NOT NULL CHECK (draining IN (0, 1)),
    refusing      INTEGER NOT NULL CHECK (refusing IN (0, 1)),
    services      TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

-- One point per beat, for the load graphs; pruned by age.
CREATE TABLE heartbeat_history (
    name        TEXT    NOT NULL,
    at_ms       INTEGER NOT NULL,
    calls       INTEGER NOT NULL,
    cpu_milli   INTEGER NOT NULL,
    load1_milli INTEGER NOT NULL
);
CREATE INDEX heartbeat_history_at_ms ON heartbeat_history (at_ms);

-- Calls in progress, one row per (node, SIP Call-ID).
CREATE TABLE live_calls (
    node            TEXT    NOT NULL,
    call_id         TEXT    NOT NULL,
    from_uri        TEXT    NOT NULL,
    to_uri          TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    started_at_ms   INTEGER NOT NULL,
    answered_at_ms  INTEGER,
    redirected_from TEXT,
    PRIMARY KEY (node, call_id)
);

-- Call detail records, append-only.
CREATE TABLE cdrs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    node            TEXT    NOT NULL,
    call_id         TEXT    NOT NULL,
    from_uri        TEXT    NOT NULL,
    to_uri          TEXT    NOT NULL,
    started_at_ms   INTEGER NOT NULL,
    answered_at_ms  INTEGER,
    ended_at_ms     INTEGER NOT NULL,
    hangup_cause    TEXT    NOT NULL,
    hangup_side     TEXT    NOT NULL,
    sip_status      INTEGER NOT NULL,
    redirected_from TEXT
);
CREATE INDEX cdrs_ended_at_ms ON cdrs (ended_at_ms);
