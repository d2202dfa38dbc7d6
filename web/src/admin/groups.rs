//! Ring groups: members rung at once (`all`) or one after another (`ordered`), each for the
//! ring time, the music-on-hold class the caller hears meanwhile, and the no-answer destination
//! (typed `kind:target` like a number's). Members are written in ring order as
//! `agent:EXTENSION` (the phone the agent is logged in on) or `device:EXTENSION` (a phone rung
//! directly), separated by commas or spaces. The pure rules are [`check`] and [`members`]; a
//! group a number or an IVR menu sends callers to cannot be deleted.

use callfleet_store::{
    DestKind, Destination, GroupMember, GroupStrategy, MemberKind, RingGroup, Store, StoreError,
};

use super::form::{self, invalid, Fields, Invalid, Problems};
use super::numbers::{check_targets, destination};
use super::resource::Resource;
use super::view::{Field, Fieldset};
use super::{db, Ctx, Failure};
use crate::names::Kind;
use crate::page::Area;

/// How long each member (`ordered`) or every member (`all`) rings.
pub const RING: form::Duration = form::Duration {
    field: "ring_s",
    min_ms: 1_000,
    max_ms: 300_000,
    default_ms: Some(20_000),
};

/// Most members of one group.
pub const MAX_MEMBERS: usize = 32;

/// The strategies, as the form offers them.
const STRATEGIES: [&str; 2] = [GroupStrategy::All.as_str(), GroupStrategy::Ordered.as_str()];

/// The members field: `kind:extension` items in ring order, separated by commas or spaces.
pub fn members(value: &str) -> Result<Vec<GroupMember>, Invalid> {
    const FIELD: &str = "members";
    let mut out: Vec<GroupMember> = Vec::new();
    for item in value
        .split([',', ' ', '\n', '\r', '\t'])
        .filter(|i| !i.is_empty())
    {
        let m: GroupMember = item.parse().map_err(|_| {
            invalid(
                FIELD,
                format!("{item:?}: write agent:EXTENSION or device:EXTENSION, e.g. agent:1001"),
            )
        })?;
        form::name(FIELD, Kind::Extension, &m.extension)?;
        if out.contains(&m) {
            return Err(invalid(FIELD, format!("{m} is named twice")));
        }
        out.push(m);
    }
    if out.len() > MAX_MEMBERS {
        return Err(invalid(FIELD, format!("at most {MAX_MEMBERS} members")));
    }
    Ok(out)
}

/// A group from its form; `key` is the group's name on its own page (`None`: new).
pub fn check(f: &Fields, key: Option<&str>, now_ms: i64) -> Result<RingGroup, Problems> {
    let name = form::name("name", Kind::Queue, key.unwrap_or(f.get("name")));
    let strategy = match f.get("strategy") {
        "" => Ok(GroupStrategy::default()),
        v => v.parse::<GroupStrategy>().map_err(|_| {
            invalid(
                "strategy",
                format!(
                    "unknown strategy {v:?}: use one of {}",
                    STRATEGIES.join(", ")
                ),
            )
        }),
    };
    let ring = form::parse_seconds(&RING, f.get(RING.field));
    let members = members(f.get("members"));
    let no_answer = match f.get("no_answer") {
        "" => Ok(Destination::new(DestKind::Message, "goodbye")),
        v => destination("no_answer", v),
    };
    let moh_class = match f.get("moh_class") {
        "" => Ok("default".to_owned()),
        class => form::name("moh_class", Kind::Class, class),
    };
    match (name, strategy, ring, members, no_answer, moh_class) {
        (Ok(name), Ok(strategy), Ok(ring_ms), Ok(members), Ok(no_answer), Ok(moh_class)) => {
            Ok(RingGroup {
                name,
                strategy,
                ring_ms,
                members,
                no_answer,
                moh_class,
                created_at_ms: now_ms,
            })
        }
        (name, strategy, ring, members, no_answer, moh_class) => Err(Problems(
            [
                name.err(),
                strategy.err(),
                ring.err(),
                members.err(),
                no_answer.err(),
                moh_class.err(),
            ]
            .into_iter()
            .flatten()
            .collect(),
        )),
    }
}

/// Where the numbers and IVR menus send callers to group `name`: `number 0800` or
/// `menu main (key 1)`, for the refusal to delete it.
pub async fn users(store: &Store, name: &str) -> Result<Vec<String>, StoreError> {
    let to = Destination::new(DestKind::Group, name);
    let mut out = Vec::new();
    for n in store.numbers().await? {
        if n.open == to || n.closed == to {
            out.push(format!("number {}", n.number));
        }
    }
    for m in store.menus().await? {
        let keys: Vec<String> = m
            .choices
            .iter()
            .filter(|(_, d)| **d == to)
            .map(|(k, _)| format!("key {k}"))
            .chain((m.invalid == to).then(|| "invalid path".to_owned()))
            .collect();
        if !keys.is_empty() {
            out.push(format!("menu {} ({})", m.name, keys.join(", ")));
        }
    }
    for g in store.groups().await? {
        if g.name != name && g.no_answer == to {
            out.push(format!("ring group {} (no answer)", g.name));
        }
    }
    Ok(out)
}

/// The ring groups.
pub struct Groups;

impl Resource for Groups {
    const PATH: &'static str = "groups";
    const ID: &'static str = "group";
    const NOUN: &'static str = "ring group";
    const TITLE: &'static str = "Ring groups";
    const KEY_FIELD: &'static str = "name";
    const AREA: Area = Area::Groups;
    type Row = RingGroup;
    type Form = RingGroup;

    fn key(row: &RingGroup) -> &str {
        &row.name
    }

    fn form_key(form: &RingGroup) -> &str {
        &form.name
    }

    fn headers() -> Vec<&'static str> {
        vec!["strategy", "ring time", "members", "no answer"]
    }

    fn cells(g: &RingGroup) -> Vec<String> {
        let members: Vec<String> = g.members.iter().map(ToString::to_string).collect();
        vec![
            g.strategy.to_string(),
            format!("{} s", form::seconds(g.ring_ms)),
            members.join(", "),
            g.no_answer.to_string(),
        ]
    }

    fn notes() -> Vec<String> {
        vec![
            "A number or an IVR menu key sends callers to a group with group:NAME. The caller \
             hears music on hold while the members ring: all at once (the first to answer \
             takes the call, the others stop ringing) or one after another in order, each for \
             the ring time; then the no-answer destination. An agent member rings the phone \
             the agent is logged in on, and is passed over while logged out, paused or on \
             another call; a device member rings that phone. Every node uses a change from \
             its next call on."
                .into(),
        ]
    }

    fn values(g: &RingGroup) -> Fields {
        let members: Vec<String> = g.members.iter().map(ToString::to_string).collect();
        Fields::from_pairs([
            ("name", g.name.as_str()),
            ("strategy", g.strategy.as_str()),
            ("ring_s", &form::seconds(g.ring_ms)),
            ("members", &members.join(", ")),
            ("no_answer", &g.no_answer.to_string()),
            ("moh_class", g.moh_class.as_str()),
        ])
    }

    fn fieldsets(v: &Fields, key: Option<&str>) -> Vec<Fieldset> {
        let name = match key {
            Some(key) => Field::text("name", "Name").value(key).readonly(),
            None => Field::text("name", "Name").from(v, "").required(),
        };
        vec![Fieldset {
            legend: "Ring group",
            fields: vec![
                name.hint("Letters, digits, '-', '_', '.', '+'."),
                Field::select("strategy", "Strategy", &STRATEGIES)
                    .from(v, "all")
                    .hint("all: every member rings at once; ordered: one member after another."),
                Field::number("ring_s", "Ring time (s)", 1, 300, "any")
                    .from(v, "20")
                    .hint("all: how long the members ring; ordered: how long each member rings."),
                Field::text("members", "Members")
                    .from(v, "")
                    .hint("In ring order, separated by commas: agent:EXTENSION (the phone the agent is logged in on) or device:EXTENSION (that phone), e.g. agent:1001, device:2001."),
                Field::text("no_answer", "No-answer destination")
                    .from(v, "message:goodbye")
                    .hint("Where the caller goes when nobody answers: queue:NAME, menu:NAME, agent:EXTENSION, number:NUMBER, voicemail:EXTENSION, message:PROMPT or group:NAME."),
                Field::text("moh_class", "Music on hold class")
                    .from(v, "default")
                    .hint("What the caller hears while the members ring: a folder of the music directory."),
            ],
        }]
    }

    fn check(f: &Fields, key: Option<&str>, now_ms: i64) -> Result<RingGroup, Problems> {
        check(f, key, now_ms)
    }

    async fn list(store: &Store) -> Result<Vec<RingGroup>, StoreError> {
        store.groups().await
    }

    async fn load(store: &Store, key: &str) -> Result<Option<RingGroup>, StoreError> {
        Ok(store.groups().await?.into_iter().find(|g| g.name == key))
    }

    async fn save(ctx: &Ctx, g: RingGroup, _old: Option<RingGroup>) -> Result<(), Failure> {
        let store = &ctx.state.store;
        if g.no_answer == Destination::new(DestKind::Group, g.name.clone()) {
            return Err(Failure::invalid(
                "no_answer",
                "a group cannot be its own no-answer destination",
            ));
        }
        check_targets(store, &[("no_answer", &g.no_answer)]).await?;
        let mut problems = Vec::new();
        for m in &g.members {
            let missing = match m.kind {
                MemberKind::Agent => store.agent(&m.extension).await.map_err(db)?.is_none(),
                MemberKind::Device => store.device(&m.extension).await.map_err(db)?.is_none(),
            };
            if missing {
                let what = match m.kind {
                    MemberKind::Agent => "agent",
                    MemberKind::Device => "phone",
                };
                problems.push(invalid(
                    "members",
                    format!("there is no {what} {:?}", m.extension),
                ));
            }
        }
        if !problems.is_empty() {
            return Err(Failure::Invalid(Problems(problems)));
        }
        store.upsert_group(&g).await.map_err(db)
    }

    async fn remove(ctx: &Ctx, g: RingGroup) -> Result<(), Failure> {
        let used = users(&ctx.state.store, &g.name).await.map_err(db)?;
        if !used.is_empty() {
            return Err(Failure::invalid(
                "",
                format!(
                    "ring group {} is a destination of {}; change those first",
                    g.name,
                    used.join(", ")
                ),
            ));
        }
        if !ctx.state.store.delete_group(&g.name).await.map_err(db)? {
            return Err(Failure::NotFound {
                what: "ring group",
                name: g.name,
            });
        }
        Ok(())
    }

    fn delete_note(g: &RingGroup) -> Option<String> {
        Some(format!(
            "A group that a number, an IVR menu or another group's no-answer destination names \
             cannot be deleted: change those first. Calls ringing group:{} now go on.",
            g.name
        ))
    }
}

#[cfg(test)]
mod tests;
