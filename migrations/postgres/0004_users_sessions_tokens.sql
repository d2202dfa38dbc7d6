-- Panel users, their login sessions, and CRM API tokens.
-- Passwords are argon2id PHC strings; session ids and API token secrets are
-- random and stored only as SHA-256 hex, so a database dump logs nobody in.

CREATE TABLE users (
    name          TEXT    PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'supervisor')),
    device        TEXT, -- the user's own phone (listen-in dials it)
    created_at_ms BIGINT  NOT NULL
);

CREATE TABLE sessions (
    id_hash       TEXT    PRIMARY KEY,
    user_name     TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf          TEXT    NOT NULL,
    created_at_ms BIGINT  NOT NULL,
    expires_at_ms BIGINT  NOT NULL
);
CREATE INDEX sessions_expires_at_ms ON sessions (expires_at_ms);

CREATE TABLE api_tokens (
    id            TEXT    PRIMARY KEY, -- public part of the token
    secret_hash   TEXT    NOT NULL,
    name          TEXT    NOT NULL UNIQUE,
    created_at_ms BIGINT  NOT NULL
);
