//! Queues: their rules (times in seconds), and on each queue's page its members (agent,
//! tier, VIP permission, weight, position) and VIP callers.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use callfleet_store::{Agent, Fallback, Member, Queue, Store, StoreError, VipCaller};

use super::form::{self, Fields, Problems, ANNOUNCE, MAX_WAIT, RING_TIMEOUT, WRAPUP};
use super::resource::{confirm_page, edit_page, href, Resource};
use super::view::{seg, Cell, Field, Fieldset, Form, Link, Row, Section, Table};
use super::{db, saved, Ctx, Failure};
use crate::api::AppState;
use crate::auth::Principal;
use crate::page::Area;

/// The queues.
pub struct Queues;

impl Resource for Queues {
    const PATH: &'static str = "queues";
    const ID: &'static str = "queue";
    const NOUN: &'static str = "queue";
    const TITLE: &'static str = "Queues";
    const KEY_FIELD: &'static str = "name";
    const AREA: Area = Area::Queues;
    type Row = Queue;
    type Form = Queue;

    fn key(row: &Queue) -> &str {
        &row.name
    }

    fn form_key(form: &Queue) -> &str {
        &form.name
    }

    fn headers() -> Vec<&'static str> {
        vec![
            "strategy",
            "ring timeout (s)",
            "max wait (s)",
            "announce every (s)",
            "wrap-up (s)",
            "music on hold",
            "fallback",
        ]
    }

    fn cells(q: &Queue) -> Vec<String> {
        vec![
            q.strategy.to_string(),
            form::seconds(q.ring_timeout_ms),
            form::seconds(q.max_wait_ms),
            match q.announce_interval_ms {
                0 => "never".to_owned(),
                ms => form::seconds(ms),
            },
            form::seconds(q.wrapup_ms),
            q.moh_class.clone(),
            match &q.fallback_target {
                Some(t) => format!("{} {t}", q.fallback),
                None => q.fallback.to_string(),
            },
        ]
    }

    fn notes() -> Vec<String> {
        vec![
            "Callers reach a queue by dialling its name. Open a queue to choose its members \
             and VIP callers."
                .into(),
        ]
    }

    fn values(q: &Queue) -> Fields {
        let pairs = [
            ("name", q.name.clone()),
            ("strategy", q.strategy.to_string()),
            (RING_TIMEOUT.field, form::seconds(q.ring_timeout_ms)),
            (MAX_WAIT.field, form::seconds(q.max_wait_ms)),
            (ANNOUNCE.field, form::seconds(q.announce_interval_ms)),
            ("moh_class", q.moh_class.clone()),
            (WRAPUP.field, form::seconds(q.wrapup_ms)),
            ("fallback", q.fallback.to_string()),
            (
                "fallback_target",
                q.fallback_target.clone().unwrap_or_default(),
            ),
            ("recording", q.recording.to_string()),
            (
                "recording_prompt",
                if q.recording_prompt { "on" } else { "" }.to_owned(),
            ),
        ];
        Fields::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
    }

    fn fieldsets(v: &Fields, key: Option<&str>) -> Vec<Fieldset> {
        let name = match key {
            Some(key) => Field::text("name", "Name").value(key).readonly(),
            None => Field::text("name", "Name").from(v, "").required(),
        };
        let secs = |rule: &form::Duration, label, default: &str| {
            Field::number(
                rule.field,
                label,
                form::seconds(rule.min_ms),
                form::seconds(rule.max_ms),
                "any",
            )
            .from(v, default)
        };
        vec![
            Fieldset {
                legend: "Queue",
                fields: vec![
                    name.hint("What callers dial: letters, digits, '-', '_', '.', '+'."),
                    Field::select("strategy", "Strategy", &form::STRATEGIES)
                        .from(v, "ringall")
                        .hint("How a free agent is chosen: ringall rings every free agent of the best tier."),
                    Field::text("moh_class", "Music on hold class")
                        .from(v, "default")
                        .hint("A folder of the music directory."),
                ],
            },
            Fieldset {
                legend: "Times, in seconds",
                fields: vec![
                    secs(&RING_TIMEOUT, "Ring timeout", "20")
                        .required()
                        .hint("How long an agent's phone rings before the next try (1 to 600)."),
                    secs(&MAX_WAIT, "Maximum wait", "300")
                        .required()
                        .hint("After this the caller goes to the fallback."),
                    secs(&ANNOUNCE, "Announce the position every", "30")
                        .hint("0 never announces."),
                    secs(&WRAPUP, "Wrap-up", "0")
                        .hint("An agent's rest after each call before the next one rings."),
                ],
            },
            Fieldset {
                legend: "At the maximum wait",
                fields: vec![
                    Field::select("fallback", "Fallback", &form::FALLBACKS).from(v, "hangup"),
                    Field::text("fallback_target", "Fallback target")
                        .from(v, "")
                        .hint("voicemail: the agent whose mailbox records the caller; queue: the next queue."),
                ],
            },
            Fieldset {
                legend: "Recording",
                fields: vec![
                    Field::text("recording", "Record calls")
                        .from(v, "never")
                        .hint("never, always, or the percentage of calls recorded (0 to 100)."),
                    Field::checkbox("recording_prompt", "Tell callers the call may be recorded")
                        .from(v, ""),
                ],
            },
        ]
    }

    fn check(f: &Fields, key: Option<&str>, _now_ms: i64) -> Result<Queue, Problems> {
        form::queue(f, key.unwrap_or(f.get("name")))
    }

    async fn list(store: &Store) -> Result<Vec<Queue>, StoreError> {
        store.queues().await
    }

    async fn load(store: &Store, key: &str) -> Result<Option<Queue>, StoreError> {
        store.queue(key).await
    }

    async fn save(ctx: &Ctx, q: Queue, _old: Option<Queue>) -> Result<(), Failure> {
        check_target(&ctx.state.store, &q).await?;
        ctx.state.store.upsert_queue(&q).await.map_err(db)
    }

    async fn remove(ctx: &Ctx, q: Queue) -> Result<(), Failure> {
        if !ctx.state.store.delete_queue(&q.name).await.map_err(db)? {
            return Err(Failure::NotFound {
                what: "queue",
                name: q.name,
            });
        }
        Ok(())
    }

    fn delete_note(_q: &Queue) -> Option<String> {
        Some(
            "Its members and VIP callers are removed with it. Callers who dial it afterwards \
             hear music on hold."
                .into(),
        )
    }

    async fn sections(
        ctx: &Ctx,
        q: &Queue,
        sent: Option<(&str, &Fields)>,
    ) -> Result<Vec<Section>, Failure> {
        queue_sections(ctx, q, sent).await
    }

    fn saved_to(key: &str) -> String {
        href::<Queues>(key)
    }
}

/// Checks that a queue's fallback target exists.
async fn check_target(store: &Store, q: &Queue) -> Result<(), Failure> {
    match (q.fallback, q.fallback_target.as_deref()) {
        (Fallback::Voicemail, Some(t)) if store.agent(t).await.map_err(db)?.is_none() => {
            Err(Failure::invalid(
                "fallback_target",
                format!("there is no agent {t:?} (voicemail goes to an agent's mailbox)"),
            ))
        }
        (Fallback::Queue, Some(t)) if store.queue(t).await.map_err(db)?.is_none() => Err(
            Failure::invalid("fallback_target", format!("there is no queue {t:?}")),
        ),
        _ => Ok(()),
    }
}

/// A queue's members and VIP callers, each a table and a form.
async fn queue_sections(
    ctx: &Ctx,
    q: &Queue,
    sent: Option<(&str, &Fields)>,
) -> Result<Vec<Section>, Failure> {
    let store = &ctx.state.store;
    let members = store.members(Some(&q.name)).await.map_err(db)?;
    let vips: Vec<VipCaller> = store
        .vips()
        .await
        .map_err(db)?
        .into_iter()
        .filter(|c| c.queue == q.name)
        .collect();
    let agents = store.agents().await.map_err(db)?;
    let base = href::<Queues>(&q.name);
    let blank = Fields::default();
    let sent_to = |id: &str| match sent {
        Some((form, fields)) if form == id => fields,
        _ => &blank,
    };
    let member_form = member_form(ctx, &base, &agents, sent_to("member-add"));
    let vip_form = vip_form(ctx, &base, sent_to("vip-add"));
    Ok(vec![
        Section {
            id: "members".into(),
            title: "Members".into(),
            table: Some(member_table(&base, &members)),
            form: Some(member_form),
            ..Section::default()
        },
        Section {
            id: "vips".into(),
            title: "VIP callers".into(),
            notes: vec![
                "A VIP caller goes before other callers, to members who take VIP callers while \
                 one of them is logged in."
                    .into(),
            ],
            table: Some(vip_table(&base, &vips)),
            form: Some(vip_form),
            ..Section::default()
        },
    ])
}

/// The form that adds a member or changes one, filled from `m` when shown again.
fn member_form(ctx: &Ctx, base: &str, agents: &[Agent], m: &Fields) -> Form {
    let choices = agents
        .iter()
        .map(|a| {
            let label = match a.name.as_str() {
                "" => a.extension.clone(),
                name => format!("{} {name}", a.extension),
            };
            (a.extension.clone(), label)
        })
        .collect();
    Form::new(
        "member-add",
        format!("{base}/members"),
        &ctx.csrf,
        "Add or change member",
        vec![Fieldset {
            legend: "Add a member, or change one",
            fields: vec![
                Field::select_pairs("agent", "Agent", choices)
                    .from(m, "")
                    .hint("Adding an agent that is a member already changes its settings."),
                Field::number("tier", "Tier", 0, form::MAX_TIER, "1")
                    .from(m, "0")
                    .hint("0 is the best: an agent of tier 1 rings only when no tier 0 agent is free."),
                Field::checkbox("vip_allowed", "Takes VIP callers").from(m, ""),
                Field::number("weight", "Weight", 0, form::MAX_WEIGHT, "1")
                    .from(m, "1")
                    .hint("For wrandom: the higher, the likelier."),
                Field::number("position", "Position", -form::MAX_POSITION, form::MAX_POSITION, "1")
                    .from(m, "0")
                    .hint("For linear: the lowest rings first."),
            ],
        }],
    )
}

/// The form that adds a VIP caller, filled from `sent` when shown again.
fn vip_form(ctx: &Ctx, base: &str, sent: &Fields) -> Form {
    Form::new(
        "vip-add",
        format!("{base}/vips"),
        &ctx.csrf,
        "Add VIP caller",
        vec![Fieldset {
            legend: "Add a VIP caller",
            fields: vec![Field::text("number", "Caller number")
                .from(sent, "")
                .required()
                .hint("As calls bring it, e.g. +4930123456.")],
        }],
    )
}

fn member_table(base: &str, members: &[Member]) -> Table {
    let rows = members
        .iter()
        .map(|m| Row {
            testid: format!("member-{}", m.agent),
            cells: vec![
                Cell::Text(m.agent.clone()),
                Cell::Text(m.tier.to_string()),
                Cell::Text(if m.vip_allowed { "yes" } else { "no" }.into()),
                Cell::Text(m.weight.to_string()),
                Cell::Text(m.position.to_string()),
                Cell::Actions(
                    vec![Link::new(
                        format!("{base}/members/{}/delete", seg(&m.agent)),
                        "Remove…",
                    )
                    .label(format!("Remove member {}", m.agent))
                    .testid(format!("member-remove-{}", m.agent))
                    .class("danger-link")],
                    String::new(),
                ),
            ],
        })
        .collect();
    Table {
        id: "members-table".into(),
        headers: vec![
            "agent",
            "tier",
            "VIP callers",
            "weight",
            "position",
            "actions",
        ],
        rows,
        empty: "No member yet: nobody answers this queue.".into(),
    }
}

fn vip_table(base: &str, vips: &[VipCaller]) -> Table {
    let rows = vips
        .iter()
        .map(|c| Row {
            testid: format!("vip-{}", c.number),
            cells: vec![
                Cell::Text(c.number.clone()),
                Cell::Actions(
                    vec![
                        Link::new(format!("{base}/vips/{}/delete", seg(&c.number)), "Remove…")
                            .label(format!("Remove VIP caller {}", c.number))
                            .testid(format!("vip-remove-{}", c.number))
                            .class("danger-link"),
                    ],
                    String::new(),
                ),
            ],
        })
        .collect();
    Table {
        id: "vips-table".into(),
        headers: vec!["caller number", "actions"],
        rows,
        empty: "No VIP caller.".into(),
    }
}

/// A queue's members and VIP callers: add or change, confirm and remove.
pub fn member_routes() -> Router<AppState> {
    Router::new()
        .route("/admin/queues/{name}/members", post(member_save))
        .route(
            "/admin/queues/{name}/members/{agent}/delete",
            get(member_confirm).post(member_delete),
        )
        .route("/admin/queues/{name}/vips", post(vip_add))
        .route(
            "/admin/queues/{name}/vips/{number}/delete",
            get(vip_confirm).post(vip_delete),
        )
}

/// The queue named `name`, or a 404.
async fn require_queue(ctx: &Ctx, name: &str) -> Result<Queue, Failure> {
    ctx.state
        .store
        .queue(name)
        .await
        .map_err(db)?
        .ok_or_else(|| Failure::NotFound {
            what: "queue",
            name: name.to_owned(),
        })
}

/// Answers a POST of the queue's page: the flash and the queue's page on success, the page
/// again with the problems (and the form as sent) otherwise.
async fn answer(
    ctx: &Ctx,
    name: &str,
    result: Result<String, Failure>,
    sent: Option<(&str, &Fields)>,
) -> Response {
    let failure = match result {
        Ok(flash) => return saved(&href::<Queues>(name), &flash),
        Err(f) => f,
    };
    let Failure::Invalid(problems) = &failure else {
        return ctx.failure("Queues", Area::Queues, &failure);
    };
    let again = async {
        let q = require_queue(ctx, name).await?;
        edit_page::<Queues>(ctx, &q, sent, Some(problems)).await
    }
    .await;
    match again {
        Ok(page) => {
            tracing::debug!(queue = %name, %problems, "admin: queue form refused");
            ctx.show(failure.status(), &page)
        }
        Err(f) => ctx.failure("Queues", Area::Queues, &f),
    }
}

async fn member_save(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = Ctx::new(state, &p, &headers);
    let sent = match Fields::parse(&body) {
        Ok(sent) => sent,
        Err(e) => return ctx.failure("Queues", Area::Queues, &Failure::BadForm(e)),
    };
    let result = async {
        require_queue(&ctx, &name).await?;
        let m = form::member(&sent, &name).map_err(Failure::Invalid)?;
        let store = &ctx.state.store;
        if store.agent(&m.agent).await.map_err(db)?.is_none() {
            return Err(Failure::invalid(
                "agent",
                format!("there is no agent {:?}", m.agent),
            ));
        }
        store.upsert_member(&m).await.map_err(db)?;
        tracing::info!(actor = %ctx.actor, queue = %name, agent = %m.agent, tier = m.tier, vip = m.vip_allowed, "admin: queue member saved");
        Ok(format!(
            "Agent {} is a member of {name}: tier {}{}.",
            m.agent,
            m.tier,
            if m.vip_allowed { ", takes VIP callers" } else { "" }
        ))
    }
    .await;
    answer(&ctx, &name, result, Some(("member-add", &sent))).await
}

async fn member_confirm(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((name, agent)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let ctx = Ctx::new(state, &p, &headers);
    let back = href::<Queues>(&name);
    let page = confirm_page(
        &ctx,
        Area::Queues,
        format!("Remove agent {agent} from queue {name}?"),
        vec!["The agent stays; it no longer answers this queue.".into()],
        format!("{back}/members/{}/delete", seg(&agent)),
        format!("Remove {agent} from {name}"),
        back,
    );
    match require_queue(&ctx, &name).await {
        Ok(_) => ctx.show(StatusCode::OK, &page),
        Err(f) => ctx.failure("Queues", Area::Queues, &f),
    }
}

async fn member_delete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((name, agent)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let ctx = Ctx::new(state, &p, &headers);
    let result = async {
        require_queue(&ctx, &name).await?;
        if !ctx.state.store.delete_member(&name, &agent).await.map_err(db)? {
            return Err(Failure::invalid(
                "",
                format!("{agent:?} is not a member of this queue"),
            ));
        }
        tracing::info!(actor = %ctx.actor, queue = %name, agent = %agent, "admin: queue member removed");
        Ok(format!("Agent {agent} removed from {name}."))
    }
    .await;
    answer(&ctx, &name, result, None).await
}

async fn vip_add(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = Ctx::new(state, &p, &headers);
    let sent = match Fields::parse(&body) {
        Ok(sent) => sent,
        Err(e) => return ctx.failure("Queues", Area::Queues, &Failure::BadForm(e)),
    };
    let result = async {
        require_queue(&ctx, &name).await?;
        let c = form::vip(&sent, &name).map_err(Failure::Invalid)?;
        let added = ctx.state.store.add_vip(&c.number, &name).await.map_err(db)?;
        tracing::info!(actor = %ctx.actor, queue = %name, number = %c.number, added, "admin: VIP caller added");
        Ok(if added {
            format!("{} is a VIP caller of {name}.", c.number)
        } else {
            format!("{} was a VIP caller of {name} already.", c.number)
        })
    }
    .await;
    answer(&ctx, &name, result, Some(("vip-add", &sent))).await
}

async fn vip_confirm(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((name, number)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let ctx = Ctx::new(state, &p, &headers);
    let back = href::<Queues>(&name);
    let page = confirm_page(
        &ctx,
        Area::Queues,
        format!("Remove VIP caller {number} from queue {name}?"),
        vec!["The caller then waits in turn like any other.".into()],
        format!("{back}/vips/{}/delete", seg(&number)),
        format!("Remove VIP caller {number}"),
        back,
    );
    match require_queue(&ctx, &name).await {
        Ok(_) => ctx.show(StatusCode::OK, &page),
        Err(f) => ctx.failure("Queues", Area::Queues, &f),
    }
}

async fn vip_delete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((name, number)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let ctx = Ctx::new(state, &p, &headers);
    let result = async {
        require_queue(&ctx, &name).await?;
        if !ctx.state.store.remove_vip(&number, &name).await.map_err(db)? {
            return Err(Failure::invalid(
                "",
                format!("{number:?} is not a VIP caller of this queue"),
            ));
        }
        tracing::info!(actor = %ctx.actor, queue = %name, number = %number, "admin: VIP caller removed");
        Ok(format!("{number} is no longer a VIP caller of {name}."))
    }
    .await;
    answer(&ctx, &name, result, None).await
}
