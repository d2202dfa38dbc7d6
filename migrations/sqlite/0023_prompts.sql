-- Prompts uploaded on the admin pages (keep in step with ../postgres/0023_prompts.sql): recordings
-- for IVR menus and hang-up messages, converted on upload to what the nodes play (8 kHz mono
-- 16-bit WAV). Every write bumps config_version; nodes list the prompts (name and upload time,
-- not the audio) in their configuration cache and fetch a prompt's audio once per upload.
CREATE TABLE prompts (
    name           TEXT   PRIMARY KEY,
    wav            BLOB   NOT NULL,
    samples        BIGINT NOT NULL CHECK (samples > 0),
    uploaded_at_ms BIGINT NOT NULL
);
