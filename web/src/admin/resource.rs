//! One set of handlers for every kind of configuration: a [`Resource`] says what its rows
//! are, how its form looks and is checked (the pure rules of [`super::form`]) and which store
//! calls read, save and delete it; [`routes`] serves it at `/admin/{PATH}` with a list, a
//! form for a new one, a page per row, a confirmation before each delete and a flash message
//! after each change.

use std::future::Future;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use callfleet_store::{Store, StoreError};

use super::form::{Fields, Problems};
use super::view::{seg, Cell, Fieldset, Form, Link, Page, Row, Section, Table};
use super::{db, now_ms, saved, Ctx, Failure};
use crate::api::AppState;
use crate::auth::Principal;
use crate::page::Area;

/// A kind of configuration the admin pages manage.
pub trait Resource: Send + Sync + 'static {
    /// Its address under `/admin/` (`queues`).
    const PATH: &'static str;
    /// Its ids and `data-testid`s start with this (`queue`).
    const ID: &'static str;
    /// One of them, in words (`queue`).
    const NOUN: &'static str;
    /// The list page's heading (`Queues`).
    const TITLE: &'static str;
    /// The form field that names one (`name`, `extension`).
    const KEY_FIELD: &'static str;
    /// Where its pages belong in the navigation.
    const AREA: Area;

    /// A stored row.
    type Row: Send + Sync;
    /// A form that passed the rules, ready to save.
    type Form: Send;

    /// The row's name, its key in addresses.
    fn key(row: &Self::Row) -> &str;
    /// The name a checked form saves under.
    fn form_key(form: &Self::Form) -> &str;
    /// The list's column headings after the name's.
    fn headers() -> Vec<&'static str>;
    /// A row's cells after its name.
    fn cells(row: &Self::Row) -> Vec<String>;
    /// Paragraphs on the list page.
    fn notes() -> Vec<String> {
        Vec::new()
    }
    /// The form's values for a row.
    fn values(row: &Self::Row) -> Fields;
    /// The form's fields, filled from `values`; `key` is the row's name on its own page
    /// (`None`: the form for a new one).
    fn fieldsets(values: &Fields, key: Option<&str>) -> Vec<Fieldset>;
    /// The pure rules: the form's fields as a form to save, or every problem.
    fn check(fields: &Fields, key: Option<&str>, now_ms: i64) -> Result<Self::Form, Problems>;

    /// Every row, in order.
    fn list(store: &Store) -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send;
    /// The row named `key`.
    fn load(
        store: &Store,
        key: &str,
    ) -> impl Future<Output = Result<Option<Self::Row>, StoreError>> + Send;
    /// Saves a checked form over `old` (`None`: a new one); checks against the store what
    /// the pure rules cannot (a fallback target, oneself).
    fn save(
        ctx: &Ctx,
        form: Self::Form,
        old: Option<Self::Row>,
    ) -> impl Future<Output = Result<(), Failure>> + Send;
    /// Deletes the row (refused while it is in use).
    fn remove(ctx: &Ctx, row: Self::Row) -> impl Future<Output = Result<(), Failure>> + Send;

    /// What deleting the row also does, said on the confirmation page.
    fn delete_note(_row: &Self::Row) -> Option<String> {
        None
    }
    /// Why this viewer cannot delete the row (shown instead of the link), if so.
    fn undeletable(_ctx: &Ctx, _row: &Self::Row) -> Option<&'static str> {
        None
    }
    /// More sections on a row's page (a queue's members and VIP callers); `sent` is a form
    /// of them shown again with its problems, as (form id, fields).
    fn sections(
        _ctx: &Ctx,
        _row: &Self::Row,
        _sent: Option<(&str, &Fields)>,
    ) -> impl Future<Output = Result<Vec<Section>, Failure>> + Send {
        async { Ok(Vec::new()) }
    }
    /// Where a saved form goes: the list, unless the resource has more on its own page.
    fn saved_to(_key: &str) -> String {
        format!("/admin/{}", Self::PATH)
    }
}

/// The routes of `R`.
pub fn routes<R: Resource>() -> Router<AppState> {
    let base = format!("/admin/{}", R::PATH);
    Router::new()
        .route(&base, get(list::<R>).post(create::<R>))
        .route(&format!("{base}/{{key}}"), get(edit::<R>).post(update::<R>))
        .route(
            &format!("{base}/{{key}}/delete"),
            get(confirm::<R>).post(delete::<R>),
        )
}

/// `Queue`, from `queue`.
pub fn capital(noun: &str) -> String {
    let mut chars = noun.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `queues` from `Queues`; an acronym stays (`IVR menus`).
fn small(title: &str) -> String {
    let mut chars = title.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if !second.is_uppercase() => {
            first.to_lowercase().chain([second]).chain(chars).collect()
        }
        _ => title.to_owned(),
    }
}

/// A row's page.
pub fn href<R: Resource>(key: &str) -> String {
    format!("/admin/{}/{}", R::PATH, seg(key))
}

fn table<R: Resource>(ctx: &Ctx, rows: &[R::Row]) -> Table {
    let mut headers = vec![R::KEY_FIELD];
    headers.extend(R::headers());
    headers.push("actions");
    let rows = rows
        .iter()
        .map(|row| {
            let key = R::key(row);
            let mut cells = vec![Cell::Links(vec![Link::new(href::<R>(key), key)])];
            cells.extend(R::cells(row).into_iter().map(Cell::Text));
            let mut actions = vec![Link::new(href::<R>(key), "Edit")
                .label(format!("Edit {} {key}", R::NOUN))
                .testid(format!("{}-edit-{key}", R::ID))];
            let note = match R::undeletable(ctx, row) {
                Some(why) => why.to_owned(),
                None => {
                    actions.push(
                        Link::new(format!("{}/delete", href::<R>(key)), "Delete…")
                            .label(format!("Delete {} {key}", R::NOUN))
                            .testid(format!("{}-delete-{key}", R::ID))
                            .class("danger-link"),
                    );
                    String::new()
                }
            };
            cells.push(Cell::Actions(actions, note));
            Row {
                testid: format!("{}-{key}", R::ID),
                cells,
            }
        })
        .collect();
    Table {
        id: R::PATH.to_owned(),
        headers,
        rows,
        empty: format!("No {} yet.", R::NOUN),
    }
}

/// The list page: the rows, and the form for a new one (filled from `sent`, with `problems`).
async fn list_page<R: Resource>(
    ctx: &Ctx,
    sent: Option<&Fields>,
    problems: Option<&Problems>,
) -> Result<Page, Failure> {
    let rows = R::list(&ctx.state.store).await.map_err(db)?;
    let mut page = ctx.page(R::TITLE, R::AREA);
    page.notes = R::notes();
    page.sections.push(Section {
        id: "list".into(),
        title: format!("All {}", small(R::TITLE)),
        table: Some(table::<R>(ctx, &rows)),
        ..Section::default()
    });
    let blank = Fields::default();
    let form = Form::new(
        format!("{}-new", R::ID),
        format!("/admin/{}", R::PATH),
        &ctx.csrf,
        format!("Create {}", R::NOUN),
        R::fieldsets(sent.unwrap_or(&blank), None),
    );
    page.sections.push(Section {
        id: "new".into(),
        title: format!("New {}", R::NOUN),
        form: Some(form),
        ..Section::default()
    });
    if let Some(problems) = problems {
        page.show_problems(problems);
    }
    Ok(page)
}

/// A row's page: its form (filled from the row, or from `sent` when it is this form shown
/// again), the resource's other sections, and the way to delete it.
pub async fn edit_page<R: Resource>(
    ctx: &Ctx,
    row: &R::Row,
    sent: Option<(&str, &Fields)>,
    problems: Option<&Problems>,
) -> Result<Page, Failure> {
    let key = R::key(row);
    let form_id = format!("{}-edit", R::ID);
    let values = match sent {
        Some((id, fields)) if id == form_id => fields.clone(),
        _ => R::values(row),
    };
    let title = format!("{} {key}", capital(R::NOUN));
    let mut page = ctx.page(&title, R::AREA);
    let mut form = Form::new(
        form_id,
        href::<R>(key),
        &ctx.csrf,
        "Save changes",
        R::fieldsets(&values, Some(key)),
    );
    form.cancel = Some(Link::new(format!("/admin/{}", R::PATH), "Back to the list"));
    page.sections.push(Section {
        id: "settings".into(),
        title: "Settings".into(),
        form: Some(form),
        ..Section::default()
    });
    page.sections.extend(R::sections(ctx, row, sent).await?);
    if R::undeletable(ctx, row).is_none() {
        page.sections.push(Section {
            id: "delete".into(),
            title: format!("Delete this {}", R::NOUN),
            links: vec![Link::new(
                format!("{}/delete", href::<R>(key)),
                format!("Delete {} {key}…", R::NOUN),
            )
            .testid(format!("{}-delete", R::ID))
            .class("button danger")],
            ..Section::default()
        });
    }
    if let Some(problems) = problems {
        page.show_problems(problems);
    }
    Ok(page)
}

/// A page asking to confirm a delete: `question` as the heading, `notes`, and a form that
/// POSTs to `action` (the delete) or a link back to `back`.
pub fn confirm_page(
    ctx: &Ctx,
    area: Area,
    question: String,
    notes: Vec<String>,
    action: String,
    submit: String,
    back: String,
) -> Page {
    let mut page = ctx.page(&question, area);
    page.notes = notes;
    let mut form = Form::new("confirm", action, &ctx.csrf, submit, Vec::new());
    form.submit_class = "danger";
    form.cancel = Some(Link::new(back, "Cancel, keep it").testid("cancel"));
    page.sections.push(Section {
        id: "confirm-section".into(),
        title: "Confirm".into(),
        form: Some(form),
        ..Section::default()
    });
    page
}

/// The row named `key`, or a 404.
async fn require<R: Resource>(ctx: &Ctx, key: &str) -> Result<R::Row, Failure> {
    R::load(&ctx.state.store, key)
        .await
        .map_err(db)?
        .ok_or_else(|| Failure::NotFound {
            what: R::NOUN,
            name: key.to_owned(),
        })
}

/// Whether the failure is shown on the form it came from (a bad value), not on a page of
/// its own.
fn on_the_form(failure: &Failure) -> Option<&Problems> {
    match failure {
        Failure::Invalid(problems) => Some(problems),
        _ => None,
    }
}

async fn list<R: Resource>(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
) -> Response {
    let ctx = Ctx::new(state, &p, &headers);
    match list_page::<R>(&ctx, None, None).await {
        Ok(page) => ctx.show(StatusCode::OK, &page),
        Err(f) => ctx.failure(R::TITLE, R::AREA, &f),
    }
}

async fn create<R: Resource>(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = Ctx::new(state, &p, &headers);
    let sent = match Fields::parse(&body) {
        Ok(sent) => sent,
        Err(e) => return ctx.failure(R::TITLE, R::AREA, &Failure::BadForm(e)),
    };
    let result = async {
        let form = R::check(&sent, None, now_ms()).map_err(Failure::Invalid)?;
        let key = R::form_key(&form).to_owned();
        if R::load(&ctx.state.store, &key).await.map_err(db)?.is_some() {
            return Err(Failure::invalid(
                R::KEY_FIELD,
                format!(
                    "{} {key:?} exists already: change it on its own page",
                    capital(R::NOUN)
                ),
            ));
        }
        R::save(&ctx, form, None).await?;
        Ok(key)
    }
    .await;
    match result {
        Ok(key) => {
            tracing::info!(actor = %ctx.actor, what = R::NOUN, key = %key, "admin: created");
            saved(
                &R::saved_to(&key),
                &format!("{} {key} created.", capital(R::NOUN)),
            )
        }
        Err(f) => match on_the_form(&f) {
            Some(problems) => match list_page::<R>(&ctx, Some(&sent), Some(problems)).await {
                Ok(page) => {
                    f.log();
                    ctx.show(f.status(), &page)
                }
                Err(again) => ctx.failure(R::TITLE, R::AREA, &again),
            },
            None => ctx.failure(R::TITLE, R::AREA, &f),
        },
    }
}

async fn edit<R: Resource>(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let ctx = Ctx::new(state, &p, &headers);
    let page = async {
        let row = require::<R>(&ctx, &key).await?;
        edit_page::<R>(&ctx, &row, None, None).await
    }
    .await;
    match page {
        Ok(page) => ctx.show(StatusCode::OK, &page),
        Err(f) => ctx.failure(R::TITLE, R::AREA, &f),
    }
}

async fn update<R: Resource>(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = Ctx::new(state, &p, &headers);
    let sent = match Fields::parse(&body) {
        Ok(sent) => sent,
        Err(e) => return ctx.failure(R::TITLE, R::AREA, &Failure::BadForm(e)),
    };
    let row = match require::<R>(&ctx, &key).await {
        Ok(row) => row,
        Err(f) => return ctx.failure(R::TITLE, R::AREA, &f),
    };
    let result = async {
        let form = R::check(&sent, Some(&key), now_ms()).map_err(Failure::Invalid)?;
        R::save(&ctx, form, Some(row)).await
    }
    .await;
    let f = match result {
        Ok(()) => {
            tracing::info!(actor = %ctx.actor, what = R::NOUN, key = %key, "admin: saved");
            return saved(
                &R::saved_to(&key),
                &format!("{} {key} saved.", capital(R::NOUN)),
            );
        }
        Err(f) => f,
    };
    let Some(problems) = on_the_form(&f) else {
        return ctx.failure(R::TITLE, R::AREA, &f);
    };
    // Shown again over the row as it is now.
    let again = async {
        let row = require::<R>(&ctx, &key).await?;
        let form_id = format!("{}-edit", R::ID);
        edit_page::<R>(&ctx, &row, Some((&form_id, &sent)), Some(problems)).await
    }
    .await;
    match again {
        Ok(page) => {
            f.log();
            ctx.show(f.status(), &page)
        }
        Err(again) => ctx.failure(R::TITLE, R::AREA, &again),
    }
}

fn confirm_for<R: Resource>(ctx: &Ctx, row: &R::Row) -> Page {
    let key = R::key(row);
    confirm_page(
        ctx,
        R::AREA,
        format!("Delete {} {key}?", R::NOUN),
        R::delete_note(row).into_iter().collect(),
        format!("{}/delete", href::<R>(key)),
        format!("Delete {} {key}", R::NOUN),
        href::<R>(key),
    )
}

async fn confirm<R: Resource>(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let ctx = Ctx::new(state, &p, &headers);
    match require::<R>(&ctx, &key).await {
        Ok(row) => ctx.show(StatusCode::OK, &confirm_for::<R>(&ctx, &row)),
        Err(f) => ctx.failure(R::TITLE, R::AREA, &f),
    }
}

async fn delete<R: Resource>(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let ctx = Ctx::new(state, &p, &headers);
    let row = match require::<R>(&ctx, &key).await {
        Ok(row) => row,
        Err(f) => return ctx.failure(R::TITLE, R::AREA, &f),
    };
    let mut page = confirm_for::<R>(&ctx, &row);
    let result = match R::undeletable(&ctx, &row) {
        Some(why) => Err(Failure::invalid("", why)),
        None => R::remove(&ctx, row).await,
    };
    match result {
        Ok(()) => {
            tracing::info!(actor = %ctx.actor, what = R::NOUN, key = %key, "admin: deleted");
            saved(
                &format!("/admin/{}", R::PATH),
                &format!("{} {key} deleted.", capital(R::NOUN)),
            )
        }
        Err(Failure::Invalid(problems)) => {
            tracing::debug!(key = %key, %problems, "admin: delete refused");
            page.show_problems(&problems);
            ctx.show(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(f) => ctx.failure(R::TITLE, R::AREA, &f),
    }
}
