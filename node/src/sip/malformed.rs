//! Bad input from the network: checks a parsed request for what RFC 3261 requires of every
//! request, and answers `400 Bad Request` to bytes that do not parse, where the headers needed
//! for a response can still be found.

use std::fmt::Write as _;
use std::net::SocketAddr;

use rsipstack::sip::{Header, Method, Request};

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
    let text = std::str::from_utf8(raw).ok()?;
    let head = text.split("\r\n\r\n").next()?;
    let mut lines = head.split("\r\n");
    let start = lines.next()?;
    let mut words = start.split(' ');
    let method = words.next()?;
    if method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || method == "ACK"
        || !start.ends_with("SIP/2.0")
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
        let (name, value) = line.split_once(':')?;
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
    let _ = write!(out, "SIP/2.0 400 {}\r\n", sanitize(reason));
    for (name, _, value) in want {
        let value = value?;
        if value.is_empty() {
            return None;
        }
        if name == "Via" {
            let _ = write!(out, "Via: {value};received={}\r\n", src.ip());
        } else {
            let _ = write!(out, "{name}: {value}\r\n");
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out.into_bytes())
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
