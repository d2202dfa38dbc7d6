//! `GET /provision/{file}`: phones that configure themselves over HTTP(S).
//!
//! A phone asks for its own file (Yealink `{mac}.cfg`, Grandstream `cfg{mac}.xml`) with HTTP
//! Basic credentials:
//!
//! - **first fetch**: any user name and a provisioning token (`cfp_…`, made by an admin with
//!   `callfleet provision token add`) as the password. A MAC never seen gets the lowest free
//!   extension of `provisioning.extensions`, a device with HA1 digests of a fresh SIP password,
//!   and its file; at most `provisioning.new_per_source_per_hour` new phones per source address.
//! - **every later fetch**: the MAC as user name and the phone's own provisioning password,
//!   which its first file set. A token never opens a provisioned phone's file, and a MAC alone
//!   opens nothing.
//!
//! No password is stored. Both the phone's SIP password and its provisioning password are
//! HMAC-SHA256 of the phone's random salt (`provisioned_phones.salt`) under a key derived
//! from the cluster secret (`http.secret`), so any node serves the same file and a database
//! dump gives neither. Everything else is refused with 401 (no or wrong credentials), 404 (not
//! a phone's file name), 403, 429 or 503, creates nothing, and is logged once per source
//! address per ten minutes. The pure rules are in [`rules`].

pub mod rules;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use callfleet_store::{Provisioned, ProvisionedPhone, Store};
use callfleet_vocab::now_ms;
use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};

use crate::api::AppState;
use rules::{Decision, ExtensionRange, Family, Gate, Known, Mac, Presented, Refusal};

/// The realm of the Basic challenge.
const CHALLENGE: &str = "Basic realm=\"callfleet provisioning\"";
/// One refusal log line per source per this.
const LOG_EVERY_MS: i64 = 600_000;
/// Extensions tried when another node takes the one picked at the same moment.
const CREATE_TRIES: usize = 5;

/// What [`Provisioning`] is set up with (the node's `[provisioning]` section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Where new phones' extensions come from.
    pub extensions: ExtensionRange,
    /// New phones per source address per hour.
    pub new_per_source_per_hour: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            extensions: ExtensionRange {
                first: 7000,
                last: 7999,
            },
            new_per_source_per_hour: 20,
        }
    }
}

/// The provisioning service of a node: the key passwords derive from (none without a
/// cluster secret: every request is then 404), the policy and the per-source gate.
#[derive(Clone)]
pub struct Provisioning {
    key: Option<Arc<Hmac<Sha256>>>,
    policy: Policy,
    gate: Arc<Mutex<Gate>>,
}

/// What the phones' passwords are derived with, so the secret keys nothing else this way.
const LABEL: &[u8] = b"callfleet phone provisioning key v1";

impl Provisioning {
    /// The service for cluster secret `secret` (trimmed; `None` or empty: off).
    pub fn new(secret: Option<&str>, policy: Policy) -> Provisioning {
        let key = secret.map(str::trim).filter(|s| !s.is_empty()).map(|s| {
            let derived = keyed(s.as_bytes()).chain_update(LABEL).finalize();
            Arc::new(keyed(&derived.into_bytes()))
        });
        Provisioning {
            key,
            policy,
            gate: Arc::new(Mutex::new(Gate::new(
                policy.new_per_source_per_hour,
                LOG_EVERY_MS,
            ))),
        }
    }

    /// The same key with `policy` (and a fresh gate).
    pub fn with_policy(self, policy: Policy) -> Provisioning {
        Provisioning {
            key: self.key,
            policy,
            gate: Arc::new(Mutex::new(Gate::new(
                policy.new_per_source_per_hour,
                LOG_EVERY_MS,
            ))),
        }
    }

    /// `(SIP password, provisioning password)` of phone `mac` with `salt`: 24 and 32 hex
    /// digits of HMACs under the provisioning key. `None` without a key.
    pub fn passwords(&self, mac: &Mac, salt: &str) -> Option<(String, String)> {
        let key = self.key.as_ref()?;
        let derive = |what: &str, len: usize| {
            let mut mac_state = Hmac::clone(key);
            mac_state.update(format!("{what}\n{mac}\n{salt}").as_bytes());
            let mut hex = hex::encode(mac_state.finalize().into_bytes());
            hex.truncate(len);
            hex
        };
        Some((
            derive("sip password", 24),
            derive("provisioning password", 32),
        ))
    }

    fn log_refusal(&self, source: IpAddr, now_ms: i64) -> bool {
        self.gate
            .lock()
            .map(|mut g| g.should_log(source, now_ms))
            .unwrap_or(false)
    }

    fn admit(&self, source: IpAddr, now_ms: i64) -> bool {
        self.gate
            .lock()
            .map(|mut g| g.admit(source, now_ms))
            .unwrap_or(false)
    }

    fn undo(&self, source: IpAddr) {
        if let Ok(mut g) = self.gate.lock() {
            g.undo(source);
        }
    }
}

fn keyed(key: &[u8]) -> Hmac<Sha256> {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

impl std::fmt::Debug for Provisioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioning")
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("policy", &self.policy)
            .finish()
    }
}

/// A new provisioning token: `cfp_` and 64 hex digits (256 random bits).
pub fn new_token() -> String {
    format!("cfp_{}", hex::encode(rand::random::<[u8; 32]>()))
}

/// What is stored of a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The public route (it checks its own credentials).
pub fn routes() -> Router<AppState> {
    Router::new().route("/provision/{file}", get(provision))
}

/// Everything a phone's file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneFile {
    /// The phone.
    pub mac: Mac,
    /// Its device extension (the SIP user and auth name).
    pub extension: String,
    /// The SIP password the device's HA1 digests were made of.
    pub sip_password: String,
    /// Registrars, primary first.
    pub registrars: Vec<SocketAddr>,
    /// Where the phone fetches its file later.
    pub base_url: String,
    /// The phone's own provisioning password (its user name is the MAC).
    pub phone_password: String,
}

#[derive(Template)]
#[template(path = "provision/yealink.cfg", escape = "none")]
struct Yealink<'a> {
    mac: &'a str,
    extension: &'a str,
    display_name: &'a str,
    sip_password: &'a str,
    registrars: &'a [SocketAddr],
    base_url: &'a str,
    phone_password: &'a str,
}

#[derive(Template)]
#[template(path = "provision/grandstream.xml")]
struct Grandstream<'a> {
    mac: &'a str,
    extension: &'a str,
    display_name: &'a str,
    sip_password: &'a str,
    primary: String,
    secondary: String,
    upgrade_via: u8,
    server_path: &'a str,
    phone_password: &'a str,
}

/// The file of `family` for `file`. Yealink's `key = value` format has no escaping, so every
/// value in it is one this module made (digits, hex, addresses, a checked host); the XML is
/// escaped by askama.
pub fn render(family: Family, file: &PhoneFile) -> Result<String, askama::Error> {
    match family {
        Family::Yealink => Yealink {
            mac: file.mac.as_str(),
            extension: &file.extension,
            display_name: &file.extension,
            sip_password: &file.sip_password,
            registrars: &file.registrars,
            base_url: &file.base_url,
            phone_password: &file.phone_password,
        }
        .render(),
        Family::Grandstream => {
            let at = |i: usize| file.registrars.get(i).map(|a| a.to_string());
            let (tls, path) = match file.base_url.split_once("://") {
                Some((scheme, rest)) => (scheme == "https", rest.trim_end_matches('/')),
                None => (false, file.base_url.as_str()),
            };
            Grandstream {
                mac: file.mac.as_str(),
                extension: &file.extension,
                display_name: &file.extension,
                sip_password: &file.sip_password,
                primary: at(0).unwrap_or_default(),
                secondary: at(1).unwrap_or_default(),
                upgrade_via: if tls { 2 } else { 1 },
                server_path: path,
                phone_password: &file.phone_password,
            }
            .render()
        }
    }
}

async fn provision(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let source = peer
        .map(|Extension(ConnectInfo(a))| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    // A name that does not decode (bad percent-encoding, not UTF-8) is no phone's file either.
    let name = name.map(|Path(n)| n).unwrap_or_default();
    match serve(&state, source, &name, &headers).await {
        Ok(response) => response,
        Err(Failure::Refused(refusal)) => {
            if state.provisioning.log_refusal(source, now_ms()) {
                tracing::warn!(%source, file = %name.escape_debug(), status = refusal.status(), reason = refusal.reason(), "provisioning request refused (further refusals from this source are not logged for ten minutes)");
            }
            refused(refusal)
        }
        Err(Failure::Unavailable(what, e)) => {
            tracing::error!(%source, error = %e, "provisioning: {what}");
            (StatusCode::SERVICE_UNAVAILABLE, "try again later\n").into_response()
        }
    }
}

fn refused(refusal: Refusal) -> Response {
    let status =
        StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        format!("{}\n", status.canonical_reason().unwrap_or("")),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(CHALLENGE),
        );
    }
    response
}

enum Failure {
    Refused(Refusal),
    Unavailable(&'static str, Box<dyn std::error::Error + Send + Sync>),
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Self {
        Failure::Refused(r)
    }
}

fn db(e: callfleet_store::StoreError) -> Failure {
    Failure::Unavailable("database", Box::new(e))
}

async fn serve(
    state: &AppState,
    source: IpAddr,
    name: &str,
    headers: &HeaderMap,
) -> Result<Response, Failure> {
    let prov = &state.provisioning;
    if prov.key.is_none() {
        return Err(Refusal::NotAPhoneFile.into());
    }
    let (family, mac) = rules::phone_file(name).ok_or(Refusal::NotAPhoneFile)?;
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let presented = rules::presented(authorization, &mac);
    if presented == Presented::Nothing {
        return Err(Refusal::NoCredentials.into());
    }
    let store = &state.store;
    let phone = store.provisioned_phone(mac.as_str()).await.map_err(db)?;
    let token = match &presented {
        Presented::Token(t) => store
            .provisioning_token_by_hash(&token_hash(t))
            .await
            .map_err(db)?,
        _ => None,
    };
    let known = Known {
        phone_password: phone
            .as_ref()
            .and_then(|p| prov.passwords(&mac, &p.salt))
            .map(|(_, own)| own),
        token,
    };
    let base_url = rules::base_url(
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
        state.tls,
    );
    let phone = match rules::decide(&presented, &known) {
        Decision::Refuse(r) => return Err(r.into()),
        Decision::Serve => match phone {
            Some(p) => p,
            None => return Err(Refusal::BadCredentials.into()),
        },
        Decision::Create { token } => {
            if base_url.is_none() {
                return Err(Refusal::BadHost.into());
            }
            create(state, source, family, &mac, &token).await?
        }
    };
    let base_url = base_url.ok_or(Refusal::BadHost)?;
    let (sip_password, phone_password) = prov
        .passwords(&mac, &phone.salt)
        .ok_or(Refusal::NotAPhoneFile)?;
    let file = PhoneFile {
        registrars: rules::registrars(&mac, &state.api.registrars(), family.registrar_slots()),
        mac,
        extension: phone.extension.clone(),
        sip_password,
        base_url,
        phone_password,
    };
    let body = render(family, &file).map_err(|e| Failure::Unavailable("render", Box::new(e)))?;
    if let Err(e) = store.touch_provisioned_phone(&phone.mac, now_ms()).await {
        tracing::warn!(mac = %phone.mac, error = %e, "provisioning: could not record the fetch");
    }
    tracing::info!(%source, mac = %phone.mac, extension = %phone.extension, family = family.as_str(), registrars = file.registrars.len(), "phone configuration served");
    let content_type = HeaderValue::from_static(family.content_type());
    let no_store = HeaderValue::from_static("no-store");
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, no_store),
        ],
        body,
    )
        .into_response())
}

/// Makes the device and the phone row for `mac`, within the per-source limit, on the lowest
/// free extension (the next one when another node takes it at the same moment).
async fn create(
    state: &AppState,
    source: IpAddr,
    family: Family,
    mac: &Mac,
    token: &str,
) -> Result<ProvisionedPhone, Failure> {
    let prov = &state.provisioning;
    if !prov.admit(source, now_ms()) {
        return Err(Refusal::TooMany.into());
    }
    let made = create_admitted(state, &state.store, source, family, mac, token).await;
    if made.is_err() {
        prov.undo(source);
    }
    made
}

async fn create_admitted(
    state: &AppState,
    store: &Store,
    source: IpAddr,
    family: Family,
    mac: &Mac,
    token: &str,
) -> Result<ProvisionedPhone, Failure> {
    let salt = hex::encode(rand::random::<[u8; 16]>());
    let (sip_password, _) = state
        .provisioning
        .passwords(mac, &salt)
        .ok_or(Refusal::NotAPhoneFile)?;
    for _ in 0..CREATE_TRIES {
        let taken = store
            .devices()
            .await
            .map_err(db)?
            .into_iter()
            .map(|d| d.extension)
            .collect();
        let ext = rules::free_extension(state.provisioning.policy.extensions, &taken)
            .ok_or(Refusal::RangeFull)?;
        let device = state
            .api
            .device_credentials(&ext, &format!("provisioned {mac}"), &sip_password)
            .map_err(|e| Failure::Unavailable("device credentials", Box::new(e)))?;
        let now = now_ms();
        let phone = ProvisionedPhone {
            mac: mac.as_str().to_owned(),
            extension: ext.clone(),
            family: family.as_str().to_owned(),
            salt: salt.clone(),
            source: source.to_string(),
            token_name: token.to_owned(),
            created_at_ms: now,
            fetched_at_ms: now,
        };
        match store.provision_phone(&phone, &device).await.map_err(db)? {
            Provisioned::Created => {
                tracing::info!(%source, %mac, extension = %ext, family = family.as_str(), token, "new phone provisioned");
                return Ok(phone);
            }
            // Another node provisioned this MAC at the same moment: its file is not ours.
            Provisioned::MacTaken => return Err(Refusal::AlreadyProvisioned.into()),
            Provisioned::ExtensionTaken => continue,
        }
    }
    Err(Refusal::RangeFull.into())
}

#[cfg(test)]
mod tests;
