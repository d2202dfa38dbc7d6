//! Byte-level checks of a message's head before it is parsed: what the parser would silently
//! forgive or mangle (a bare CR, a NUL, a line without a colon, a header name with control
//! bytes, a doubled From, a `Content-Length: +190`), the request line's shape, its SIP version
//! (`505`), method (`501` for a method we do not know) and Request-URI (`416` for a scheme
//! other than `sip`/`sips`, `400` for `<...>` or a header part), and in requests the shape of
//! From, To, Contact and Via values, unfolded ([`address`]). The parser then sees only heads
//! that passed, so what it makes of them is what the message said.

use super::address;

/// Methods the parser knows (anything else gets `501 Not Implemented`).
const KNOWN_METHODS: [&str; 14] = [
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

/// Headers that may appear once (long name, compact name).
const SINGLE: [(&str, &str); 7] = [
    ("From", "f"),
    ("To", "t"),
    ("Call-ID", "i"),
    ("CSeq", ""),
    ("Max-Forwards", ""),
    ("Content-Type", "c"),
    ("Content-Length", "l"),
];

/// Longest Content-Length we read (a SIP message is at most 65,535 bytes here anyway).
const MAX_CONTENT_LENGTH_DIGITS: usize = 9;

/// What is wrong with a message's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawDefect {
    /// No blank line ends the header section.
    NoEnd,
    Nul,
    BareCr,
    BareLf,
    NotUtf8,
    BadStartLine,
    BadRequestUri,
    /// A header line that neither has a colon nor continues the previous one.
    NoColon,
    BadHeaderName,
    /// A control byte in the value of this header.
    ControlInValue(String),
    Doubled(&'static str),
    BadContentLength,
    /// A SIP version other than 2.0 (`505`).
    Version,
    /// A well-formed method we do not know (`501`).
    UnknownMethod,
    /// A Request-URI whose scheme is not `sip` or `sips` (`416`).
    UnsupportedScheme,
    /// A From, To, Contact or Via value of the wrong shape ([`address`]).
    BadAddress(&'static str),
}

impl RawDefect {
    /// A fixed name of the defect's kind (for rate-limited logs).
    pub fn kind(&self) -> &'static str {
        match self {
            RawDefect::NoEnd => "incomplete message",
            RawDefect::Nul => "NUL in header",
            RawDefect::BareCr => "bare CR",
            RawDefect::BareLf => "bare LF",
            RawDefect::NotUtf8 => "header not UTF-8",
            RawDefect::BadStartLine => "malformed start line",
            RawDefect::BadRequestUri => "malformed Request-URI",
            RawDefect::NoColon => "header line without colon",
            RawDefect::BadHeaderName => "malformed header name",
            RawDefect::ControlInValue(_) => "control character in header",
            RawDefect::Doubled(_) => "doubled header",
            RawDefect::BadContentLength => "malformed Content-Length",
            RawDefect::Version => "unsupported SIP version",
            RawDefect::UnknownMethod => "unknown method",
            RawDefect::UnsupportedScheme => "unsupported URI scheme",
            RawDefect::BadAddress(_) => "malformed address or Via",
        }
    }

    /// The status a request with this defect is answered with.
    pub fn status(&self) -> u16 {
        match self {
            RawDefect::Version => 505,
            RawDefect::UnknownMethod => 501,
            RawDefect::UnsupportedScheme => 416,
            _ => 400,
        }
    }
}

impl std::fmt::Display for RawDefect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RawDefect::NoEnd => write!(f, "Incomplete Message"),
            RawDefect::Nul => write!(f, "NUL In Header"),
            RawDefect::BareCr => write!(f, "Bare CR In Header"),
            RawDefect::BareLf => write!(f, "Bare LF In Header"),
            RawDefect::NotUtf8 => write!(f, "Header Not UTF-8"),
            RawDefect::BadStartLine => write!(f, "Malformed Start Line"),
            RawDefect::BadRequestUri => write!(f, "Malformed Request-URI"),
            RawDefect::NoColon => write!(f, "Header Line Without Colon"),
            RawDefect::BadHeaderName => write!(f, "Malformed Header Name"),
            RawDefect::ControlInValue(h) => write!(f, "Control Character In {h}"),
            RawDefect::Doubled(h) => write!(f, "Doubled {h}"),
            RawDefect::BadContentLength => write!(f, "Malformed Content-Length"),
            RawDefect::Version => write!(f, "Version Not Supported"),
            RawDefect::UnknownMethod => write!(f, "Not Implemented"),
            RawDefect::UnsupportedScheme => write!(f, "Unsupported URI Scheme"),
            RawDefect::BadAddress(h) => write!(f, "Malformed {h}"),
        }
    }
}

/// What the byte checks learnt about a message that passed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub is_request: bool,
    /// Bytes of the start line and headers, up to and including the blank line.
    pub len: usize,
    pub content_length: Option<usize>,
}

/// Where the header section of `bytes` ends (the index just past CRLFCRLF), if it does.
pub fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

/// Checks the head of one message (a datagram, or a frame cut from a stream).
pub fn check(bytes: &[u8]) -> Result<Head, RawDefect> {
    let len = head_end(bytes).ok_or(RawDefect::NoEnd)?;
    let head = &bytes[..len - 4];
    if head.contains(&0) {
        return Err(RawDefect::Nul);
    }
    line_endings(head)?;
    let text = std::str::from_utf8(head).map_err(|_| RawDefect::NotUtf8)?;
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or("");
    let is_request = !start.starts_with("SIP/");
    let mut counts = [0u8; SINGLE.len()];
    let mut content_length = None;
    let mut first = true;
    // The address header or Via being read, unfolded (requests only).
    let mut address: Option<(address::Kind, String)> = None;
    for line in lines {
        if line.starts_with([' ', '\t']) {
            if first {
                return Err(RawDefect::BadStartLine);
            }
            check_value("continuation", line)?;
            if let Some((_, value)) = address.as_mut() {
                value.push(' ');
                value.push_str(line.trim_matches([' ', '\t']));
            }
            continue;
        }
        first = false;
        if let Some((kind, value)) = address.take() {
            check_address(kind, &value)?;
        }
        let (name, value) = line.split_once(':').ok_or(RawDefect::NoColon)?;
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(RawDefect::BadHeaderName);
        }
        check_value(name, value)?;
        if is_request {
            address = address::kind(name).map(|k| (k, value.to_string()));
        }
        if let Some(i) = single_index(name) {
            counts[i] += 1;
            if counts[i] > 1 {
                return Err(RawDefect::Doubled(SINGLE[i].0));
            }
            if SINGLE[i].0 == "Content-Length" {
                content_length = Some(parse_length(value)?);
            }
        }
    }
    if let Some((kind, value)) = address.take() {
        check_address(kind, &value)?;
    }
    if is_request {
        request_line(start)?;
    } else {
        status_line(start)?;
    }
    Ok(Head {
        is_request,
        len,
        content_length,
    })
}

fn check_address(kind: address::Kind, value: &str) -> Result<(), RawDefect> {
    address::check(kind, value).map_err(|_| {
        RawDefect::BadAddress(match kind {
            address::Kind::Single => "From Or To",
            address::Kind::Contact => "Contact",
            address::Kind::Via => "Via",
        })
    })
}

fn line_endings(head: &[u8]) -> Result<(), RawDefect> {
    for (i, b) in head.iter().enumerate() {
        match b {
            b'\r' if head.get(i + 1) != Some(&b'\n') => return Err(RawDefect::BareCr),
            b'\n' if i == 0 || head.get(i - 1) != Some(&b'\r') => return Err(RawDefect::BareLf),
            _ => {}
        }
    }
    Ok(())
}

fn check_value(name: &str, value: &str) -> Result<(), RawDefect> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(RawDefect::ControlInValue(
            name.chars().take(40).collect::<String>(),
        ));
    }
    Ok(())
}

fn single_index(name: &str) -> Option<usize> {
    SINGLE.iter().position(|(long, short)| {
        name.eq_ignore_ascii_case(long) || (!short.is_empty() && name.eq_ignore_ascii_case(short))
    })
}

/// `Content-Length` is 1*DIGIT: no sign, no inner space.
fn parse_length(value: &str) -> Result<usize, RawDefect> {
    let v = value.trim_matches([' ', '\t']);
    if v.is_empty() || v.len() > MAX_CONTENT_LENGTH_DIGITS || !v.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(RawDefect::BadContentLength);
    }
    v.parse().map_err(|_| RawDefect::BadContentLength)
}

/// RFC 3261 token characters.
pub fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// `Method SP Request-URI SP SIP-Version`, single spaces.
fn request_line(start: &str) -> Result<(), RawDefect> {
    let mut parts = start.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RawDefect::BadStartLine);
    };
    if method.is_empty() || !method.bytes().all(is_token) {
        return Err(RawDefect::BadStartLine);
    }
    if uri.is_empty() || !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RawDefect::BadRequestUri);
    }
    version_ok(version)?;
    if !KNOWN_METHODS.contains(&method) {
        return Err(RawDefect::UnknownMethod);
    }
    request_uri(uri)
}

/// `scheme ":" ...` (not `<...>`); `sip:`/`sips:` only (`416`), and without a header part,
/// which a Request-URI may not carry (RFC 3261 §19.1.5).
fn request_uri(uri: &str) -> Result<(), RawDefect> {
    let scheme = uri.split(':').next().unwrap_or("");
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && uri.len() > scheme.len();
    if !scheme_ok {
        return Err(RawDefect::BadRequestUri);
    }
    if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
        return Err(RawDefect::UnsupportedScheme);
    }
    if uri.contains('?') {
        return Err(RawDefect::BadRequestUri);
    }
    Ok(())
}

fn status_line(start: &str) -> Result<(), RawDefect> {
    let mut parts = start.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(RawDefect::BadStartLine);
    };
    version_ok(version)?;
    let ok = code.len() == 3
        && code.bytes().all(|b| b.is_ascii_digit())
        && code
            .bytes()
            .next()
            .is_some_and(|b| (b'1'..=b'6').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(RawDefect::BadStartLine)
    }
}

/// `SIP/1*DIGIT.1*DIGIT` ("SIP" in any case); anything but 2.0 is [`RawDefect::Version`].
fn version_ok(version: &str) -> Result<(), RawDefect> {
    let Some((sip, number)) = version.split_once('/') else {
        return Err(RawDefect::BadStartLine);
    };
    let Some((major, minor)) = number.split_once('.') else {
        return Err(RawDefect::BadStartLine);
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    if !sip.eq_ignore_ascii_case("SIP") || !digits(major) || !digits(minor) {
        return Err(RawDefect::BadStartLine);
    }
    if major.parse::<u16>() == Ok(2) && minor.parse::<u16>() == Ok(0) {
        Ok(())
    } else {
        Err(RawDefect::Version)
    }
}
