//! Prompts uploaded for IVR menus and hang-up messages: `GET /admin/prompts` lists them (with a
//! player) beside the upload form; `POST /admin/prompts` takes a WAV or MP3 (multipart, up to
//! [`MAX_UPLOAD`] bytes), converts it to 8 kHz mono ([`audio`]) and stores it in the shared
//! database under a name that menus (`prompt`) and numbers (`message:NAME`) use; every node
//! plays it from its next call on. `GET /admin/prompts/{name}/audio` is the stored WAV;
//! `GET, POST /admin/prompts/{name}/delete` confirm and delete one (refused while a menu, a
//! number or a ring group names it).
//!
//! A multipart body cannot be read by the CSRF guard (it reads urlencoded forms), so the upload
//! form carries the session's token in its action's query (`?csrf=`); the guard checks it there
//! for `multipart/form-data` only.

pub mod audio;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use callfleet_store::{PromptInfo, Store};

use super::form::Problems;
use super::resource::confirm_page;
use super::view::{Cell, Field, Fieldset, Form, Link, Page, Row, Section, Table};
use super::{db, now_ms, saved, Ctx, Failure};
use crate::api::AppState;
use crate::auth::Principal;
use crate::page::Area;

/// The largest upload taken, in bytes (five minutes of 16-bit mono at 16 kHz is ~10 MB; an
/// MP3 is far less).
pub const MAX_UPLOAD: usize = 16 * 1024 * 1024;
/// The longest prompt name.
pub const MAX_NAME: usize = 64;
const TITLE: &str = "Prompts";

/// The prompt routes (level `AdminPage`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/prompts",
            get(list)
                .post(upload)
                .layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .route("/admin/prompts/{name}/audio", get(play))
        .route(
            "/admin/prompts/{name}/delete",
            get(confirm_delete).post(delete),
        )
}

/// A name menus and numbers may use: letters, digits, `-` and `_`, at most [`MAX_NAME`]
/// bytes. No dot, so that it is never taken for a file of a node's prompts directory.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
) -> Response {
    let ctx = Ctx::new(state, &p, &headers);
    match page(&ctx, "", None).await {
        Ok(page) => ctx.show(StatusCode::OK, &page),
        Err(f) => ctx.failure(TITLE, Area::Menus, &f),
    }
}

/// The list and the upload form (its name filled with `name`), with `problems`.
async fn page(ctx: &Ctx, name: &str, problems: Option<&Problems>) -> Result<Page, Failure> {
    let prompts = ctx.state.store.prompts().await.map_err(db)?;
    let mut page = ctx.page(TITLE, Area::Menus);
    page.notes = vec![
        "Recordings for IVR menus (their prompt) and hang-up messages (message:NAME). A WAV \
         or MP3 of any rate is converted to what phones hear (8 kHz, mono); five minutes at \
         most. Every node plays a new upload from its next call on."
            .into(),
    ];
    let rows = prompts.iter().map(row).collect();
    page.sections.push(Section {
        id: "list".into(),
        title: "All prompts".into(),
        table: Some(Table {
            id: "prompt-table".into(),
            headers: vec!["name", "length", "listen", "actions"],
            rows,
            empty: "No prompt uploaded yet.".into(),
        }),
        ..Section::default()
    });
    let mut file = Field::file(
        "file",
        "Recording",
        "audio/wav,audio/x-wav,audio/mpeg,.wav,.mp3",
    )
    .required()
    .hint("A WAV or MP3 file; one with the same name replaces it.");
    file.value.clear();
    let form = Form::new(
        "prompt-new",
        format!("/admin/prompts?csrf={}", ctx.csrf),
        &ctx.csrf,
        "Upload prompt",
        vec![Fieldset {
            legend: "Prompt",
            fields: vec![
                Field::text("name", "Name")
                    .value(name)
                    .required()
                    .hint("Letters, digits, '-' and '_' (what menus and numbers name it by)."),
                file,
            ],
        }],
    )
    .multipart();
    page.sections.push(Section {
        id: "new".into(),
        title: "Upload a prompt".into(),
        form: Some(form),
        ..Section::default()
    });
    if let Some(problems) = problems {
        page.show_problems(problems);
    }
    Ok(page)
}

fn row(p: &PromptInfo) -> Row {
    let name = &p.name;
    let seconds = p.samples as f64 / f64::from(audio::RATE);
    Row {
        testid: format!("prompt-{name}"),
        cells: vec![
            Cell::Text(name.clone()),
            Cell::Text(format!("{seconds:.1} s")),
            Cell::Audio {
                src: format!("/admin/prompts/{name}/audio"),
                label: format!("Prompt {name}"),
            },
            Cell::Actions(
                vec![Link::new(format!("/admin/prompts/{name}/delete"), "Delete")
                    .label(format!("Delete prompt {name}"))
                    .testid(format!("prompt-{name}-delete"))
                    .class("danger")],
                String::new(),
            ),
        ],
    }
}

/// What an upload form sent.
#[derive(Default)]
struct Upload {
    name: String,
    file: Option<Bytes>,
}

async fn read_upload(mut multipart: Multipart) -> Result<Upload, Failure> {
    let mut upload = Upload::default();
    let bad = |e: axum::extract::multipart::MultipartError| {
        Failure::invalid(
            "file",
            format!("the upload could not be read: {}", e.body_text()),
        )
    };
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        match field.name() {
            Some("name") => upload.name = field.text().await.map_err(bad)?.trim().to_owned(),
            Some("file") => upload.file = Some(field.bytes().await.map_err(bad)?),
            _ => {} // the csrf field, or anything else a client adds
        }
    }
    Ok(upload)
}

async fn upload(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let ctx = Ctx::new(state, &p, &headers);
    let upload = match read_upload(multipart).await {
        Ok(u) => u,
        Err(f) => return refused(&ctx, "", f).await,
    };
    match store_upload(&ctx, &upload).await {
        Ok(info) => {
            tracing::info!(actor = %ctx.actor, prompt = %info.name, samples = info.samples, "prompt uploaded");
            saved(
                "/admin/prompts",
                &format!(
                    "Prompt {} uploaded ({:.1} s).",
                    info.name,
                    info.samples as f64 / f64::from(audio::RATE)
                ),
            )
        }
        Err(f) => refused(&ctx, &upload.name, f).await,
    }
}

async fn store_upload(ctx: &Ctx, upload: &Upload) -> Result<PromptInfo, Failure> {
    if !valid_name(&upload.name) {
        return Err(Failure::invalid(
            "name",
            "a name of letters, digits, '-' and '_' (64 at most) is needed",
        ));
    }
    let file = match &upload.file {
        Some(f) if !f.is_empty() => f.to_vec(),
        _ => return Err(Failure::invalid("file", "choose a WAV or MP3 file")),
    };
    let converted = tokio::task::spawn_blocking(move || audio::to_prompt(file))
        .await
        .map_err(|e| Failure::Internal(Box::new(e)))?
        .map_err(|e| Failure::invalid("file", e.to_string()))?;
    let info = PromptInfo {
        name: upload.name.clone(),
        samples: converted.samples,
        uploaded_at_ms: now_ms(),
    };
    ctx.state
        .store
        .put_prompt(&info, &converted.wav)
        .await
        .map_err(db)?;
    Ok(info)
}

/// The page again with what went wrong (422 with the problem beside its field).
async fn refused(ctx: &Ctx, name: &str, failure: Failure) -> Response {
    let Failure::Invalid(problems) = &failure else {
        return ctx.failure(TITLE, Area::Menus, &failure);
    };
    match page(ctx, name, Some(problems)).await {
        Ok(page) => ctx.show(failure.status(), &page),
        Err(f) => ctx.failure(TITLE, Area::Menus, &f),
    }
}

/// `GET /admin/prompts/{name}/audio`: the stored WAV.
async fn play(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let ctx = Ctx::new(state, &p, &headers);
    match ctx.state.store.prompt_wav(&name).await {
        Ok(Some((wav, _))) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("audio/wav")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            wav,
        )
            .into_response(),
        Ok(None) => ctx.failure(
            TITLE,
            Area::Menus,
            &Failure::NotFound {
                what: "prompt",
                name,
            },
        ),
        Err(e) => ctx.failure(TITLE, Area::Menus, &db(e)),
    }
}

/// What names prompt `name`: menus (their prompt, or `message:NAME` for a key or the invalid
/// path), numbers and ring groups (`message:NAME`).
async fn users_of(store: &Store, name: &str) -> Result<Vec<String>, Failure> {
    let message = |d: &callfleet_store::Destination| {
        d.kind == callfleet_vocab::DestKind::Message && d.target == name
    };
    let mut users: Vec<String> = store
        .menus()
        .await
        .map_err(db)?
        .into_iter()
        .filter(|m| m.prompt == name || message(&m.invalid) || m.choices.values().any(message))
        .map(|m| format!("menu {}", m.name))
        .collect();
    users.extend(
        store
            .numbers()
            .await
            .map_err(db)?
            .into_iter()
            .filter(|n| message(&n.open) || message(&n.closed))
            .map(|n| format!("number {}", n.number)),
    );
    users.extend(
        store
            .groups()
            .await
            .map_err(db)?
            .into_iter()
            .filter(|g| message(&g.no_answer))
            .map(|g| format!("ring group {}", g.name)),
    );
    Ok(users)
}

async fn confirm_delete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let ctx = Ctx::new(state, &p, &headers);
    let exists = ctx
        .state
        .store
        .prompts()
        .await
        .map(|all| all.iter().any(|p| p.name == name));
    match exists {
        Ok(true) => {}
        Ok(false) => {
            return ctx.failure(
                TITLE,
                Area::Menus,
                &Failure::NotFound {
                    what: "prompt",
                    name,
                },
            )
        }
        Err(e) => return ctx.failure(TITLE, Area::Menus, &db(e)),
    }
    let page = confirm_page(
        &ctx,
        Area::Menus,
        format!("Delete prompt {name}?"),
        vec!["Menus and numbers must not name it any more.".into()],
        format!("/admin/prompts/{name}/delete"),
        format!("Delete prompt {name}"),
        "/admin/prompts".into(),
    );
    ctx.show(StatusCode::OK, &page)
}

async fn delete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let ctx = Ctx::new(state, &p, &headers);
    let result = async {
        let users = users_of(&ctx.state.store, &name).await?;
        if !users.is_empty() {
            return Err(Failure::invalid(
                "",
                format!(
                    "prompt {name} is used by {}; change them first",
                    users.join(", ")
                ),
            ));
        }
        if !ctx.state.store.delete_prompt(&name).await.map_err(db)? {
            return Err(Failure::NotFound {
                what: "prompt",
                name: name.clone(),
            });
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            tracing::info!(actor = %ctx.actor, prompt = %name, "prompt deleted");
            saved("/admin/prompts", &format!("Prompt {name} deleted."))
        }
        Err(f) => ctx.failure(TITLE, Area::Menus, &f),
    }
}
