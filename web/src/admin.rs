//! The admin pages: queues (with their members and VIP callers), agents, phones, panel users
//! carriers, numbers (DIDs), IVR menus and ring groups, as server-rendered forms in the layout shared with the panel
//! ([`crate::page`]), with no script.
//!
//! Every route is level [`AdminPage`](crate::auth::Access::AdminPage): an admin with a
//! session; anyone else is sent to `/login` (supervisors get 403). Every form carries the
//! session's CSRF token as the hidden field `csrf`, which the guard checks.
//!
//! The kinds of configuration share one set of handlers ([`resource`]): each is a
//! [`Resource`] (its form, its rules, its store calls), served at
//! `/admin/{queues,agents,devices,users,carriers,numbers,menus,groups}`:
//!
//! | route | does |
//! |-------|------|
//! | `GET /admin` | the overview |
//! | `GET /admin/R`, `POST /admin/R` | the list and the form for a new one; create one (refused if the name is taken) |
//! | `GET /admin/R/{key}`, `POST /admin/R/{key}` | one's page and form; save it |
//! | `GET /admin/R/{key}/delete`, `POST /admin/R/{key}/delete` | the confirmation page; delete |
//! | `POST /admin/queues/{name}/members`, `GET, POST .../members/{agent}/delete` | add or change a member (tier, VIP permission, weight, position); confirm, remove one |
//! | `GET /admin/prompts`, `POST /admin/prompts` (multipart) | uploaded prompts; upload a WAV or MP3 ([`prompts`]) |
//! | `POST /admin/queues/{name}/vips`, `GET, POST .../vips/{number}/delete` | add a VIP caller; confirm, remove one |
//!
//! A change answers `303 See Other` to the page it was made from, with a flash message (the
//! short-lived cookie `cf_flash`, shown once as text by the next admin page). A form that
//! breaks a rule answers the page again with every problem next to its field and in a summary
//! at the top: 400 for a body that is not a form, 404 for something that does not exist, 422
//! for a bad value (unknown strategy, negative time, bad CIDR, missing fallback target,
//! unknown agent...). With the database unreachable the answer is a 503 page and nothing
//! changed. Durations are shown and typed in seconds; the store keeps milliseconds
//! ([`form`] converts).
//!
//! Every write goes through [`Store`]; configuration writes bump the
//! config version, so every node sees the change on its next action (within a second).

pub mod agents;
pub mod carriers;
pub mod devices;
pub mod form;
pub mod groups;
pub mod menus;
pub mod numbers;
pub mod prompts;
pub mod queues;
pub mod resource;
pub mod users;
pub mod view;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use base64::Engine as _;
use callfleet_store::{Store, StoreError};

use callfleet_vocab::now_ms;

use crate::api::AppState;
use crate::auth::{self, Principal};
use crate::error::BoxError;
use crate::page::Area;
use form::{Invalid, Problems};
pub use resource::Resource;
use view::{Cell, Link, Page, Row, Section, Table};

/// Pages may load only this node's style sheet; nothing is framed or scripted.
const CSP: &str = "default-src 'self'; img-src 'self' data:; script-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The cookie that carries the flash message to the page after a change.
pub const FLASH_COOKIE: &str = "cf_flash";

/// Longest flash message kept, in bytes (a longer cookie is ignored).
const MAX_FLASH: usize = 512;

/// Every admin route (all at level `AdminPage`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(index))
        .merge(resource::routes::<queues::Queues>())
        .merge(queues::member_routes())
        .merge(resource::routes::<agents::Agents>())
        .merge(resource::routes::<devices::Devices>())
        .merge(resource::routes::<users::Users>())
        .merge(resource::routes::<carriers::Carriers>())
        .merge(resource::routes::<numbers::Numbers>())
        .merge(resource::routes::<menus::Menus>())
        .merge(resource::routes::<groups::Groups>())
        .merge(prompts::routes())
        .merge(resource::routes::<crate::reports::departments::Departments>())
}

/// Why an admin request did not do what it asked.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The body is not an urlencoded form (400).
    #[error("{0}")]
    BadForm(Invalid),
    /// Fields break rules (422).
    #[error("{0}")]
    Invalid(Problems),
    /// The page's subject does not exist (404).
    #[error("there is no {what} {name:?}")]
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

    /// A problem with one field.
    pub fn invalid(field: &'static str, problem: impl Into<String>) -> Failure {
        Failure::Invalid(form::invalid(field, problem).into())
    }

    fn log(&self) {
        match self {
            Failure::Unavailable(_) | Failure::Internal(_) => tracing::error!(
                error = self as &(dyn std::error::Error + 'static),
                "admin request failed"
            ),
            _ => tracing::debug!(error = %self, "admin request refused"),
        }
    }
}

/// A store error: unreachable or busy is 503; a row the schema refused (which the form
/// checks should have caught) is shown as a bad value; anything else is internal.
pub fn db(e: StoreError) -> Failure {
    match e {
        StoreError::Query { .. } | StoreError::Connect { .. } => Failure::Unavailable(e),
        _ if e.is_transient() => Failure::Unavailable(e),
        StoreError::InvalidValue { .. }
        | StoreError::MissingReference { .. }
        | StoreError::Duplicate { .. } => Failure::invalid("", e.to_string()),
        other => Failure::Internal(Box::new(other)),
    }
}

/// One admin request: the node's state, who asks, and the flash message it brought.
pub struct Ctx {
    /// The node's shared state.
    pub state: AppState,
    /// The admin's name.
    pub user: String,
    /// The session's CSRF token, embedded in every form.
    pub csrf: String,
    /// Who the logs name.
    pub actor: String,
    flash: Option<String>,
}

impl Ctx {
    /// The request's context.
    pub fn new(state: AppState, principal: &Principal, headers: &HeaderMap) -> Ctx {
        let user = match principal {
            Principal::User { name, .. } => name.clone(),
            other => other.actor(),
        };
        Ctx {
            state,
            user,
            csrf: principal.csrf().unwrap_or_default().to_owned(),
            actor: principal.actor(),
            flash: read_flash(headers),
        }
    }

    /// A page of this request, with the flash message it brought.
    pub fn page(&self, title: &str, area: Area) -> Page {
        let mut page = Page::new(view::chrome(title, area, &self.user, &self.csrf), title);
        page.flash = self.flash.clone();
        page
    }

    /// Answers with `page` (and forgets the flash message it showed).
    pub fn show(&self, status: StatusCode, page: &Page) -> Response {
        let mut response = (status, headers(), Html(page.html())).into_response();
        if self.flash.is_some() {
            response.headers_mut().append(
                header::SET_COOKIE,
                HeaderValue::from_static(
                    "cf_flash=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Strict",
                ),
            );
        }
        response
    }

    /// A page that says why the request failed.
    pub fn failure(&self, title: &str, area: Area, failure: &Failure) -> Response {
        failure.log();
        let mut page = self.page(title, area);
        match failure {
            Failure::Invalid(problems) => page.show_problems(problems),
            other => page.show_problems(&form::invalid("", other.to_string()).into()),
        }
        page.sections.push(Section {
            id: "back".into(),
            title: "Where next".into(),
            links: vec![Link::new(area_href(area), "Back to the list")],
            ..Section::default()
        });
        self.show(failure.status(), &page)
    }
}

/// The list page of an area.
fn area_href(area: Area) -> &'static str {
    match area {
        Area::Panel => "/",
        Area::Calls => "/calls",
        Area::Overview => "/admin",
        Area::Queues => "/admin/queues",
        Area::Agents => "/admin/agents",
        Area::Phones => "/admin/devices",
        Area::Users => "/admin/users",
        Area::Carriers => "/admin/carriers",
        Area::Numbers => "/admin/numbers",
        Area::Menus => "/admin/menus",
        Area::Groups => "/admin/groups",
        Area::Departments => "/admin/departments",
        Area::Reports => "/reports",
    }
}

/// The admin pages' headers (the calls page's too).
pub(crate) fn headers() -> [(header::HeaderName, HeaderValue); 3] {
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
    ]
}

/// A change was made: `303` to `to`, with `flash` for the next page.
pub fn saved(to: &str, flash: &str) -> Response {
    let mut text = flash.to_owned();
    truncate(&mut text, MAX_FLASH);
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text.as_bytes());
    let cookie =
        format!("{FLASH_COOKIE}={value}; Path=/admin; Max-Age=60; HttpOnly; SameSite=Strict");
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// The flash message a request carries, if it is one of ours (bounded, UTF-8).
fn read_flash(headers: &HeaderMap) -> Option<String> {
    let value = auth::cookie(headers, FLASH_COOKIE)?;
    if value.is_empty() || value.len() > MAX_FLASH * 2 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .ok()?;
    String::from_utf8(bytes)
        .ok()
        .filter(|t| !t.is_empty() && t.len() <= MAX_FLASH)
}

/// Cuts `text` to at most `max` bytes, on a character boundary.
fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// `GET /admin`: how many of each there are, with links.
async fn index(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    request_headers: HeaderMap,
) -> Response {
    let ctx = Ctx::new(state, &p, &request_headers);
    let counts = match counts(&ctx.state.store).await {
        Ok(counts) => counts,
        Err(e) => return ctx.failure("Admin", Area::Overview, &db(e)),
    };
    let mut page = ctx.page("Admin", Area::Overview);
    page.notes.push(
        "Changes are saved in the shared database; every node uses them from its next call on."
            .into(),
    );
    page.sections.push(overview(counts));
    ctx.show(StatusCode::OK, &page)
}

/// One line of the overview: its test id, the page listing them, what they are, how many.
type Count = (&'static str, &'static str, &'static str, usize);

/// How many there are of each kind of configuration, in the overview's order.
async fn counts(s: &Store) -> Result<[Count; 9], StoreError> {
    Ok([
        ("queues", "/admin/queues", "Queues", s.queues().await?.len()),
        ("agents", "/admin/agents", "Agents", s.agents().await?.len()),
        (
            "phones",
            "/admin/devices",
            "Phones",
            s.devices().await?.len(),
        ),
        (
            "users",
            "/admin/users",
            "Panel users",
            s.users().await?.len(),
        ),
        (
            "carriers",
            "/admin/carriers",
            "Carriers",
            s.carriers().await?.len(),
        ),
        (
            "numbers",
            "/admin/numbers",
            "Numbers",
            s.numbers().await?.len(),
        ),
        ("menus", "/admin/menus", "IVR menus", s.menus().await?.len()),
        (
            "groups",
            "/admin/groups",
            "Ring groups",
            s.groups().await?.len(),
        ),
        (
            "prompts",
            "/admin/prompts",
            "Prompts",
            s.prompts().await?.len(),
        ),
    ])
}

/// The overview's table: a row per kind, linking to its page, with how many there are.
fn overview(counts: [Count; 9]) -> Section {
    let rows = counts
        .into_iter()
        .map(|(id, href, label, n)| Row {
            testid: format!("count-{id}"),
            cells: vec![
                Cell::Links(vec![Link::new(href, label).testid(format!("nav-{id}"))]),
                Cell::Text(n.to_string()),
            ],
        })
        .collect();
    Section {
        id: "overview".into(),
        title: "Configuration".into(),
        table: Some(Table {
            id: "overview-table".into(),
            headers: vec!["what", "how many"],
            rows,
            empty: String::new(),
        }),
        ..Section::default()
    }
}

#[cfg(test)]
mod tests;
