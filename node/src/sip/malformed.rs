//! Bad input from the network: byte checks before parsing ([`raw`]), what RFC 3261 requires
//! of every request ([`check_request`]), what this node accepts ([`check_policy`]: URI
//! schemes, extensions, body types, identifier lengths), and `400`s (or `501`/`505`) built
//! from the raw bytes of a message that does not parse, where the headers a response needs
//! can be found and copied safely.

use std::fmt::Write as _;
use std::net::SocketAddr;

use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Header, Method, Request, Scheme, Version};

pub mod address;
pub mod raw;

/// Longest Call-ID accepted (longer ones never reach the call table, the API, CDRs or logs).
pub const MAX_CALL_ID: usize = 256;
/// Longest From or To tag and Via branch accepted.
pub const MAX_TAG: usize = 128;
/// Longest Request-URI, From, To or Contact value accepted.
pub const MAX_URI: usize = 1024;

/// What is wrong with a request that parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Defect {
    Missing(&'static str),
    CseqMismatch,
    TruncatedBody { declared: usize, received: usize },
}

impl std::fmt::Display for Defect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Defect::Missing(h) => write!(f, "Missing {h}"),
            Defect::CseqMismatch => write!(f, "CSeq method does not match"),
            Defect::TruncatedBody { declared, received } => {
                write!(
                    f,
                    "Body shorter than Content-Length ({received} < {declared})"
                )
            }
        }
    }
}

/// Checks the headers every request must carry and that a datagram held the whole body.
pub fn check_request(req: &Request, raw: &[u8]) -> Result<(), Defect> {
    let (mut via, mut from, mut to, mut call_id, mut cseq) = (false, false, false, false, None);
    let mut content_length = None;
    for h in req.headers.iter() {
        match h {
            Header::Via(_) => via = true,
            Header::From(_) => from = true,
            Header::To(_) => to = true,
            Header::CallId(c) => call_id = !c.value().trim().is_empty(),
            Header::CSeq(c) => cseq = Some(c.value().to_string()),
            Header::ContentLength(l) => content_length = Some(l.value().trim().to_string()),
            _ => {}
        }
    }
    for (present, name) in [
        (via, "Via"),
        (from, "From"),
        (to, "To"),
        (call_id, "Call-ID"),
    ] {
        if !present {
            return Err(Defect::Missing(name));
        }
    }
    let cseq = cseq.ok_or(Defect::Missing("CSeq"))?;
    let mut parts = cseq.split_whitespace();
    let seq_ok = parts.next().is_some_and(|n| n.parse::<u32>().is_ok());
    let method_ok = parts
        .next()
        .and_then(|m| m.parse::<Method>().ok())
        .is_some_and(|m| m == req.method);
    if !seq_ok || !method_ok {
        return Err(Defect::CseqMismatch);
    }
    if let Some(cl) = content_length {
        let declared: usize = cl
            .parse()
            .map_err(|_| Defect::Missing("valid Content-Length"))?;
        let received = body_len(raw);
        if received < declared {
            return Err(Defect::TruncatedBody { declared, received });
        }
    }
    Ok(())
}

fn body_len(raw: &[u8]) -> usize {
    raw.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| raw.len() - (i + 4))
        .unwrap_or(0)
}

/// Builds `400 Bad Request` for bytes that did not parse, if they still look like a request
/// with the headers a response needs (Via, From, To, Call-ID, CSeq). ACKs get no response.
pub fn bad_request_for_raw(raw: &[u8], src: SocketAddr, reason: &str) -> Option<Vec<u8>> {
    reply_for_raw(raw, src, 400, reason, None)
}

/// Builds a response with `code` for a request known only by its bytes (see
/// [`bad_request_for_raw`]), with one extra header. Nothing is copied that holds a control
/// character: such a request gets no response.
pub fn reply_for_raw(
    raw: &[u8],
    src: SocketAddr,
    code: u16,
    reason: &str,
    extra: Option<(&str, &str)>,
) -> Option<Vec<u8>> {
    let end = raw::head_end(raw).unwrap_or(raw.len());
    let text = std::str::from_utf8(raw.get(..end)?).ok()?;
    let head = text.split("\r\n\r\n").next()?;
    let mut lines = head.split("\r\n");
    let start = lines.next()?;
    let mut words = start.split(' ');
    let method = words.next()?;
    // The last word, even when spaces follow it (a request line with trailing white space).
    let version = start.split_whitespace().last().unwrap_or("");
    if method.is_empty()
        || !method.bytes().all(raw::is_token)
        || method == "ACK"
        || !version
            .get(..4)
            .is_some_and(|v| v.eq_ignore_ascii_case("SIP/"))
    {
        return None;
    }
    let mut want: [(&str, &str, Option<&str>); 5] = [
        ("Via", "v", None),
        ("From", "f", None),
        ("To", "t", None),
        ("Call-ID", "i", None),
        ("CSeq", "", None),
    ];
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        for slot in want.iter_mut() {
            if slot.2.is_none()
                && (name.eq_ignore_ascii_case(slot.0)
                    || (!slot.1.is_empty() && name.eq_ignore_ascii_case(slot.1)))
            {
                slot.2 = Some(value.trim());
            }
        }
    }
    let mut out = String::with_capacity(400);
    let _ = write!(out, "SIP/2.0 {code} {}\r\n", sanitize(reason));
    for (name, _, value) in want {
        let value = value?;
        if value.is_empty() || value.chars().any(char::is_control) {
            return None;
        }
        if name == "Via" {
            let _ = write!(out, "Via: {value};received={}\r\n", src.ip());
        } else {
            let _ = write!(out, "{name}: {value}\r\n");
        }
    }
    if let Some((name, value)) = extra {
        let _ = write!(out, "{name}: {}\r\n", sanitize(value));
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out.into_bytes())
}

/// A request refused by [`check_policy`]: the status, its reason phrase, and a header the
/// response must carry (`Unsupported`, `Accept`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
    pub header: Option<(&'static str, String)>,
}

impl Refusal {
    fn new(status: u16, reason: &'static str) -> Refusal {
        Refusal {
            status,
            reason,
            header: None,
        }
    }
    fn with(mut self, name: &'static str, value: impl Into<String>) -> Refusal {
        self.header = Some((name, value.into()));
        self
    }
}

/// What this node accepts of a request that is well-formed: SIP 2.0, a `sip:`/`sips:`
/// Request-URI (`416`), identifiers of sane length, no extension it must support (`420`),
/// an SDP body (`415`) it may answer with SDP (`406`), a usable Contact in an INVITE, and SIP
/// URIs in a REGISTER's To and From.
pub fn check_policy(req: &Request) -> Result<(), Refusal> {
    if req.version != Version::V2 {
        return Err(Refusal::new(505, "Version Not Supported"));
    }
    if !is_sip(req.uri.scheme.as_ref()) {
        return Err(Refusal::new(416, "Unsupported URI Scheme"));
    }
    identifiers(req)?;
    if !matches!(req.method, Method::Ack | Method::Cancel) {
        let required = list(req, |h| match h {
            Header::Require(r) => Some(r.value()),
            _ => None,
        });
        if !required.is_empty() {
            return Err(Refusal::new(420, "Bad Extension").with("Unsupported", required.join(", ")));
        }
    }
    match req.method {
        Method::Invite => invite_policy(req),
        Method::Register => register_policy(req),
        _ => Ok(()),
    }
}

fn is_sip(scheme: Option<&Scheme>) -> bool {
    matches!(scheme, None | Some(Scheme::Sip) | Some(Scheme::Sips))
}

/// The comma-separated items of every header `pick` selects.
fn list<'a>(req: &'a Request, pick: impl Fn(&'a Header) -> Option<&'a str>) -> Vec<&'a str> {
    req.headers
        .iter()
        .filter_map(pick)
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

fn identifiers(req: &Request) -> Result<(), Refusal> {
    let bad = |reason| Err(Refusal::new(400, reason));
    let call_id = super::front::call_id(req).unwrap_or("");
    if call_id.len() > MAX_CALL_ID {
        return bad("Call-ID Too Long");
    }
    if !call_id.bytes().all(|b| b.is_ascii_graphic()) {
        return bad("Malformed Call-ID");
    }
    if req.uri.to_string().len() > MAX_URI {
        return bad("Request-URI Too Long");
    }
    let long_value = req.headers.iter().any(|h| match h {
        Header::From(v) => v.value().len() > MAX_URI,
        Header::To(v) => v.value().len() > MAX_URI,
        Header::Contact(v) => v.value().len() > MAX_URI,
        _ => false,
    });
    if long_value {
        return bad("Header Too Long");
    }
    let tags = [
        req.from_header().ok().and_then(|f| f.tag().ok().flatten()),
        req.to_header().ok().and_then(|t| t.tag().ok().flatten()),
    ];
    for tag in tags.iter().flatten() {
        let t = tag.value();
        if t.len() > MAX_TAG || !t.bytes().all(raw::is_token) {
            return bad("Malformed Tag");
        }
    }
    let branch = req
        .via_header()
        .ok()
        .and_then(|v| v.typed().ok())
        .and_then(|v| v.branch().map(|b| b.to_string()));
    if branch.is_some_and(|b| b.len() > MAX_TAG + 16) {
        return bad("Branch Too Long");
    }
    Ok(())
}

fn invite_policy(req: &Request) -> Result<(), Refusal> {
    let contact = req
        .contact_header()
        .map_err(|_| Refusal::new(400, "Missing Contact"))?;
    let usable = contact.typed().is_ok_and(|c| {
        is_sip(c.uri.scheme.as_ref()) && !c.uri.host_with_port.to_string().is_empty()
    });
    if !usable {
        return Err(Refusal::new(400, "Malformed Contact"));
    }
    if !req.body.iter().all(u8::is_ascii_whitespace) {
        let sdp = req.headers.iter().any(|h| match h {
            Header::ContentType(c) => media_type(c.value()) == "application/sdp",
            _ => false,
        });
        if !sdp {
            return Err(
                Refusal::new(415, "Unsupported Media Type").with("Accept", "application/sdp")
            );
        }
        let encoded = list(req, |h| match h {
            Header::ContentEncoding(e) => Some(e.value()),
            _ => None,
        });
        if encoded.iter().any(|e| !e.eq_ignore_ascii_case("identity")) {
            return Err(
                Refusal::new(415, "Unsupported Media Type").with("Accept-Encoding", "identity")
            );
        }
    }
    let accept: Vec<&Header> = req
        .headers
        .iter()
        .filter(|h| matches!(h, Header::Accept(_)))
        .collect();
    if !accept.is_empty() {
        let takes_sdp = list(req, |h| match h {
            Header::Accept(a) => Some(a.value()),
            _ => None,
        })
        .iter()
        .any(|item| accepts_sdp(item));
        if !takes_sdp {
            return Err(Refusal::new(406, "Not Acceptable").with("Accept", "application/sdp"));
        }
    }
    Ok(())
}

/// `type/subtype` of a media type, lowercase, without parameters.
fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether one Accept item admits `application/sdp` (and is not weighted `q=0`).
fn accepts_sdp(item: &str) -> bool {
    let ty = media_type(item);
    let refused = item.split(';').skip(1).any(|p| {
        let p: String = p.chars().filter(|c| !c.is_whitespace()).collect();
        p.eq_ignore_ascii_case("q=0")
            || p.eq_ignore_ascii_case("q=0.0")
            || p.eq_ignore_ascii_case("q=0.000")
    });
    !refused && matches!(ty.as_str(), "application/sdp" | "application/*" | "*/*")
}

fn register_policy(req: &Request) -> Result<(), Refusal> {
    let to_sip = req
        .to_header()
        .ok()
        .and_then(|t| t.typed().ok())
        .is_some_and(|t| matches!(t.uri.scheme, Some(Scheme::Sip) | Some(Scheme::Sips)));
    let from_sip = req
        .from_header()
        .ok()
        .and_then(|f| f.typed().ok())
        .is_some_and(|f| matches!(f.uri.scheme, Some(Scheme::Sip) | Some(Scheme::Sips)));
    if !to_sip || !from_sip {
        return Err(Refusal::new(400, "Address Of Record Is Not A SIP URI"));
    }
    Ok(())
}

/// A reason phrase is one line of printable text.
pub fn sanitize(reason: &str) -> String {
    reason
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect()
}

#[cfg(test)]
mod tests;
