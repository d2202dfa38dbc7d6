//! The admin pages: queues, their members and VIP callers, agents, phones, panel users and
//! carriers, as server-rendered HTML forms in the panel's look (no script, no build step).
//!
//! Every route is level [`AdminPage`](crate::auth::Access::AdminPage): an admin with a
//! session; anyone else is sent to `/login` (supervisors get 403). Every form carries the
//! session's CSRF token as the hidden field `csrf`, which the guard checks.
//!
//! | route | does |
//! |-------|------|
//! | `GET /admin` | the overview |
//! | `GET /admin/queues`, `POST /admin/queues` | list; create a queue |
//! | `GET /admin/queues/{name}`, `POST /admin/queues/{name}` | a queue's rules, members and VIP callers; save the rules |
//! | `POST /admin/queues/{name}/delete` | delete the queue (its members and VIP callers too) |
//! | `POST /admin/queues/{name}/members`, `POST .../members/{agent}/delete` | add or change a member (tier, VIP permission, weight, position); remove one |
//! | `POST /admin/queues/{name}/vips`, `POST .../vips/{number}/delete` | add, remove a VIP caller |
//! | `GET, POST /admin/agents`, `POST /admin/agents/{ext}/delete` | list; create or update an agent (PIN stored as SHA-256 of `ext:pin`); delete |
//! | `GET, POST /admin/devices`, `POST /admin/devices/{ext}/delete` | list; add a phone or set its password (HA1 digests from [`NodeApi::device_credentials`](crate::NodeApi::device_credentials)); remove |
//! | `GET, POST /admin/users`, `POST /admin/users/{name}/delete` | list; add a user or set its role, password (argon2id) and phone; remove (not oneself) |
//! | `GET, POST /admin/carriers`, `POST /admin/carriers/{name}/delete` | list; add a carrier or change its network (CIDR); remove |
//!
//! A saved form answers `303 See Other` back to its page. A form that breaks a rule answers
//! the page again with the problem above the form: 400 for a body that is not a form, 404 for
//! a queue that does not exist, 422 for a bad value (unknown strategy, negative time, bad
//! CIDR, missing fallback target, unknown agent...). With the database unreachable the answer
//! is a 503 page and nothing changed.
//!
//! Every write goes through [`Store`]; configuration writes bump the
//! config version, so every node sees the change on its next action (within a second).

pub mod form;
pub mod html;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use callfleet_store::{Store, StoreError, User};

use crate::api::AppState;
use crate::auth::{self, Principal};
use crate::error::BoxError;
use form::{Fields, Invalid};
use html::{seg, td, Viewer};

/// Pages may load only this node's style sheet; nothing is framed or scripted.
const CSP: &str = "default-src 'self'; script-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Every admin route (all at level `AdminPage`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(index))
        .route("/admin/queues", get(queues_page).post(queue_create))
        .route("/admin/queues/{name}", get(queue_page).post(queue_update))
        .route("/admin/queues/{name}/delete", post(queue_delete))
        .route("/admin/queues/{name}/members", post(member_save))
        .route(
            "/admin/queues/{name}/members/{agent}/delete",
            post(member_delete),
        )
        .route("/admin/queues/{name}/vips", post(vip_add))
        .route(
            "/admin/queues/{name}/vips/{number}/delete",
            post(vip_delete),
        )
        .route("/admin/agents", get(agents_page).post(agent_save))
        .route("/admin/agents/{ext}/delete", post(agent_delete))
        .route("/admin/devices", get(devices_page).post(device_save))
        .route("/admin/devices/{ext}/delete", post(device_delete))
        .route("/admin/users", get(users_page).post(user_save))
        .route("/admin/users/{name}/delete", post(user_delete))
        .route("/admin/carriers", get(carriers_page).post(carrier_save))
        .route("/admin/carriers/{name}/delete", post(carrier_delete))
}

/// Why an admin request did not do what it asked.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The body is not an urlencoded form (400).
    #[error("{0}")]
    BadForm(Invalid),
    /// A field breaks a rule (422).
    #[error("{0}")]
    Invalid(Invalid),
    /// The page's subject does not exist (404).
    #[error("{what} {name:?} does not exist")]
    NotFound {
        /// `queue`, `agent`...
        what: &'static str,
        /// The name asked for.
        name: String,
    },
    /// The database cannot be reached (503).
    #[error("the database is unavailable; nothing was changed, try again shortly")]
    Unavailable(#[source] StoreError),
    /// Something inside the node failed (500).
    #[error("internal error; nothing was changed")]
    Internal(#[source] BoxError),
}

impl Failure {
    /// The HTTP status of the page that shows this failure.
    pub fn status(&self) -> StatusCode {
        match self {
            Failure::BadForm(_) => StatusCode::BAD_REQUEST,
            Failure::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Failure::NotFound { .. } => StatusCode::NOT_FOUND,
            Failure::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Failure::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn invalid(field: &'static str, problem: impl Into<String>) -> Failure {
        Failure::Invalid(Invalid {
            field,
            problem: problem.into(),
        })
    }
}

impl From<Invalid> for Failure {
    fn from(e: Invalid) -> Self {
        Failure::Invalid(e)
    }
}

/// A store error: unreachable or busy is 503; a row the schema refused (which the form
/// checks should have caught) is shown as a bad value; anything else is internal.
fn db(e: StoreError) -> Failure {
    match e {
        StoreError::Query { .. } | StoreError::Connect { .. } => Failure::Unavailable(e),
        _ if e.is_transient() => Failure::Unavailable(e),
        StoreError::InvalidValue { what, .. }
        | StoreError::MissingReference { what, .. }
        | StoreError::Duplicate { what, .. } => Failure::invalid(what, e.to_string()),
        other => Failure::Internal(Box::new(other)),
    }
}

fn viewer(principal: &Principal) -> Viewer {
    let name = match principal {
        Principal::User { name, .. } => name.clone(),
        other => other.actor(),
    };
    Viewer {
        name,
        csrf: principal.csrf().unwrap_or_default().to_owned(),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An HTML page with the admin headers.
fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        Html(body),
    )
        .into_response()
}

/// A page that failed to load, or a POST that failed and whose page could not be shown again.
fn failure_page(v: &Viewer, title: &str, failure: &Failure) -> Response {
    log(failure);
    html(
        failure.status(),
        html::page(v, title, Some(&failure.to_string()), ""),
    )
}

fn log(failure: &Failure) {
    match failure {
        Failure::Unavailable(_) | Failure::Internal(_) => tracing::error!(
            error = failure as &(dyn std::error::Error + 'static),
            "admin request failed"
        ),
        _ => tracing::debug!(error = %failure, "admin form refused"),
    }
}

/// Answers a POST: on success a redirect to `to`; on failure the page again (via `again`)
/// with the problem and the failure's status.
async fn answer<F, Fut>(
    v: &Viewer,
    title: &str,
    to: String,
    result: Result<(), Failure>,
    again: F,
) -> Response
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<String, Failure>>,
{
    let failure = match result {
        Ok(()) => return Redirect::to(&to).into_response(),
        Err(f) => f,
    };
    log(&failure);
    if matches!(failure, Failure::Unavailable(_) | Failure::Internal(_)) {
        return failure_page(v, title, &failure);
    }
    match again(failure.to_string()).await {
        Ok(body) => html(failure.status(), body),
        Err(f) => failure_page(v, title, &f),
    }
}

fn fields(body: &Bytes) -> Result<Fields, Failure> {
    Fields::parse(body).map_err(Failure::BadForm)
}

// ---- overview ---------------------------------------------------------------------------

async fn index(State(state): State<AppState>, Extension(p): Extension<Principal>) -> Response {
    let v = viewer(&p);
    let counts = async {
        let s = &state.store;
        Ok::<_, StoreError>([
            ("queues", "/admin/queues", s.queues().await?.len()),
            ("agents", "/admin/agents", s.agents().await?.len()),
            ("phones", "/admin/devices", s.devices().await?.len()),
            ("users", "/admin/users", s.users().await?.len()),
            ("carriers", "/admin/carriers", s.carriers().await?.len()),
        ])
    }
    .await;
    match counts {
        Ok(counts) => {
            let mut body = String::from("<ul id=\"overview\">\n");
            for (label, href, n) in counts {
                body.push_str(&format!(
                    "<li><a href=\"{href}\" data-testid=\"nav-{label}\">{label}</a> ({n})</li>\n"
                ));
            }
            body.push_str(
                "</ul>\n<p>Changes are saved in the shared database; every node uses them \
                 from its next call on.</p>\n",
            );
            html(StatusCode::OK, html::page(&v, "overview", None, &body))
        }
        Err(e) => failure_page(&v, "overview", &db(e)),
    }
}

// ---- queues -----------------------------------------------------------------------------

async fn queues_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    let v = viewer(&p);
    match queues_html(&state.store, &v, None, &Fields::default()).await {
        Ok(body) => html(StatusCode::OK, body),
        Err(f) => failure_page(&v, "queues", &f),
    }
}

async fn queues_html(
    store: &Store,
    v: &Viewer,
    error: Option<&str>,
    sent: &Fields,
) -> Result<String, Failure> {
    let queues = store.queues().await.map_err(db)?;
    let rows: Vec<String> = queues
        .iter()
        .map(|q| {
            format!(
                "<tr data-testid=\"queue-{}\"><td><a href=\"/admin/queues/{}\">{}</a></td>{}{}{}{}{}{}{}</tr>",
                html::escape_attr(&q.name),
                seg(&q.name),
                crate::panel::html::escape(&q.name),
                td(&q.strategy),
                td(&q.ring_timeout_ms.to_string()),
                td(&q.max_wait_ms.to_string()),
                td(&q.announce_interval_ms.to_string()),
                td(&q.wrapup_ms.to_string()),
                td(&q.moh_class),
                td(&match &q.fallback_target {
                    Some(t) => format!("{} {t}", q.fallback),
                    None => q.fallback.clone(),
                }),
            )
        })
        .collect();
    let mut body = html::table(
        "queues",
        &[
            "name",
            "strategy",
            "ring timeout (ms)",
            "max wait (ms)",
            "announce every (ms)",
            "wrap-up (ms)",
            "music on hold",
            "fallback",
        ],
        &rows,
    );
    body.push_str(
        "<h3>New queue</h3>\n<form method=\"post\" action=\"/admin/queues\" id=\"queue-new\">\n",
    );
    body.push_str(&html::csrf_field(v));
    body.push_str(&html::input("name", "name", sent.get("name"), "required"));
    body.push_str(&queue_fields(sent));
    body.push_str("<button type=\"submit\">create</button>\n</form>\n");
    Ok(html::page(v, "queues", error, &body))
}

/// The rule fields of a queue form, filled from `f`.
fn queue_fields(f: &Fields) -> String {
    let or = |k: &str, d: &'static str| -> String {
        match f.get(k) {
            "" => d.to_owned(),
            v => v.to_owned(),
        }
    };
    let mut h = String::new();
    h.push_str(&html::select(
        "strategy",
        "strategy",
        &form::STRATEGIES,
        &or("strategy", "ringall"),
    ));
    h.push_str(&html::input(
        "ring timeout (ms)",
        "ring_timeout_ms",
        &or("ring_timeout_ms", "20000"),
        "inputmode=\"numeric\"",
    ));
    h.push_str(&html::input(
        "max wait (ms)",
        "max_wait_ms",
        &or("max_wait_ms", "300000"),
        "inputmode=\"numeric\"",
    ));
    h.push_str(&html::input(
        "announce interval (ms, 0 = never)",
        "announce_interval_ms",
        &or("announce_interval_ms", "30000"),
        "inputmode=\"numeric\"",
    ));
    h.push_str(&html::input(
        "music on hold class",
        "moh_class",
        &or("moh_class", "default"),
        "",
    ));
    h.push_str(&html::input(
        "wrap-up (ms)",
        "wrapup_ms",
        &or("wrapup_ms", "0"),
        "inputmode=\"numeric\"",
    ));
    h.push_str(&html::select(
        "fallback",
        "fallback",
        &form::FALLBACKS,
        &or("fallback", "hangup"),
    ));
    h.push_str(&html::input(
        "fallback target (agent for voicemail, queue for queue)",
        "fallback_target",
        f.get("fallback_target"),
        "",
    ));
    h
}

/// Checks that a queue's fallback target exists.
async fn check_target(store: &Store, q: &callfleet_store::Queue) -> Result<(), Failure> {
    match (q.fallback.as_str(), q.fallback_target.as_deref()) {
        ("voicemail", Some(t)) if store.agent(t).await.map_err(db)?.is_none() => {
            Err(Failure::invalid(
                "fallback target",
                format!("there is no agent {t:?} (voicemail goes to an agent's mailbox)"),
            ))
        }
        ("queue", Some(t)) if store.queue(t).await.map_err(db)?.is_none() => Err(Failure::invalid(
            "fallback target",
            format!("there is no queue {t:?}"),
        )),
        _ => Ok(()),
    }
}

async fn queue_create(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> Response {
    let v = viewer(&p);
    let sent = fields(&body);
    let result = async {
        let f = sent.as_ref().map_err(clone_failure)?;
        let q = form::queue(f, f.get("name"))?;
        if state.store.queue(&q.name).await.map_err(db)?.is_some() {
            return Err(Failure::invalid(
                "name",
                format!(
                    "a queue named {:?} exists already: change it on its own page",
                    q.name
                ),
            ));
        }
        check_target(&state.store, &q).await?;
        state.store.upsert_queue(&q).await.map_err(db)?;
        tracing::info!(actor = %p.actor(), queue = %q.name, "queue created");
        Ok(q.name)
    }
    .await;
    let to = match &result {
        Ok(name) => format!("/admin/queues/{}", seg(name)),
        Err(_) => String::new(),
    };
    let sent = sent.unwrap_or_default();
    let shown = v.clone();
    answer(&v, "queues", to, result.map(|_| ()), |e| async move {
        queues_html(&state.store, &shown, Some(&e), &sent).await
    })
    .await
}

/// `Failure` is not `Clone` (it holds sources); a bad form is the only one cloned.
fn clone_failure(f: &Failure) -> Failure {
    match f {
        Failure::BadForm(i) => Failure::BadForm(i.clone()),
        other => Failure::invalid("form", other.to_string()),
    }
}

async fn queue_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Response {
    let v = viewer(&p);
    match queue_html(&state.store, &v, &name, None, None).await {
        Ok(body) => html(StatusCode::OK, body),
        Err(f) => failure_page(&v, "queue", &f),
    }
}

/// A queue's page: its rules (from `sent` when re-shown after an error), members, VIPs.
async fn queue_html(
    store: &Store,
    v: &Viewer,
    name: &str,
    error: Option<&str>,
    sent: Option<&Fields>,
) -> Result<String, Failure> {
    let q = store
        .queue(name)
        .await
        .map_err(db)?
        .ok_or_else(|| Failure::NotFound {
            what: "queue",
            name: name.to_owned(),
        })?;
    let members = store.members(Some(name)).await.map_err(db)?;
    let vips: Vec<_> = store
        .vips()
        .await
        .map_err(db)?
        .into_iter()
        .filter(|c| c.queue == name)
        .collect();
    let agents = store.agents().await.map_err(db)?;
    let base = format!("/admin/queues/{}", seg(name));
    let current = Fields::from_pairs([
        ("strategy", q.strategy.as_str()),
        ("ring_timeout_ms", &*q.ring_timeout_ms.to_string()),
        ("max_wait_ms", &*q.max_wait_ms.to_string()),
        ("announce_interval_ms", &*q.announce_interval_ms.to_string()),
        ("moh_class", q.moh_class.as_str()),
        ("wrapup_ms", &*q.wrapup_ms.to_string()),
        ("fallback", q.fallback.as_str()),
        (
            "fallback_target",
            q.fallback_target.as_deref().unwrap_or(""),
        ),
    ]);
    let shown = sent.unwrap_or(&current);
    let mut body = format!(
        "<form method=\"post\" action=\"{}\" id=\"queue-edit\">\n{}",
        html::escape_attr(&base),
        html::csrf_field(v)
    );
    body.push_str(&queue_fields(shown));
    body.push_str("<button type=\"submit\">save</button>\n</form>\n");
    body.push_str(&html::post_button(
        v,
        &format!("{base}/delete"),
        "delete this queue",
        "queue-delete",
    ));

    body.push_str("<h3>Members</h3>\n");
    let rows: Vec<String> = members
        .iter()
        .map(|m| {
            format!(
                "<tr data-testid=\"member-{}\">{}{}{}{}{}<td>{}</td></tr>",
                html::escape_attr(&m.agent),
                td(&m.agent),
                td(&m.tier.to_string()),
                td(if m.vip_allowed { "yes" } else { "no" }),
                td(&m.weight.to_string()),
                td(&m.position.to_string()),
                html::post_button(
                    v,
                    &format!("{base}/members/{}/delete", seg(&m.agent)),
                    "remove",
                    &format!("member-remove-{}", m.agent),
                ),
            )
        })
        .collect();
    body.push_str(&html::table(
        "members",
        &["agent", "tier", "VIP calls", "weight", "position", ""],
        &rows,
    ));
    let blank = Fields::default();
    let m = sent
        .filter(|f| !f.get("agent").is_empty())
        .unwrap_or(&blank);
    body.push_str(&format!(
        "<form method=\"post\" action=\"{}/members\" id=\"member-add\">\n{}",
        html::escape_attr(&base),
        html::csrf_field(v)
    ));
    body.push_str("<label>agent <select name=\"agent\">");
    for a in &agents {
        let sel = if a.extension == m.get("agent") {
            " selected"
        } else {
            ""
        };
        body.push_str(&format!(
            "<option value=\"{}\"{sel}>{} {}</option>",
            html::escape_attr(&a.extension),
            crate::panel::html::escape(&a.extension),
            crate::panel::html::escape(&a.name)
        ));
    }
    body.push_str("</select></label>\n");
    let or = |k: &str, d: &'static str| match m.get(k) {
        "" => d.to_owned(),
        x => x.to_owned(),
    };
    body.push_str(&html::input(
        "tier (0 = best)",
        "tier",
        &or("tier", "0"),
        "inputmode=\"numeric\"",
    ));
    body.push_str(&html::checkbox(
        "takes VIP calls",
        "vip_allowed",
        m.checked("vip_allowed"),
    ));
    body.push_str(&html::input(
        "weight",
        "weight",
        &or("weight", "1"),
        "inputmode=\"numeric\"",
    ));
    body.push_str(&html::input(
        "position",
        "position",
        &or("position", "0"),
        "inputmode=\"numeric\"",
    ));
    body.push_str("<button type=\"submit\">add or change member</button>\n</form>\n");

    body.push_str("<h3>VIP callers</h3>\n");
    let rows: Vec<String> = vips
        .iter()
        .map(|c| {
            format!(
                "<tr data-testid=\"vip-{}\">{}<td>{}</td></tr>",
                html::escape_attr(&c.number),
                td(&c.number),
                html::post_button(
                    v,
                    &format!("{base}/vips/{}/delete", seg(&c.number)),
                    "remove",
                    &format!("vip-remove-{}", c.number),
                ),
            )
        })
        .collect();
    body.push_str(&html::table("vips", &["caller number", ""], &rows));
    body.push_str(&format!(
        "<form method=\"post\" action=\"{}/vips\" id=\"vip-add\">\n{}",
        html::escape_attr(&base),
        html::csrf_field(v)
    ));
    body.push_str(&html::input(
        "caller number",
        "number",
        sent.map(|f| f.get("number")).unwrap_or(""),
        "required",
    ));
    body.push_str("<button type=\"submit\">add VIP caller</button>\n</form>\n");
    Ok(html::page(v, &format!("queue {name}"), error, &body))
}

/// Answers a POST on a queue's page.
async fn on_queue_page(
    state: AppState,
    v: Viewer,
    name: String,
    result: Result<(), Failure>,
    sent: Option<Fields>,
) -> Response {
    let result = match result {
        Err(f @ Failure::NotFound { .. }) => return failure_page(&v, "queue", &f),
        other => other,
    };
    let to = format!("/admin/queues/{}", seg(&name));
    let shown = v.clone();
    answer(&v, "queue", to, result, |e| async move {
        queue_html(&state.store, &shown, &name, Some(&e), sent.as_ref()).await
    })
    .await
}

async fn require_queue(store: &Store, name: &str) -> Result<(), Failure> {
    match store.queue(name).await.map_err(db)? {
        Some(_) => Ok(()),
        None => Err(Failure::NotFound {
            what: "queue",
            name: name.to_owned(),
        }),
    }
}

async fn queue_update(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let v = viewer(&p);
    let sent = fields(&body);
    let result = async {
        let f = sent.as_ref().map_err(clone_failure)?;
        require_queue(&state.store, &name).await?;
        let q = form::queue(f, &name)?;
        check_target(&state.store, &q).await?;
        state.store.upsert_queue(&q).await.map_err(db)?;
        tracing::info!(actor = %p.actor(), queue = %q.name, "queue changed");
        Ok(())
    }
    .await;
    on_queue_page(state, v, name, result, sent.ok()).await
}

async fn queue_delete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Response {
    let v = viewer(&p);
    match state.store.delete_queue(&name).await {
        Ok(true) => {
            tracing::info!(actor = %p.actor(), queue = %name, "queue deleted");
            Redirect::to("/admin/queues").into_response()
        }
        Ok(false) => failure_page(
            &v,
            "queue",
            &Failure::NotFound {
                what: "queue",
                name,
            },
        ),
        Err(e) => failure_page(&v, "queue", &db(e)),
    }
}

async fn member_save(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let v = viewer(&p);
    let sent = fields(&body);
    let result = async {
        let f = sent.as_ref().map_err(clone_failure)?;
        require_queue(&state.store, &name).await?;
        let m = form::member(f, &name)?;
        if state.store.agent(&m.agent).await.map_err(db)?.is_none() {
            return Err(Failure::invalid("agent", format!("there is no agent {:?}", m.agent)));
        }
        state.store.upsert_member(&m).await.map_err(db)?;
        tracing::info!(actor = %p.actor(), queue = %name, agent = %m.agent, tier = m.tier, vip = m.vip_allowed, "queue member saved");
        Ok(())
    }
    .await;
    on_queue_page(state, v, name, result, sent.ok()).await
}

async fn member_delete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((name, agent)): Path<(String, String)>,
) -> Response {
    let v = viewer(&p);
    let result = async {
        require_queue(&state.store, &name).await?;
        if !state.store.delete_member(&name, &agent).await.map_err(db)? {
            return Err(Failure::invalid(
                "agent",
                format!("{agent:?} is not a member of this queue"),
            ));
        }
        tracing::info!(actor = %p.actor(), queue = %name, agent = %agent, "queue member removed");
        Ok(())
    }
    .await;
    on_queue_page(state, v, name, result, None).await
}

async fn vip_add(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let v = viewer(&p);
    let sent = fields(&body);
    let result = async {
        let f = sent.as_ref().map_err(clone_failure)?;
        require_queue(&state.store, &name).await?;
        let c = form::vip(f, &name)?;
        state.store.add_vip(&c.number, &name).await.map_err(db)?;
        tracing::info!(actor = %p.actor(), queue = %name, number = %c.number, "VIP caller added");
        Ok(())
    }
    .await;
    on_queue_page(state, v, name, result, sent.ok()).await
}

async fn vip_delete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((name, number)): Path<(String, String)>,
) -> Response {
    let v = viewer(&p);
    let result = async {
        require_queue(&state.store, &name).await?;
        if !state.store.remove_vip(&number, &name).await.map_err(db)? {
            return Err(Failure::invalid(
                "number",
                format!("{number:?} is not a VIP caller of this queue"),
            ));
        }
        tracing::info!(actor = %p.actor(), queue = %name, number = %number, "VIP caller removed");
        Ok(())
    }
    .await;
    on_queue_page(state, v, name, result, None).await
}

// ---- agents -----------------------------------------------------------------------------

async fn agents_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    let v = viewer(&p);
    match agents_html(&state.store, &v, None, &Fields::default()).await {
        Ok(body) => html(StatusCode::OK, body),
        Err(f) => failure_page(&v, "agents", &f),
    }
}

async fn agents_html(
    store: &Store,
    v: &Viewer,
    error: Option<&str>,
    sent: &Fields,
) -> Result<String, Failure> {
    let agents = store.agents().await.map_err(db)?;
    let rows: Vec<String> = agents
        .iter()
        .map(|a| {
            format!(
                "<tr data-testid=\"agent-{}\">{}{}{}{}{}<td>{}</td></tr>",
                html::escape_attr(&a.extension),
                td(&a.extension),
                td(&a.name),
                td(a.state.as_str()),
                td(a.device.as_deref().unwrap_or("")),
                td(&a.daily_limit.map(|n| n.to_string()).unwrap_or_default()),
                html::post_button(
                    v,
                    &format!("/admin/agents/{}/delete", seg(&a.extension)),
                    "delete",
                    &format!("agent-delete-{}", a.extension),
                ),
            )
        })
        .collect();
    let mut body = html::table(
        "agents",
        &["extension", "name", "state", "phone", "daily limit", ""],
        &rows,
    );
    body.push_str(
        "<h3>New agent, or new settings for one</h3>\n\
         <form method=\"post\" action=\"/admin/agents\" id=\"agent-new\">\n",
    );
    body.push_str(&html::csrf_field(v));
    body.push_str(&html::input(
        "extension",
        "extension",
        sent.get("extension"),
        "required",
    ));
    body.push_str(&html::input("name", "name", sent.get("name"), ""));
    body.push_str(&html::input(
        "PIN (digits)",
        "pin",
        "",
        "type=\"password\" inputmode=\"numeric\" autocomplete=\"new-password\" required",
    ));
    body.push_str(&html::input(
        "daily limit (empty = none)",
        "daily_limit",
        sent.get("daily_limit"),
        "inputmode=\"numeric\"",
    ));
    body.push_str("<button type=\"submit\">save agent</button>\n</form>\n");
    Ok(html::page(v, "agents", error, &body))
}

async fn agent_save(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> Response {
    let v = viewer(&p);
    let sent = fields(&body);
    let result = async {
        let f = sent.as_ref().map_err(clone_failure)?;
        let a = form::agent(f, now_ms())?;
        state.store.upsert_agent(&a).await.map_err(db)?;
        tracing::info!(actor = %p.actor(), agent = %a.extension, "agent saved");
        Ok(())
    }
    .await;
    let sent = sent.unwrap_or_default();
    let shown = v.clone();
    answer(
        &v,
        "agents",
        "/admin/agents".to_owned(),
        result,
        |e| async move { agents_html(&state.store, &shown, Some(&e), &sent).await },
    )
    .await
}

async fn agent_delete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(ext): Path<String>,
) -> Response {
    let v = viewer(&p);
    let result =
        async {
            let agent =
                state.store.agent(&ext).await.map_err(db)?.ok_or_else(|| {
                    Failure::invalid("agent", format!("there is no agent {ext:?}"))
                })?;
            if agent.state.holds_call() {
                return Err(Failure::invalid(
                    "agent",
                    format!("{ext:?} is on a call; delete it once the call has ended"),
                ));
            }
            state.store.delete_agent(&ext).await.map_err(db)?;
            tracing::info!(actor = %p.actor(), agent = %ext, "agent deleted");
            Ok(())
        }
        .await;
    let shown = v.clone();
    answer(
        &v,
        "agents",
        "/admin/agents".to_owned(),
        result,
        |e| async move { agents_html(&state.store, &shown, Some(&e), &Fields::default()).await },
    )
    .await
}

// ---- phones -----------------------------------------------------------------------------

async fn devices_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    let v = viewer(&p);
    match devices_html(&state.store, &v, None, &Fields::default()).await {
        Ok(body) => html(StatusCode::OK, body),
        Err(f) => failure_page(&v, "phones", &f),
    }
}

async fn devices_html(
    store: &Store,
    v: &Viewer,
    error: Option<&str>,
    sent: &Fields,
) -> Result<String, Failure> {
    let devices = store.devices().await.map_err(db)?;
    let rows: Vec<String> = devices
        .iter()
        .map(|d| {
            format!(
                "<tr data-testid=\"device-{}\">{}{}{}<td>{}</td></tr>",
                html::escape_attr(&d.extension),
                td(&d.extension),
                td(&d.display_name),
                td(&d.realm),
                html::post_button(
                    v,
                    &format!("/admin/devices/{}/delete", seg(&d.extension)),
                    "remove",
                    &format!("device-delete-{}", d.extension),
                ),
            )
        })
        .collect();
    let mut body = html::table("devices", &["extension", "name", "realm", ""], &rows);
    body.push_str(
        "<h3>New phone, or a new password for one</h3>\n\
         <p>Only digests of the password are stored; the phone registers with its extension \
         as user name.</p>\n<form method=\"post\" action=\"/admin/devices\" id=\"device-new\">\n",
    );
    body.push_str(&html::csrf_field(v));
    body.push_str(&html::input(
        "extension",
        "extension",
        sent.get("extension"),
        "required",
    ));
    body.push_str(&html::input("name", "name", sent.get("name"), ""));
    body.push_str(&html::input(
        "password",
        "password",
        "",
        "type=\"password\" autocomplete=\"new-password\" required",
    ));
    body.push_str("<button type=\"submit\">save phone</button>\n</form>\n");
    Ok(html::page(v, "phones", error, &body))
}

async fn device_save(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> Response {
    let v = viewer(&p);
    let sent = fields(&body);
    let result = async {
        let f = sent.as_ref().map_err(clone_failure)?;
        let d = form::device(f)?;
        let mut row = state
            .api
            .device_credentials(&d.extension, &d.name, &d.password)
            .map_err(|e| Failure::Internal(Box::new(e)))?;
        row.created_at_ms = now_ms();
        state.store.upsert_device(&row).await.map_err(db)?;
        tracing::info!(actor = %p.actor(), device = %row.extension, "phone saved");
        Ok(())
    }
    .await;
    let sent = sent.unwrap_or_default();
    let shown = v.clone();
    answer(
        &v,
        "phones",
        "/admin/devices".to_owned(),
        result,
        |e| async move { devices_html(&state.store, &shown, Some(&e), &sent).await },
    )
    .await
}

async fn device_delete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(ext): Path<String>,
) -> Response {
    let v = viewer(&p);
    let result = async {
        if !state.store.delete_device(&ext).await.map_err(db)? {
            return Err(Failure::invalid(
                "phone",
                format!("there is no phone {ext:?}"),
            ));
        }
        tracing::info!(actor = %p.actor(), device = %ext, "phone removed");
        Ok(())
    }
    .await;
    let shown = v.clone();
    answer(
        &v,
        "phones",
        "/admin/devices".to_owned(),
        result,
        |e| async move { devices_html(&state.store, &shown, Some(&e), &Fields::default()).await },
    )
    .await
}

// ---- users ------------------------------------------------------------------------------

async fn users_page(State(state): State<AppState>, Extension(p): Extension<Principal>) -> Response {
    let v = viewer(&p);
    match users_html(&state.store, &v, None, &Fields::default()).await {
        Ok(body) => html(StatusCode::OK, body),
        Err(f) => failure_page(&v, "users", &f),
    }
}

async fn users_html(
    store: &Store,
    v: &Viewer,
    error: Option<&str>,
    sent: &Fields,
) -> Result<String, Failure> {
    let users = store.users().await.map_err(db)?;
    let rows: Vec<String> = users
        .iter()
        .map(|u| {
            let action = if u.name == v.name {
                "(you)".to_owned()
            } else {
                html::post_button(
                    v,
                    &format!("/admin/users/{}/delete", seg(&u.name)),
                    "remove",
                    &format!("user-delete-{}", u.name),
                )
            };
            format!(
                "<tr data-testid=\"user-{}\">{}{}{}<td>{action}</td></tr>",
                html::escape_attr(&u.name),
                td(&u.name),
                td(u.role.as_str()),
                td(u.device.as_deref().unwrap_or("")),
            )
        })
        .collect();
    let mut body = html::table("users", &["name", "role", "phone", ""], &rows);
    body.push_str(
        "<h3>New user, or new settings for one</h3>\n<p>Saving an existing user ends its \
         sessions: it logs in again with the new password.</p>\n\
         <form method=\"post\" action=\"/admin/users\" id=\"user-new\">\n",
    );
    body.push_str(&html::csrf_field(v));
    body.push_str(&html::input("name", "name", sent.get("name"), "required"));
    let role = match sent.get("role") {
        "" => "supervisor",
        r => r,
    };
    body.push_str(&html::select(
        "role",
        "role",
        &["supervisor", "admin"],
        role,
    ));
    body.push_str(&html::input(
        &format!("password (at least {} characters)", form::MIN_PASSWORD),
        "password",
        "",
        "type=\"password\" autocomplete=\"new-password\" required",
    ));
    body.push_str(&html::input(
        "phone (for listen-in)",
        "device",
        sent.get("device"),
        "",
    ));
    body.push_str("<button type=\"submit\">save user</button>\n</form>\n");
    Ok(html::page(v, "users", error, &body))
}

async fn user_save(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> Response {
    let v = viewer(&p);
    let sent = fields(&body);
    let result = async {
        let f = sent.as_ref().map_err(clone_failure)?;
        let u = form::user(f)?;
        let password = u.password.clone();
        let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
            .await
            .map_err(|e| Failure::Internal(Box::new(e)))?
            .map_err(|e| Failure::Internal(Box::new(e)))?;
        let row = User {
            name: u.name.clone(),
            password_hash: hash,
            role: u.role,
            device: u.device.clone(),
            created_at_ms: now_ms(),
        };
        state.store.upsert_user(&row).await.map_err(db)?;
        tracing::info!(actor = %p.actor(), user = %u.name, role = %u.role, "user saved");
        Ok(())
    }
    .await;
    let sent = sent.unwrap_or_default();
    let shown = v.clone();
    answer(
        &v,
        "users",
        "/admin/users".to_owned(),
        result,
        |e| async move { users_html(&state.store, &shown, Some(&e), &sent).await },
    )
    .await
}

async fn user_delete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Response {
    let v = viewer(&p);
    let result = async {
        if name == v.name {
            return Err(Failure::invalid(
                "user",
                "you cannot remove yourself; another admin can",
            ));
        }
        if !state.store.delete_user(&name).await.map_err(db)? {
            return Err(Failure::invalid(
                "user",
                format!("there is no user {name:?}"),
            ));
        }
        tracing::info!(actor = %p.actor(), user = %name, "user removed");
        Ok(())
    }
    .await;
    let shown = v.clone();
    answer(
        &v,
        "users",
        "/admin/users".to_owned(),
        result,
        |e| async move { users_html(&state.store, &shown, Some(&e), &Fields::default()).await },
    )
    .await
}

// ---- carriers ---------------------------------------------------------------------------

async fn carriers_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    let v = viewer(&p);
    match carriers_html(&state.store, &v, None, &Fields::default()).await {
        Ok(body) => html(StatusCode::OK, body),
        Err(f) => failure_page(&v, "carriers", &f),
    }
}

async fn carriers_html(
    store: &Store,
    v: &Viewer,
    error: Option<&str>,
    sent: &Fields,
) -> Result<String, Failure> {
    let carriers = store.carriers().await.map_err(db)?;
    let rows: Vec<String> = carriers
        .iter()
        .map(|c| {
            format!(
                "<tr data-testid=\"carrier-{}\">{}{}<td>{}</td></tr>",
                html::escape_attr(&c.name),
                td(&c.name),
                td(&c.network),
                html::post_button(
                    v,
                    &format!("/admin/carriers/{}/delete", seg(&c.name)),
                    "remove",
                    &format!("carrier-delete-{}", c.name),
                ),
            )
        })
        .collect();
    let mut body = html::table("carriers", &["name", "network", ""], &rows);
    body.push_str(
        "<p>New calls are taken from these networks and from each node's \
         <code>carriers.allow</code>. Every node uses a change from its next INVITE on \
         (within a second or two).</p>\n<h3>New carrier, or a new network for one</h3>\n\
         <form method=\"post\" action=\"/admin/carriers\" id=\"carrier-new\">\n",
    );
    body.push_str(&html::csrf_field(v));
    body.push_str(&html::input("name", "name", sent.get("name"), "required"));
    body.push_str(&html::input(
        "network (CIDR, e.g. 203.0.113.0/24)",
        "network",
        sent.get("network"),
        "required",
    ));
    body.push_str("<button type=\"submit\">save carrier</button>\n</form>\n");
    Ok(html::page(v, "carriers", error, &body))
}

async fn carrier_save(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> Response {
    let v = viewer(&p);
    let sent = fields(&body);
    let result = async {
        let f = sent.as_ref().map_err(clone_failure)?;
        let c = form::carrier(f, now_ms())?;
        state.store.upsert_carrier(&c).await.map_err(db)?;
        tracing::info!(actor = %p.actor(), carrier = %c.name, network = %c.network, "carrier saved");
        Ok(())
    }
    .await;
    let sent = sent.unwrap_or_default();
    let shown = v.clone();
    answer(
        &v,
        "carriers",
        "/admin/carriers".to_owned(),
        result,
        |e| async move { carriers_html(&state.store, &shown, Some(&e), &sent).await },
    )
    .await
}

async fn carrier_delete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Response {
    let v = viewer(&p);
    let result = async {
        if !state.store.delete_carrier(&name).await.map_err(db)? {
            return Err(Failure::invalid(
                "carrier",
                format!("there is no carrier {name:?}"),
            ));
        }
        tracing::info!(actor = %p.actor(), carrier = %name, "carrier removed");
        Ok(())
    }
    .await;
    let shown = v.clone();
    answer(
        &v,
        "carriers",
        "/admin/carriers".to_owned(),
        result,
        |e| async move { carriers_html(&state.store, &shown, Some(&e), &Fields::default()).await },
    )
    .await
}

#[cfg(test)]
mod tests;
