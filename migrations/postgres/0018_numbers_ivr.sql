-- Numbers (DIDs) and IVR menus (keep in step with ../sqlite/0018_numbers_ivr.sql). Configuration: every
-- write bumps config_version, and nodes route from their configuration cache, never per call.
--
-- A destination is a kind and a target: queue (name), menu (name), agent (extension), number
-- (another row of numbers), voicemail (extension) or message (a prompt played before hanging
-- up). The kinds are checked by the store's typed enum (DestKind), not here, so that a new
-- kind needs no table rebuild on SQLite.

-- numbers: a dialled number, where it goes in open hours and where when closed. open_hours
-- is empty (always open) or e.g. 'mon-fri 09:00-17:00; sat 10:00-12:30' in time_zone (IANA);
-- holidays are whole closed days, 'YYYY-MM-DD' separated by spaces.
CREATE TABLE numbers (
    number        TEXT   PRIMARY KEY,
    open_kind     TEXT   NOT NULL,
    open_target   TEXT   NOT NULL,
    closed_kind   TEXT   NOT NULL,
    closed_target TEXT   NOT NULL,
    time_zone     TEXT   NOT NULL DEFAULT 'UTC',
    open_hours    TEXT   NOT NULL DEFAULT '',
    holidays      TEXT   NOT NULL DEFAULT '',
    created_at_ms BIGINT NOT NULL
);

-- ivr_menus: a prompt (a file in the node's prompts directory, or one of its prompts by
-- name), played up to `repeats` times; after each play the caller has timeout_ms to press a
-- key. A key with no choice, or no key, plays the menu again; once the plays are used up the
-- caller goes to the invalid destination.
CREATE TABLE ivr_menus (
    name           TEXT    PRIMARY KEY,
    prompt         TEXT    NOT NULL,
    timeout_ms     BIGINT  NOT NULL CHECK (timeout_ms > 0),
    repeats        INTEGER NOT NULL CHECK (repeats > 0),
    invalid_kind   TEXT    NOT NULL,
    invalid_target TEXT    NOT NULL,
    created_at_ms  BIGINT  NOT NULL
);

-- ivr_choices: one key of a menu (0-9, * or #) and where it sends the caller. Written with
-- their menu, as a whole, in one transaction.
CREATE TABLE ivr_choices (
    menu   TEXT NOT NULL REFERENCES ivr_menus (name) ON DELETE CASCADE,
    digit  TEXT NOT NULL CHECK (digit IN ('0','1','2','3','4','5','6','7','8','9','*','#')),
    kind   TEXT NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (menu, digit)
);
