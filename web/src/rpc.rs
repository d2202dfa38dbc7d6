//! XML-RPC at `POST /RPC2`: the [`crm`] operations for CRMs and scripts, with
//! the `dxr` crate's types for the XML and `dxr_server` for the dispatch.
//!
//! Access level: **tune** (CRM tokens, admins, nodes) for the whole endpoint, since one
//! endpoint carries read and tuning methods alike.
//!
//! | method | params | returns |
//! |--------|--------|---------|
//! | `queue.list` | — | array of struct `{name, strategy, members}` |
//! | `queue.stats` | queue | struct `{queue, waiting, longest_wait_s, agents_available, agents_busy, agents_paused, serving}` |
//! | `agent.status` | ext | struct (see [`AgentStatus`](crate::crm::AgentStatus)) |
//! | `agent.login` | ext, device | `true` |
//! | `agent.logout` | ext | `true` |
//! | `agent.pause` | ext, paused (boolean) | `true` |
//! | `agent.setTier` | ext, queue, tier (int) | `true` |
//! | `agent.setDailyLimit` | ext, limit (int or nil) | `true` |
//! | `agent.recordSale` | ext | int: today's count |
//! | `vip.add` | number, queue | boolean: added (false: was one already) |
//! | `vip.remove` | number, queue | boolean: removed (false: was none) |
//! | `call.list` | — | array of struct (see [`CallInfo`](crate::crm::CallInfo)) |
//! | `department.list` | — | array of struct `{name, queues, created_at_ms}` |
//! | `department.set` | name, array of queue names | the department's struct |
//! | `department.remove` | name | boolean: removed (false: was none) |
//! | `system.listMethods` | — | array of method names |
//!
//! Parameters that name things (`ext`, `device`, `queue`, `number`) are `<string>`, an
//! untyped `<value>`, or an integer (`<int>`, `<i4>`, `<i8>`), as clients in many languages
//! send a digit string such as `2001`: an integer is taken as the text it was written with, so
//! `<int>0100</int>` names `0100` and `<int>+4930999</int>` names `+4930999` (Perl's
//! `RPC::XML` sends both so). Names are then checked by the one rule of [`crate::names`].
//! `paused` is `<boolean>`, `tier` and `limit` `<int>`/`<i4>` (`limit` also `<nil/>`); nothing
//! else is coerced: a parameter of another type, or a wrong number of parameters, is fault 1
//! naming the parameter. Every failure is a fault (HTTP 200) with the stable codes of
//! [`CrmError::code`](crate::crm::CrmError::code), plus [`FAULT_MALFORMED`] and
//! [`FAULT_UNKNOWN_METHOD`]. Absent optional struct members (no daily limit, no device) are
//! left out of the struct.
//!
//! The dispatch is `dxr_server`'s: each method is a [`dxr_server::Handler`] holding the store,
//! and the route hands the call to [`dxr_server::server`] over the node's axum router (the
//! "bring your own server" entry point, so the route sits behind the same access guard and body
//! limit as every other route). Before that the route reads the body itself: a body that is too
//! large, not UTF-8 or not a method call, and an unknown method name, get our own faults with a
//! short message, where `dxr_server` would answer with HTTP-like codes and echo the body.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use callfleet_store::Store;
use dxr::{Fault, FaultResponse, MethodCall, Value};
use dxr_server::{Handler, HandlerMap, HandlerResult};

use crate::api::AppState;
use crate::crm::{self, CrmError};
use crate::reports::departments;

/// Largest request body accepted, in bytes; a larger one is a [`FAULT_MALFORMED`] fault.
pub const MAX_BODY: usize = 64 * 1024;

/// Fault code: the body is not an XML-RPC method call (not UTF-8, not XML, too large).
pub const FAULT_MALFORMED: i32 = 9;

/// Fault code: no method has this name.
pub const FAULT_UNKNOWN_METHOD: i32 = 10;

/// The methods served, as `system.listMethods` lists them.
pub const METHODS: [&str; 16] = [
    "queue.list",
    "queue.stats",
    "agent.status",
    "agent.login",
    "agent.logout",
    "agent.pause",
    "agent.setTier",
    "agent.setDailyLimit",
    "agent.recordSale",
    "vip.add",
    "vip.remove",
    "call.list",
    "department.list",
    "department.set",
    "department.remove",
    "system.listMethods",
];

/// The parameters of each method, by name, in order ([`params_of`]).
const SIGNATURES: [(&str, &[&str]); 16] = [
    ("queue.list", &[]),
    ("queue.stats", &["queue"]),
    ("agent.status", &["ext"]),
    ("agent.login", &["ext", "device"]),
    ("agent.logout", &["ext"]),
    ("agent.pause", &["ext", "paused"]),
    ("agent.setTier", &["ext", "queue", "tier"]),
    ("agent.setDailyLimit", &["ext", "limit"]),
    ("agent.recordSale", &["ext"]),
    ("vip.add", &["number", "queue"]),
    ("vip.remove", &["number", "queue"]),
    ("call.list", &[]),
    ("department.list", &[]),
    ("department.set", &["name", "queues"]),
    ("department.remove", &["name"]),
    ("system.listMethods", &[]),
];

/// The parameters that name things: an integer there is taken as its text.
const NAME_PARAMS: [&str; 5] = ["ext", "device", "queue", "number", "name"];

/// The parameter names of `method`, in order; `None` for an unknown method.
pub fn params_of(method: &str) -> Option<&'static [&'static str]> {
    SIGNATURES
        .iter()
        .find(|(name, _)| *name == method)
        .map(|(_, params)| *params)
}

/// The XML-RPC route, `POST /RPC2` (level **tune**).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/RPC2", post(rpc2))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// Why a call failed before or inside an operation.
#[derive(Debug, thiserror::Error)]
enum CallError {
    /// The body is not an XML-RPC method call.
    #[error("malformed request: {reason}")]
    Malformed { reason: &'static str },
    /// No such method.
    #[error("unknown method {name:?}")]
    UnknownMethod { name: String },
    /// A wrong number of parameters.
    #[error("{method} takes {} parameter(s) ({}), got {got}", expected.len(), expected.join(", "))]
    Arity {
        method: &'static str,
        expected: &'static [&'static str],
        got: usize,
    },
    /// The operation refused or failed.
    #[error(transparent)]
    Crm(#[from] CrmError),
}

impl CallError {
    fn fault(&self) -> Fault {
        let code = match self {
            Self::Malformed { .. } => FAULT_MALFORMED,
            Self::UnknownMethod { .. } => FAULT_UNKNOWN_METHOD,
            Self::Arity { .. } => 1,
            Self::Crm(e) => e.code(),
        };
        Fault::new(code, self.to_string())
    }
}

/// One XML-RPC method, as `dxr_server` dispatches it.
struct Method {
    name: &'static str,
    store: Store,
}

#[dxr_server::async_trait]
impl Handler for Method {
    async fn handle(&self, params: &[Value], _headers: HeaderMap) -> HandlerResult {
        dispatch(&self.store, self.name, params).await.map_err(|e| {
            match &e {
                CallError::Crm(crm) => crm.log("xmlrpc"),
                other => tracing::debug!(error = %other, "XML-RPC call refused"),
            }
            e.fault()
        })
    }
}

/// The method table `/RPC2` dispatches through, one [`Handler`] per name in [`METHODS`].
pub fn handlers(store: &Store) -> HandlerMap {
    std::sync::Arc::new(
        METHODS
            .iter()
            .map(|&name| {
                let method: Box<dyn Handler> = Box::new(Method {
                    name,
                    store: store.clone(),
                });
                (name, method)
            })
            .collect(),
    )
}

async fn rpc2(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let text = match parse(body).and_then(|(text, call)| names_as_text(&text, call)) {
        Ok(text) => text,
        Err(e) => return fault(&e),
    };
    // dxr_server wants the length header; the body is read whole by now, so state it.
    let mut headers = headers;
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(text.len()));
    let (status, response_headers, xml) =
        dxr_server::server(state.rpc.clone(), &text, headers).await;
    if status != StatusCode::OK {
        tracing::error!(%status, "XML-RPC response could not be encoded");
        return (status, response_headers, xml).into_response();
    }
    (status, response_headers, format!("{XML_DECLARATION}{xml}")).into_response()
}

/// What every XML-RPC answer starts with.
const XML_DECLARATION: &str = "<?xml version=\"1.0\"?>\n";

/// A fault of our own, for a request refused before dispatch.
fn fault(e: &CallError) -> Response {
    tracing::debug!(error = %e, "XML-RPC request refused");
    match (FaultResponse { fault: e.fault() }).to_xml() {
        Ok(xml) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"))],
            format!("{XML_DECLARATION}{xml}"),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode an XML-RPC fault");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The body as text, and its method call, once it is a method call of a known method.
fn parse(body: Result<Bytes, BytesRejection>) -> Result<(String, MethodCall<'static>), CallError> {
    let body = body.map_err(|rejection| CallError::Malformed {
        reason: if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "body larger than 64 KiB"
        } else {
            "cannot read the body"
        },
    })?;
    let text = String::from_utf8(body.to_vec()).map_err(|_| CallError::Malformed {
        reason: "body is not UTF-8",
    })?;
    let call = MethodCall::from_xml(&text).map_err(|_| CallError::Malformed {
        reason: "body is not an XML-RPC methodCall",
    })?;
    if !METHODS.contains(&call.name.as_ref()) {
        return Err(CallError::UnknownMethod {
            name: call.name.chars().take(crm::MAX_NAME_LEN).collect(),
        });
    }
    let call = MethodCall {
        name: std::borrow::Cow::Owned(call.name.into_owned()),
        params: call.params,
    };
    Ok((text, call))
}

/// The call to dispatch: `text` as it came, or, when a parameter that names something was
/// sent as an integer, the same call with that parameter a string of the integer's text as
/// written (`<int>0100</int>` is `0100`, not `100`).
fn names_as_text(text: &str, call: MethodCall<'static>) -> Result<String, CallError> {
    let names = params_of(&call.name).unwrap_or(&[]);
    let is_name = |i: usize| names.get(i).is_some_and(|p| NAME_PARAMS.contains(p));
    let integer_name = call
        .params
        .iter()
        .enumerate()
        .any(|(i, v)| is_integer(v) && is_name(i));
    if !integer_name {
        return Ok(text.to_owned());
    }
    let written = integer_texts(text).map_err(|reason| CallError::Malformed { reason })?;
    let params = call
        .params
        .into_iter()
        .enumerate()
        .map(|(i, v)| match written.get(i) {
            Some(Some(digits)) if is_integer(&v) && is_name(i) => Value::String(digits.clone()),
            _ => v,
        })
        .collect();
    MethodCall {
        name: call.name,
        params,
    }
    .to_xml()
    .map_err(|_| CallError::Malformed {
        reason: "body is not an XML-RPC methodCall",
    })
}

fn is_integer(v: &Value) -> bool {
    matches!(v, Value::Integer(_) | Value::Long(_))
}

/// For each parameter of a method call, the text of its value when it is an integer
/// (`<int>`, `<i4>`, `<i8>`), trimmed, as written (`None` for other values, and for an
/// integer written with a character reference, which is then read as its number).
pub fn integer_texts(xml: &str) -> Result<Vec<Option<String>>, &'static str> {
    use quick_xml::events::Event;
    const BAD: &str = "body is not an XML-RPC methodCall";
    const AT_VALUE: [&str; 4] = ["methodCall", "params", "param", "value"];
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    // Per parameter: its integer's text so far, and whether it can be kept as written.
    let mut texts: Vec<(Option<String>, bool)> = Vec::new();
    // Each event consumes input, and the body is at most 64 KiB.
    loop {
        let event = reader.read_event().map_err(|_| BAD)?;
        let at_integer = path.len() == 5
            && matches!(path[4].as_str(), "int" | "i4" | "i8")
            && path[..4].iter().map(String::as_str).eq(AT_VALUE);
        match event {
            Event::Start(e) => {
                let name = e.name().as_ref().to_owned();
                if path.len() == 2 && name == "param" {
                    texts.push((None, true));
                }
                path.push(name);
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) if at_integer => {
                if let Some((text, _)) = texts.last_mut() {
                    text.get_or_insert_with(String::new).push_str(t.as_ref());
                }
            }
            Event::GeneralRef(_) if at_integer => {
                if let Some((_, keep)) = texts.last_mut() {
                    *keep = false;
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(texts
        .into_iter()
        .map(|(text, keep)| text.filter(|_| keep).map(|t| t.trim().to_owned()))
        .collect())
}

/// Runs one method call: strict parameter mapping, then the operation.
async fn dispatch(store: &Store, name: &str, params: &[Value]) -> Result<Value, CallError> {
    let Some((method, expected)) = SIGNATURES.iter().find(|(m, _)| *m == name).copied() else {
        return Err(CallError::UnknownMethod {
            name: name.chars().take(crm::MAX_NAME_LEN).collect(),
        });
    };
    if params.len() != expected.len() {
        return Err(CallError::Arity {
            method,
            expected,
            got: params.len(),
        });
    }
    let p = Params { params };
    let value = match method {
        "queue.list" => to_value(&crm::queue_list(store).await?),
        "queue.stats" => to_value(&crm::queue_stats(store, &p.name(0, "queue")?).await?),
        "agent.status" => to_value(&crm::agent_status(store, &p.name(0, "ext")?).await?),
        "agent.login" => {
            let (ext, device) = (p.name(0, "ext")?, p.name(1, "device")?);
            crm::agent_login(store, &ext, &device).await?;
            Value::Boolean(true)
        }
        "agent.logout" => {
            crm::agent_logout(store, &p.name(0, "ext")?).await?;
            Value::Boolean(true)
        }
        "agent.pause" => {
            let (ext, paused) = (p.name(0, "ext")?, p.boolean(1, "paused")?);
            crm::agent_pause(store, &ext, paused).await?;
            Value::Boolean(true)
        }
        "agent.setTier" => {
            let (ext, queue) = (p.name(0, "ext")?, p.name(1, "queue")?);
            let tier = p.int(2, "tier")?;
            crm::agent_set_tier(store, &ext, &queue, tier).await?;
            Value::Boolean(true)
        }
        "agent.setDailyLimit" => {
            let (ext, limit) = (p.name(0, "ext")?, p.int_or_nil(1, "limit")?);
            crm::agent_set_daily_limit(store, &ext, limit).await?;
            Value::Boolean(true)
        }
        "agent.recordSale" => int_value(crm::agent_record_sale(store, &p.name(0, "ext")?).await?),
        "vip.add" => {
            let (number, queue) = (p.name(0, "number")?, p.name(1, "queue")?);
            Value::Boolean(crm::vip_add(store, &number, &queue).await?)
        }
        "vip.remove" => {
            let (number, queue) = (p.name(0, "number")?, p.name(1, "queue")?);
            Value::Boolean(crm::vip_remove(store, &number, &queue).await?)
        }
        "call.list" => to_value(&crm::call_list(store).await?),
        "department.list" => to_value(&departments::list(store).await?),
        "department.set" => {
            let (name, queues) = (p.name(0, "name")?, p.names(1, "queues")?);
            to_value(&departments::set(store, &name, &queues).await?)
        }
        "department.remove" => {
            Value::Boolean(departments::remove(store, &p.name(0, "name")?).await?)
        }
        _ => Value::Array(
            METHODS
                .iter()
                .map(|m| Value::String((*m).to_owned()))
                .collect(),
        ),
    };
    Ok(value)
}

/// A call's parameters, read strictly by position.
struct Params<'a> {
    params: &'a [Value],
}

impl Params<'_> {
    /// A parameter that names something: a string, or an integer (its text; integers sent
    /// with a sign or leading zeros reach here as strings of what was written).
    fn name(&self, i: usize, name: &'static str) -> Result<String, CrmError> {
        match self.params.get(i) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Integer(n)) => Ok(n.to_string()),
            Some(Value::Long(n)) => Ok(n.to_string()),
            _ => Err(CrmError::bad(name, "must be a string or an integer")),
        }
    }

    /// An array of names (strings).
    fn names(&self, i: usize, name: &'static str) -> Result<Vec<String>, CrmError> {
        match self.params.get(i) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(CrmError::bad(name, "must be an array of strings")),
                })
                .collect(),
            _ => Err(CrmError::bad(name, "must be an array of strings")),
        }
    }

    fn boolean(&self, i: usize, name: &'static str) -> Result<bool, CrmError> {
        match self.params.get(i) {
            Some(Value::Boolean(b)) => Ok(*b),
            _ => Err(CrmError::bad(name, "must be a boolean")),
        }
    }

    fn int(&self, i: usize, name: &'static str) -> Result<i64, CrmError> {
        match self.params.get(i) {
            Some(Value::Integer(n)) => Ok(i64::from(*n)),
            _ => Err(CrmError::bad(name, "must be an int")),
        }
    }

    fn int_or_nil(&self, i: usize, name: &'static str) -> Result<Option<i64>, CrmError> {
        match self.params.get(i) {
            Some(Value::Integer(n)) => Ok(Some(i64::from(*n))),
            Some(Value::Nil) => Ok(None),
            _ => Err(CrmError::bad(name, "must be an int, or nil for no limit")),
        }
    }
}

/// An integer result: `<int>` when it fits 32 bits (every count and duration here does),
/// else a `<double>`.
fn int_value(n: i64) -> Value {
    i32::try_from(n).map_or_else(|_| Value::Double(n as f64), Value::Integer)
}

/// A result struct or array as XML-RPC, through its JSON form so both APIs show the same
/// fields: `null` members are left out of structs (and are `<nil/>` elsewhere).
fn to_value<T: serde::Serialize>(result: &T) -> Value {
    match serde_json::to_value(result) {
        Ok(json) => json_to_value(json),
        Err(e) => {
            // Our result types are plain structs of strings, numbers and booleans.
            tracing::error!(error = %e, "cannot encode an XML-RPC result");
            Value::Nil
        }
    }
}

fn json_to_value(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Boolean(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => int_value(i),
            None => Value::Double(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(items) => {
            Value::Array(items.into_iter().map(json_to_value).collect())
        }
        serde_json::Value::Object(members) => Value::Struct(
            members
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, json_to_value(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

#[cfg(test)]
mod tests;
