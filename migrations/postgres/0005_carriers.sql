-- Carriers managed from the admin pages: source networks allowed to send new
-- INVITEs, in addition to `carriers.allow` of each node's config file. Nodes
-- read them into their configuration cache (config_version), never per call.

CREATE TABLE carriers (
    name          TEXT    PRIMARY KEY,
    network       TEXT    NOT NULL, -- CIDR, e.g. 203.0.113.0/24 or 2001:db8::/32
    created_at_ms BIGINT  NOT NULL
);
