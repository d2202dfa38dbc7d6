//! Stateless responses built straight from a parsed request: `100`, `302`, `403`, `503` and
//! `400`, written as bytes without a transaction (the fast path of the UDP front).

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

use rsipstack::sip::{Header, Request};

/// Headers a stateless response copies from the request, in order.
fn copied(header: &Header) -> bool {
    matches!(
        header,
        Header::Via(_) | Header::From(_) | Header::To(_) | Header::CallId(_) | Header::CSeq(_)
    )
}

/// A response under construction.
pub struct Stateless {
    buf: String,
}

impl Stateless {
    /// Starts a response to `req` received from `src`. `to_tag` is added to the To header when the
    /// request's To has no tag yet (final responses need one; `100 Trying` does not).
    pub fn new(
        req: &Request,
        src: SocketAddr,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> Self {
        let mut buf = String::with_capacity(512);
        let _ = write!(buf, "SIP/2.0 {code} {reason}\r\n");
        let mut first_via = true;
        for header in req.headers.iter().filter(|h| copied(h)) {
            match header {
                Header::Via(via) if first_via => {
                    first_via = false;
                    buf.push_str("Via: ");
                    push_top_via(&mut buf, via.value(), src);
                    buf.push_str("\r\n");
                }
                Header::To(to) => {
                    let _ = write!(buf, "{to}");
                    if let Some(tag) = to_tag {
                        if !has_tag(to.value()) {
                            let _ = write!(buf, ";tag={tag}");
                        }
                    }
                    buf.push_str("\r\n");
                }
                other => {
                    let _ = write!(buf, "{other}\r\n");
                }
            }
        }
        Stateless { buf }
    }

    /// Adds one header line.
    pub fn header(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        let _ = write!(self.buf, "{name}: {value}\r\n");
        self
    }

    /// Ends the header section (no body) and returns the bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push_str("Content-Length: 0\r\n\r\n");
        self.buf.into_bytes()
    }
}

fn has_tag(value: &str) -> bool {
    // The tag is a header parameter: after the closing '>' if the URI is bracketed.
    let params = match value.rfind('>') {
        Some(i) => &value[i..],
        None => value,
    };
    params
        .split(';')
        .skip(1)
        .any(|p| p.trim().to_ascii_lowercase().starts_with("tag="))
}

/// Writes the top Via value with `received`/`rport` filled in (RFC 3261 §18.2.1, RFC 3581).
fn push_top_via(buf: &mut String, value: &str, src: SocketAddr) {
    // One Via header may carry several comma-separated values; only the first is ours.
    let (first, rest) = match value.find(',') {
        Some(i) => (&value[..i], Some(&value[i..])),
        None => (value, None),
    };
    let mut parts = first.split(';');
    let sent = parts.next().unwrap_or("").trim();
    buf.push_str(sent);
    let sent_host = sent
        .split_whitespace()
        .nth(1)
        .map(|hp| hp.rsplit_once(':').map(|(h, _)| h).unwrap_or(hp))
        .unwrap_or("");
    let mut received = false;
    for p in parts {
        let p = p.trim();
        if p.eq_ignore_ascii_case("rport") {
            let _ = write!(buf, ";rport={}", src.port());
        } else if p
            .get(..9)
            .is_some_and(|k| k.eq_ignore_ascii_case("received="))
        {
            received = true;
            let _ = write!(buf, ";{p}");
        } else if !p.is_empty() {
            let _ = write!(buf, ";{p}");
        }
    }
    if !received && sent_host.trim_matches(['[', ']']) != src.ip().to_string() {
        let _ = write!(buf, ";received={}", src.ip());
    }
    if let Some(rest) = rest {
        buf.push_str(rest);
    }
}

/// A To-tag that is the same for every retransmission of one request, so a carrier sees one
/// consistent answer.
pub fn stable_tag(call_id: &str, salt: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    call_id.hash(&mut h);
    salt.hash(&mut h);
    format!("cf{:016x}", h.finish())
}

#[cfg(test)]
mod tests;
