//! Playing recordings and voicemail in the browser: `GET /recordings/{id}/audio` and
//! `GET /voicemails/{id}/audio` (panel users with a session). A file lives on the node that
//! recorded it: that node serves it itself, with HTTP range requests (`206 Partial Content`,
//! `Content-Range`), which is what an HTML5 `<audio>` element asks for; any other node
//! forwards the request, signed with the cluster secret, to the holder's
//! `GET /internal/v1/{recordings|voicemails}/{id}/audio` and streams its answer back.
//!
//! | answer | when |
//! |--------|------|
//! | 200, 206 | the file, whole or the range asked for |
//! | 404 | no such recording or voicemail, or its file is gone |
//! | 416 | a range outside the file |
//! | 503 | the database, or the node holding the file, cannot be reached |

use std::path::PathBuf;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower::ServiceExt as _;
use tower_http::services::ServeFile;

use crate::api::AppState;
use crate::error::ApiError;

/// What is played.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A recorded conversation (`recordings`).
    Recording,
    /// A voicemail message (`voicemails`).
    Voicemail,
}

impl Kind {
    /// The path segment.
    pub fn segment(self) -> &'static str {
        match self {
            Kind::Recording => "recordings",
            Kind::Voicemail => "voicemails",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Recording => "recording",
            Kind::Voicemail => "voicemail",
        }
    }
}

/// Where a file is: its node, its path there, its media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The node holding the file.
    pub node: String,
    /// The file on that node.
    pub path: PathBuf,
    /// Its media type.
    pub mime: &'static str,
}

/// The panel's route: the audio of a recording or a voicemail, from any node.
pub fn page_routes() -> Router<AppState> {
    Router::new()
        .route("/recordings/{id}/audio", get(recording))
        .route("/voicemails/{id}/audio", get(voicemail))
}

/// The route other nodes forward to (signed requests only).
pub fn internal_routes() -> Router<AppState> {
    Router::new()
        .route("/internal/v1/recordings/{id}/audio", get(recording_here))
        .route("/internal/v1/voicemails/{id}/audio", get(voicemail_here))
}

/// The public path of a file's audio, for `<audio src>`.
pub fn audio_href(kind: Kind, id: i64) -> String {
    format!("/{}/{id}/audio", kind.segment())
}

async fn recording(state: State<AppState>, Path(id): Path<i64>, req: Request) -> Response {
    play(state, Kind::Recording, id, req, true).await
}

async fn voicemail(state: State<AppState>, Path(id): Path<i64>, req: Request) -> Response {
    play(state, Kind::Voicemail, id, req, true).await
}

async fn recording_here(state: State<AppState>, Path(id): Path<i64>, req: Request) -> Response {
    play(state, Kind::Recording, id, req, false).await
}

async fn voicemail_here(state: State<AppState>, Path(id): Path<i64>, req: Request) -> Response {
    play(state, Kind::Voicemail, id, req, false).await
}

/// Serves the file when this node holds it; otherwise forwards (when `may_forward`: a
/// forwarded request is never forwarded again).
async fn play(
    State(state): State<AppState>,
    kind: Kind,
    id: i64,
    req: Request,
    may_forward: bool,
) -> Response {
    let located = match locate(&state, kind, id).await {
        Ok(Some(l)) => l,
        Ok(None) => return ApiError::NotFound { what: kind.what() }.into_response(),
        Err(e) => return e.into_response(),
    };
    let me = state.api.node_name();
    if located.node == me {
        return serve(&located, req).await;
    }
    if !may_forward {
        return ApiError::NotFound { what: kind.what() }.into_response();
    }
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let path = format!("/internal/v1/{}/{id}/audio", kind.segment());
    match state.api.forward_get(located.node, path, range).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn locate(state: &AppState, kind: Kind, id: i64) -> Result<Option<Located>, ApiError> {
    let db = |e| ApiError::unavailable("database", e);
    Ok(match kind {
        Kind::Recording => state
            .store
            .recording(id)
            .await
            .map_err(db)?
            .map(|r| Located {
                node: r.node,
                path: PathBuf::from(r.path),
                mime: r.format.mime(),
            }),
        Kind::Voicemail => state
            .store
            .voicemail(id)
            .await
            .map_err(db)?
            .map(|v| Located {
                node: v.node,
                path: PathBuf::from(v.path),
                mime: "audio/wav",
            }),
    })
}

/// The file with range support; 404 when it is gone.
async fn serve(located: &Located, req: Request) -> Response {
    if !located.path.is_file() {
        tracing::warn!(path = %located.path.display(), "audio file missing");
        return ApiError::NotFound { what: "audio file" }.into_response();
    }
    match ServeFile::new(&located.path).oneshot(req).await {
        Ok(resp) => {
            let mut resp = resp.map(axum::body::Body::new);
            let headers = resp.headers_mut();
            if headers.contains_key(header::CONTENT_TYPE) {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(located.mime));
            }
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            );
            resp
        }
        Err(e) => match e {},
    }
}
