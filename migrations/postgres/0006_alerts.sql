-- Alerts (keep in step with ../sqlite/0006_alerts.sql).
--
-- `alerts` holds the alerts firing now, one row per (kind, subject); every node's panel
-- shows them. A row is inserted by the node that notifies the alert and deleted by the node
-- that notifies its end: the row count of that INSERT .. ON CONFLICT DO NOTHING and of that
-- DELETE says which node sends, so each alert is sent once and its end once.
CREATE TABLE alerts (
    kind          TEXT    NOT NULL,
    subject       TEXT    NOT NULL,
    node          TEXT,             -- the node it is about, NULL for a queue or a carrier
    severity      TEXT    NOT NULL CHECK (severity IN ('warning', 'critical')),
    message       TEXT    NOT NULL,
    raised_at_ms  BIGINT  NOT NULL,
    updated_at_ms BIGINT  NOT NULL,
    reported_by   TEXT    NOT NULL, -- the node that sent the notification
    PRIMARY KEY (kind, subject)
);

-- When each node last took an INVITE from each carrier of the `carriers` table, for the
-- carrier-silence alert (written by each node at most every few seconds, never per call).
CREATE TABLE carrier_traffic (
    carrier           TEXT    NOT NULL,
    node              TEXT    NOT NULL,
    last_invite_at_ms BIGINT  NOT NULL,
    PRIMARY KEY (carrier, node)
);
