//! IVR menus: a prompt, a destination per key (typed `kind:target` like a number's), how
//! long to wait for a key, how many times the menu plays, and the invalid path (where the
//! caller goes once the plays are used up without a valid key). The pure rules are [`check`].

use std::collections::BTreeMap;

use callfleet_store::{DestKind, IvrMenu, Store, StoreError, IVR_DIGITS};

use super::form::{self, invalid, Fields, Invalid, Problems};
use super::numbers::{check_targets, destination};
use super::resource::Resource;
use super::view::{Field, Fieldset};
use super::{db, Ctx, Failure};
use crate::names::Kind;
use crate::page::Area;

/// The key fields, one per key of [`IVR_DIGITS`], in that order.
pub const KEY_FIELDS: [(char, &str, &str); 12] = [
    ('0', "key_0", "Key 0"),
    ('1', "key_1", "Key 1"),
    ('2', "key_2", "Key 2"),
    ('3', "key_3", "Key 3"),
    ('4', "key_4", "Key 4"),
    ('5', "key_5", "Key 5"),
    ('6', "key_6", "Key 6"),
    ('7', "key_7", "Key 7"),
    ('8', "key_8", "Key 8"),
    ('9', "key_9", "Key 9"),
    ('*', "key_star", "Key *"),
    ('#', "key_hash", "Key #"),
];

/// How long the caller has to press a key after the prompt.
pub const TIMEOUT: form::Duration = form::Duration {
    field: "timeout_s",
    min_ms: 1_000,
    max_ms: 60_000,
    default_ms: Some(5_000),
};

/// Most plays of one menu.
pub const MAX_REPEATS: u32 = 10;

/// A prompt: a plain file name of the prompts directory or a prompt of the node.
fn prompt(value: &str) -> Result<String, Invalid> {
    if value.is_empty() {
        return Err(invalid("prompt", "required"));
    }
    let plain = value.len() <= 100
        && !value.starts_with('.')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !plain {
        return Err(invalid(
            "prompt",
            format!("{value:?}: a file name of the prompts directory (letters, digits, '-', '_', '.'), e.g. welcome.wav"),
        ));
    }
    Ok(value.to_owned())
}

fn repeats(value: &str) -> Result<u32, Invalid> {
    match value {
        "" => Ok(3),
        v => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_REPEATS).contains(n))
            .ok_or_else(|| invalid("repeats", format!("a whole number from 1 to {MAX_REPEATS}"))),
    }
}

/// A menu from its form; `key` is the menu's name on its own page (`None`: new).
pub fn check(f: &Fields, key: Option<&str>, now_ms: i64) -> Result<IvrMenu, Problems> {
    let mut problems = Vec::new();
    let name = form::name("name", Kind::Queue, key.unwrap_or(f.get("name")));
    let prompt = prompt(f.get("prompt"));
    let timeout = form::parse_seconds(&TIMEOUT, f.get("timeout_s"));
    let repeats = repeats(f.get("repeats"));
    let invalid_to = match f.get("invalid") {
        "" => Ok(callfleet_store::Destination::new(
            DestKind::Message,
            "goodbye",
        )),
        v => destination("invalid", v),
    };
    let moh_class = match f.get("moh_class") {
        "" => Ok("default".to_owned()),
        class => form::name("moh_class", Kind::Class, class),
    };
    let mut choices = BTreeMap::new();
    for (k, field, _) in KEY_FIELDS {
        match f.get(field) {
            "" => {}
            v => match destination(field, v) {
                Ok(d) => {
                    choices.insert(k, d);
                }
                Err(e) => problems.push(e),
            },
        }
    }
    match (name, prompt, timeout, repeats, invalid_to, moh_class) {
        (Ok(name), Ok(prompt), Ok(timeout_ms), Ok(repeats), Ok(invalid), Ok(moh_class))
            if problems.is_empty() =>
        {
            Ok(IvrMenu {
                name,
                prompt,
                timeout_ms,
                repeats,
                invalid,
                choices,
                moh_class,
                created_at_ms: now_ms,
            })
        }
        (name, prompt, timeout, repeats, invalid_to, moh_class) => {
            let mut all: Vec<Invalid> = [
                name.err(),
                prompt.err(),
                timeout.err(),
                repeats.err(),
                invalid_to.err(),
                moh_class.err(),
            ]
            .into_iter()
            .flatten()
            .collect();
            all.extend(problems);
            Err(Problems(all))
        }
    }
}

/// The IVR menus.
pub struct Menus;

impl Resource for Menus {
    const PATH: &'static str = "menus";
    const ID: &'static str = "menu";
    const NOUN: &'static str = "IVR menu";
    const TITLE: &'static str = "IVR menus";
    const KEY_FIELD: &'static str = "name";
    const AREA: Area = Area::Menus;
    type Row = IvrMenu;
    type Form = IvrMenu;

    fn key(row: &IvrMenu) -> &str {
        &row.name
    }

    fn form_key(form: &IvrMenu) -> &str {
        &form.name
    }

    fn headers() -> Vec<&'static str> {
        vec!["prompt", "keys", "invalid path"]
    }

    fn cells(m: &IvrMenu) -> Vec<String> {
        let keys: Vec<String> = m.choices.iter().map(|(k, d)| format!("{k} {d}")).collect();
        vec![m.prompt.clone(), keys.join(", "), m.invalid.to_string()]
    }

    fn notes() -> Vec<String> {
        vec![format!(
            "A menu plays its prompt and waits for a key (RFC 4733); a key without a \
             destination, or none, plays it again up to its repeats, then the caller takes the \
             invalid path. Keys are {IVR_DIGITS}. A number or another menu leads to a menu with \
             menu:NAME. Prompts are uploaded on the Prompts page (/admin/prompts). Every node \
             uses a change from its next call on."
        )]
    }

    fn values(m: &IvrMenu) -> Fields {
        let mut pairs: Vec<(&str, String)> = vec![
            ("name", m.name.clone()),
            ("prompt", m.prompt.clone()),
            ("timeout_s", form::seconds(m.timeout_ms)),
            ("repeats", m.repeats.to_string()),
            ("invalid", m.invalid.to_string()),
            ("moh_class", m.moh_class.clone()),
        ];
        for (k, field, _) in KEY_FIELDS {
            if let Some(d) = m.choices.get(&k) {
                pairs.push((field, d.to_string()));
            }
        }
        Fields::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
    }

    fn fieldsets(v: &Fields, key: Option<&str>) -> Vec<Fieldset> {
        let name = match key {
            Some(key) => Field::text("name", "Name").value(key).readonly(),
            None => Field::text("name", "Name").from(v, "").required(),
        };
        let keys = KEY_FIELDS
            .iter()
            .map(|(_, field, label)| Field::text(field, label).from(v, ""))
            .collect();
        vec![
            Fieldset {
                legend: "IVR menu",
                fields: vec![
                    name.hint("Letters, digits, '-', '_', '.', '+'."),
                    Field::text("prompt", "Prompt").from(v, "").required().hint(
                        "A prompt uploaded on the Prompts page (/admin/prompts) by its name, \
                         a WAV file (8 kHz, mono, 16-bit) in each node's prompts directory, \
                         e.g. welcome.wav, or one of the node's prompts by name.",
                    ),
                    Field::number("timeout_s", "Key timeout (s)", 1, 60, "any")
                        .from(v, "5")
                        .hint("How long the caller has to press a key after the prompt."),
                    Field::number("repeats", "Plays", 1, MAX_REPEATS, "1")
                        .from(v, "3")
                        .hint("How many times the menu plays before the invalid path."),
                    Field::text("invalid", "Invalid path")
                        .from(v, "message:goodbye")
                        .hint("Where the caller goes once the plays are used up: queue:NAME, menu:NAME, agent:EXTENSION, number:NUMBER, voicemail:EXTENSION, group:NAME or message:PROMPT."),
                    Field::text("moh_class", "Music on hold class")
                        .from(v, "default")
                        .hint("What a caller who leaves the menu for an agent's extension hears while that phone rings: a folder of the music directory (queues and ring groups play their own)."),
                ],
            },
            Fieldset {
                legend: "Keys (empty: no choice)",
                fields: keys,
            },
        ]
    }

    fn check(f: &Fields, key: Option<&str>, now_ms: i64) -> Result<IvrMenu, Problems> {
        check(f, key, now_ms)
    }

    async fn list(store: &Store) -> Result<Vec<IvrMenu>, StoreError> {
        store.menus().await
    }

    async fn load(store: &Store, key: &str) -> Result<Option<IvrMenu>, StoreError> {
        Ok(store.menus().await?.into_iter().find(|m| m.name == key))
    }

    async fn save(ctx: &Ctx, m: IvrMenu, _old: Option<IvrMenu>) -> Result<(), Failure> {
        let mut targets = vec![("invalid", &m.invalid)];
        for (k, field, _) in KEY_FIELDS {
            if let Some(d) = m.choices.get(&k) {
                targets.push((field, d));
            }
        }
        check_targets(&ctx.state.store, &targets).await?;
        ctx.state.store.upsert_menu(&m).await.map_err(db)
    }

    async fn remove(ctx: &Ctx, m: IvrMenu) -> Result<(), Failure> {
        if !ctx.state.store.delete_menu(&m.name).await.map_err(db)? {
            return Err(Failure::NotFound {
                what: "IVR menu",
                name: m.name,
            });
        }
        Ok(())
    }

    fn delete_note(m: &IvrMenu) -> Option<String> {
        Some(format!(
            "Callers sent to menu:{} from now on take the invalid path of the menu they come \
             from, or hear goodbye; calls in progress in it do the same at their next key.",
            m.name
        ))
    }
}
