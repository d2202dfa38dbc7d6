//! Numbers (DIDs): where each dialled number goes in its open hours and when closed, with
//! weekly open hours in its time zone and holiday dates. A destination is typed
//! `kind:target` (`queue:sales`, `menu:main`, `agent:1001`, `number:0800100`,
//! `voicemail:1001`, `message:goodbye`, `group:office`); the pure rules are [`check`] and [`destination`].

use callfleet_store::numbers::hours::{self, Hours};
use callfleet_store::{DestKind, Destination, Number, Store, StoreError};

use super::form::{self, invalid, Fields, Invalid, Problems};
use super::resource::Resource;
use super::view::{Field, Fieldset};
use super::{db, Ctx, Failure};
use crate::names::Kind;
use crate::page::Area;

/// Longest target of a destination.
const MAX_TARGET: usize = 100;

/// A destination typed `kind:target` in `field`: the kind one of [`DestKind`], the target a
/// name of its kind (a prompt is a plain file name: letters, digits, `-`, `_`, `.`).
pub fn destination(field: &'static str, value: &str) -> Result<Destination, Invalid> {
    if value.is_empty() {
        return Err(invalid(field, "required"));
    }
    let kinds: Vec<&str> = DestKind::ALL.iter().map(|k| k.as_str()).collect();
    let d: Destination = value.parse().map_err(|_| {
        invalid(
            field,
            format!(
                "{value:?}: write KIND:TARGET, KIND one of {}, e.g. queue:sales",
                kinds.join(", ")
            ),
        )
    })?;
    let target = &d.target;
    let ok = match d.kind {
        DestKind::Queue | DestKind::Menu | DestKind::Group => {
            form::name(field, Kind::Queue, target).is_ok()
        }
        DestKind::Agent | DestKind::Voicemail => form::name(field, Kind::Extension, target).is_ok(),
        DestKind::Number => form::name(field, Kind::Number, target).is_ok(),
        DestKind::Message => {
            target.len() <= MAX_TARGET
                && !target.starts_with('.')
                && target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        }
    };
    if !ok {
        return Err(invalid(
            field,
            format!("{target:?} is not a {} name", d.kind),
        ));
    }
    Ok(d)
}

/// Checks against the store that the queues, agents and ring groups a destination names exist
/// (menus and numbers may name each other before both exist, and a message's prompt is a
/// file on the nodes): every problem, or none.
pub async fn check_targets(
    store: &Store,
    destinations: &[(&'static str, &Destination)],
) -> Result<(), Failure> {
    let mut problems = Vec::new();
    let mut groups = None;
    for (field, d) in destinations {
        let t = d.target.as_str();
        let missing = match d.kind {
            DestKind::Queue => store.queue(t).await.map_err(db)?.is_none(),
            DestKind::Agent | DestKind::Voicemail => store.agent(t).await.map_err(db)?.is_none(),
            DestKind::Group => {
                if groups.is_none() {
                    groups = Some(store.groups().await.map_err(db)?);
                }
                !groups.iter().flatten().any(|g| g.name == t)
            }
            DestKind::Menu | DestKind::Number | DestKind::Message => false,
        };
        if missing {
            let what = match d.kind {
                DestKind::Queue => "queue",
                DestKind::Group => "ring group",
                _ => "agent",
            };
            problems.push(invalid(field, format!("there is no {what} {t:?}")));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::Invalid(Problems(problems)))
    }
}

/// A number from its form; `key` is the number on its own page (`None`: new).
pub fn check(f: &Fields, key: Option<&str>, now_ms: i64) -> Result<Number, Problems> {
    let mut problems = Vec::new();
    let mut take = |r: Result<String, Invalid>| {
        r.unwrap_or_else(|e| {
            problems.push(e);
            String::new()
        })
    };
    let number = take(form::name(
        "number",
        Kind::Number,
        key.unwrap_or(f.get("number")),
    ));
    let time_zone = match f.get("time_zone") {
        "" => "UTC".to_owned(),
        tz => take(
            jiff::tz::TimeZone::get(tz)
                .map(|_| tz.to_owned())
                .map_err(|_| {
                    invalid(
                        "time_zone",
                        format!("{tz:?} is not a known time zone (e.g. Europe/Paris, UTC)"),
                    )
                }),
        ),
    };
    let open_hours = take(
        Hours::parse(f.get("open_hours"))
            .map(|_| f.get("open_hours").to_owned())
            .map_err(|e| invalid("open_hours", e.0)),
    );
    let holidays = take(
        hours::parse_holidays(f.get("holidays"))
            .map(|days| {
                days.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .map_err(|e| invalid("holidays", e.0)),
    );
    let open = destination("open", f.get("open"));
    let closed = match f.get("closed") {
        "" => Ok(Destination::new(DestKind::Message, "goodbye")),
        c => destination("closed", c),
    };
    let (open, closed) = match (open, closed) {
        (Ok(o), Ok(c)) => (o, c),
        (o, c) => {
            problems.extend(o.err());
            problems.extend(c.err());
            (
                Destination::new(DestKind::Message, ""),
                Destination::new(DestKind::Message, ""),
            )
        }
    };
    if problems.is_empty() {
        Ok(Number {
            number,
            open,
            closed,
            time_zone,
            open_hours,
            holidays,
            created_at_ms: now_ms,
        })
    } else {
        Err(Problems(problems))
    }
}

/// The numbers.
pub struct Numbers;

impl Resource for Numbers {
    const PATH: &'static str = "numbers";
    const ID: &'static str = "number";
    const NOUN: &'static str = "number";
    const TITLE: &'static str = "Numbers";
    const KEY_FIELD: &'static str = "number";
    const AREA: Area = Area::Numbers;
    type Row = Number;
    type Form = Number;

    fn key(row: &Number) -> &str {
        &row.number
    }

    fn form_key(form: &Number) -> &str {
        &form.number
    }

    fn headers() -> Vec<&'static str> {
        vec!["open", "closed", "hours", "time zone"]
    }

    fn cells(n: &Number) -> Vec<String> {
        let hours = match n.open_hours.as_str() {
            "" => "always".to_owned(),
            h => h.to_owned(),
        };
        vec![
            n.open.to_string(),
            n.closed.to_string(),
            hours,
            n.time_zone.clone(),
        ]
    }

    fn notes() -> Vec<String> {
        vec![
            "A call to one of these numbers goes to its open destination within its open hours \
             and to its closed destination outside them and on its holidays. Numbers are \
             matched before queue names and extensions. Every node uses a change from its \
             next call on (within a second or two)."
                .into(),
        ]
    }

    fn values(n: &Number) -> Fields {
        Fields::from_pairs([
            ("number", n.number.as_str()),
            ("open", &n.open.to_string()),
            ("closed", &n.closed.to_string()),
            ("time_zone", n.time_zone.as_str()),
            ("open_hours", n.open_hours.as_str()),
            ("holidays", n.holidays.as_str()),
        ])
    }

    fn fieldsets(v: &Fields, key: Option<&str>) -> Vec<Fieldset> {
        let number = match key {
            Some(key) => Field::text("number", "Number").value(key).readonly(),
            None => Field::text("number", "Number").from(v, "").required(),
        };
        let kinds = "queue:NAME, menu:NAME, agent:EXTENSION, number:NUMBER, voicemail:EXTENSION, \
                     group:NAME (a ring group) or message:PROMPT (a prompt of the node, e.g. \
                     goodbye, or a .wav file of its prompts directory).";
        vec![
            Fieldset {
                legend: "Number",
                fields: vec![
                    number.hint("As dialled: the user part of the request URI."),
                    Field::text("open", "Open destination")
                        .from(v, "")
                        .required()
                        .hint(format!("Where calls go in open hours: {kinds}")),
                    Field::text("closed", "Closed destination")
                        .from(v, "message:goodbye")
                        .hint("Where calls go outside open hours and on holidays, written the same way."),
                ],
            },
            Fieldset {
                legend: "Schedule",
                fields: vec![
                    Field::text("time_zone", "Time zone")
                        .from(v, "UTC")
                        .hint("IANA name: Europe/Paris, America/New_York, UTC."),
                    Field::text("open_hours", "Open hours").from(v, "").hint(
                        "Empty: always open. Else e.g. mon-fri 09:00-17:00; sat 10:00-12:30 \
                         (spans separated by ';', a span does not cross midnight).",
                    ),
                    Field::text("holidays", "Holidays")
                        .from(v, "")
                        .hint("Closed all day: dates YYYY-MM-DD separated by spaces, e.g. 2026-12-25 2027-01-01."),
                ],
            },
        ]
    }

    fn check(f: &Fields, key: Option<&str>, now_ms: i64) -> Result<Number, Problems> {
        check(f, key, now_ms)
    }

    async fn list(store: &Store) -> Result<Vec<Number>, StoreError> {
        store.numbers().await
    }

    async fn load(store: &Store, key: &str) -> Result<Option<Number>, StoreError> {
        Ok(store.numbers().await?.into_iter().find(|n| n.number == key))
    }

    async fn save(ctx: &Ctx, n: Number, _old: Option<Number>) -> Result<(), Failure> {
        check_targets(
            &ctx.state.store,
            &[("open", &n.open), ("closed", &n.closed)],
        )
        .await?;
        ctx.state.store.upsert_number(&n).await.map_err(db)
    }

    async fn remove(ctx: &Ctx, n: Number) -> Result<(), Failure> {
        if !ctx.state.store.delete_number(&n.number).await.map_err(db)? {
            return Err(Failure::NotFound {
                what: "number",
                name: n.number,
            });
        }
        Ok(())
    }

    fn delete_note(n: &Number) -> Option<String> {
        Some(format!(
            "New calls to {} are routed as before numbers existed: to a queue or an extension \
             of that name, else music on hold; calls in progress go on.",
            n.number
        ))
    }
}

#[cfg(test)]
mod tests;
