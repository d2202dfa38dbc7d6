-- callfleet schema v1, PostgreSQL flavour (keep in step with ../sqlite/0001_init.sql).
-- Integer and text columns only, so one query text serves both databases:
-- booleans are BIGINT 0/1, times are BIGINT milliseconds since the UNIX epoch.

-- One row per node, rewritten by the node at every beat. The row is also the
-- node's static description (role, addresses, services, version): there is no
-- separate `nodes` table.
CREATE TABLE heartbeats (
    name          TEXT   PRIMARY KEY,
    role          TEXT   NOT NULL,
    sip_addr      TEXT   NOT NULL,
    http_addr     TEXT   NOT NULL,
    generation    BIGINT NOT NULL,
    seq           BIGINT NOT NULL,
    calls         BIGINT NOT NULL,
    capacity      BIGINT NOT NULL,
    cpu_milli     BIGINT NOT NULL,
    load1_milli   BIGINT NOT NULL,
    mem_used_kb   BIGINT NOT NULL,
    mem_total_kb  BIGINT NOT NULL,
    shed_level    BIGINT NOT NULL,
    draining      BIGINT NOT NULL CHECK (draining IN (0, 1)),
    refusing      BIGINT NOT NULL CHECK (refusing IN (0, 1)),
    services      TEXT   NOT NULL,
    version       TEXT   NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

-- One point per beat, for the load graphs; pruned by age.
CREATE TABLE heartbeat_history (
    name        TEXT   NOT NULL,
    at_ms       BIGINT NOT NULL,
    calls       BIGINT NOT NULL,
    cpu_milli   BIGINT NOT NULL,
    load1_milli BIGINT NOT NULL
);
CREATE INDEX heartbeat_history_at_ms ON heartbeat_history (at_ms);

-- Calls in progress, one row per (node, SIP Call-ID).
CREATE TABLE live_calls (
    node            TEXT   NOT NULL,
    call_id         TEXT   NOT NULL,
    from_uri        TEXT   NOT NULL,
    to_uri          TEXT   NOT NULL,
    state           TEXT   NOT NULL,
    started_at_ms   BIGINT NOT NULL,
    answered_at_ms  BIGINT,
    redirected_from TEXT,
    PRIMARY KEY (node, call_id)
);

-- Call detail records, append-only.
CREATE TABLE cdrs (
    id              BIGSERIAL PRIMARY KEY,
    node            TEXT   NOT NULL,
    call_id         TEXT   NOT NULL,
    from_uri        TEXT   NOT NULL,
    to_uri          TEXT   NOT NULL,
    started_at_ms   BIGINT NOT NULL,
    answered_at_ms  BIGINT,
    ended_at_ms     BIGINT NOT NULL,
    hangup_cause    TEXT   NOT NULL,
    hangup_side     TEXT   NOT NULL,
    sip_status      BIGINT NOT NULL,
    redirected_from TEXT
);
CREATE INDEX cdrs_ended_at_ms ON cdrs (ended_at_ms);
