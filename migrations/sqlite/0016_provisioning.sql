-- Phones that configure themselves over HTTP(S) (GET /provision/{file}; keep in step with
-- ../postgres/0016_provisioning.sql).
--
-- provisioning_tokens: the tokens an admin makes (`callfleet provision token add`) so that a
-- phone never seen before may fetch its first configuration. Only the SHA-256 of a token is
-- kept, so a database dump creates no phone.
CREATE TABLE provisioning_tokens (
    name          TEXT   PRIMARY KEY,
    token_hash    TEXT   NOT NULL UNIQUE, -- hex SHA-256 of the token
    created_at_ms BIGINT NOT NULL
);

-- provisioned_phones: the device extension each phone (MAC) was given on its first fetch. No
-- password is kept: the phone's SIP password and its own provisioning password are HMACs of
-- `salt` under a key derived from http.secret, so the database alone gives neither.
CREATE TABLE provisioned_phones (
    mac           TEXT   PRIMARY KEY,     -- 12 lower-case hex digits
    extension     TEXT   NOT NULL UNIQUE, -- the devices row it was given
    family        TEXT   NOT NULL CHECK (family IN ('yealink', 'grandstream')),
    salt          TEXT   NOT NULL,        -- 32 random hex digits
    source        TEXT   NOT NULL,        -- IP address of the first fetch
    token_name    TEXT   NOT NULL,        -- the provisioning token it was created with
    created_at_ms BIGINT NOT NULL,
    fetched_at_ms BIGINT NOT NULL         -- the last configuration served
);
