-- Office VoIP proxies (keep in step with ../postgres/0019_proxies.sql).
--
-- proxies: SIP proxies or SBCs of offices whose public address may change. Each checks in with
-- POST /api/v1/proxies/{name}/checkin and its token; the source IP of the check-in becomes its
-- address, from which nodes then take REGISTERs and calls. Only the SHA-256 of the token is
-- kept, so a database dump lets nobody move a proxy. address is NULL until the first check-in.
CREATE TABLE proxies (
    name            TEXT   PRIMARY KEY,
    token_hash      TEXT   NOT NULL UNIQUE, -- hex SHA-256 of the token
    address         TEXT,                   -- IP address of the last check-in
    last_checkin_ms BIGINT,                 -- time of the last check-in
    created_at_ms   BIGINT NOT NULL
);
