//! Credentials never reach a log line. Every formatted line goes through [`line()`] before it is
//! written ([`Stderr`], the log writer), whatever module or crate logged it: at `debug` the SIP
//! stack logs whole messages, digest `Authorization` headers included.
//!
//! Hidden (replaced by `<redacted>`):
//! - the values of headers that carry secrets: `Authorization`, `Proxy-Authorization`,
//!   `Cookie`, `Set-Cookie`, `X-Callfleet-Secret`, `X-CSRF-Token`, to the end of their line
//!   (raw text, or a `Debug`-escaped message where lines end with a literal `\r\n`);
//! - the values of fields named `password`, `passwd`, `secret`, `token`, `pin`, `auth_pass`,
//!   `csrf` (`name=value`, `name: value`, `"name": "value"`), and a quoted digest `response`;
//! - the secret part of CRM API tokens (`cft_<id>_<secret>`);
//! - the PIN of a hot-desk login dialled in one go (`*11*<agent>*<PIN>`, also `%2A`-encoded).
//!
//! The rules look at the text only, so they also cover lines from other crates; they err on
//! the side of hiding more (everything to the end of the line after such a header).

use std::borrow::Cow;
use std::io::{self, Write};

const MASK: &str = "<redacted>";

/// Headers whose whole value is secret.
const HEADERS: [&str; 5] = [
    "authorization",
    "cookie",
    "x-callfleet-secret",
    "x-csrf-token",
    "set-cookie",
];

/// Field names whose value is secret.
const FIELDS: [&str; 7] = [
    "password",
    "passwd",
    "secret",
    "token",
    "pin",
    "auth_pass",
    "csrf",
];

/// `text` with every credential hidden.
pub fn line(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for name in HEADERS {
        out = redact_values(out, name, Extent::Line);
    }
    for name in FIELDS {
        out = redact_values(out, name, Extent::Token);
    }
    out = redact_values(out, "response", Extent::QuotedOnly);
    out = api_tokens(out);
    dialled_pin(out)
}

/// How far a secret value reaches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Extent {
    /// To the end of the line (a header value).
    Line,
    /// A quoted string, or a word.
    Token,
    /// A quoted string only; an unquoted value is left alone.
    QuotedOnly,
}

/// Hides the value after every whole-word, case-insensitive `name` followed by `:` or `=`.
fn redact_values<'a>(text: Cow<'a, str>, name: &str, extent: Extent) -> Cow<'a, str> {
    let lower = text.to_ascii_lowercase();
    let mut spans = vec![];
    let mut from = 0;
    while let Some(found) = lower.get(from..).and_then(|rest| rest.find(name)) {
        let start = from + found;
        from = start + name.len();
        let before = &lower[..start];
        if before.ends_with("::") {
            continue; // a module path (`callfleet::dialplan::pin: message`), not a field
        }
        // A word boundary, or a line break escaped by `Debug` (`\r\nAuthorization: ..`).
        let before_ok = before.ends_with("\\n")
            || before.ends_with("\\r")
            || before
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_');
        if !before_ok {
            continue;
        }
        if let Some(span) = value_span(&text, start + name.len(), extent) {
            from = span.1.max(from);
            spans.push(span);
        }
    }
    if spans.is_empty() {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (a, b) in spans {
        out.push_str(&text[at..a]);
        out.push_str(MASK);
        at = b;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// The byte range of the value after a name ending at `i`, if a separator follows.
fn value_span(text: &str, mut i: usize, extent: Extent) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let at = |i: usize| bytes.get(i).copied();
    // A closing quote of a quoted key (`"password": ..`, `\"password\": ..`).
    if at(i) == Some(b'\\') && at(i + 1) == Some(b'"') {
        i += 2;
    } else if at(i) == Some(b'"') {
        i += 1;
    }
    while at(i) == Some(b' ') {
        i += 1;
    }
    if !matches!(at(i), Some(b':' | b'=')) {
        return None;
    }
    i += 1;
    while at(i) == Some(b' ') {
        i += 1;
    }
    // A quoted value: `"..."`, or `\"...\"` inside a Debug-escaped string.
    let escaped_quote = at(i) == Some(b'\\') && at(i + 1) == Some(b'"');
    if extent != Extent::Line && (escaped_quote || at(i) == Some(b'"')) {
        let open = if escaped_quote { 2 } else { 1 };
        let start = i + open;
        let close = if escaped_quote { "\\\"" } else { "\"" };
        let end = text
            .get(start..)?
            .find(close)
            .map_or(text.len(), |e| start + e);
        return Some((start, end));
    }
    let start = i;
    let end = match extent {
        Extent::QuotedOnly => return None,
        Extent::Line => line_end(text, start),
        Extent::Token => text
            .get(start..)?
            .find(|c: char| c.is_whitespace() || ",;&\"\\)}]".contains(c))
            .map_or(text.len(), |e| start + e),
    };
    (end > start).then_some((start, end))
}

/// Where the line starting its value at `start` ends: a CR or LF, or their `Debug` escapes.
fn line_end(text: &str, start: usize) -> usize {
    let rest = match text.get(start..) {
        Some(r) => r,
        None => return text.len(),
    };
    let real = rest.find(['\r', '\n']);
    let escaped = ["\\r", "\\n"].iter().filter_map(|e| rest.find(e)).min();
    let end = match (real, escaped) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(rest.len()),
    };
    start + end
}

/// `cft_<id>_<secret>` → `cft_<id>_<redacted>`.
fn api_tokens(text: Cow<'_, str>) -> Cow<'_, str> {
    const PREFIX: &str = "cft_";
    if !text.contains(PREFIX) {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest: &str = &text;
    while let Some(p) = rest.find(PREFIX) {
        let after = &rest[p + PREFIX.len()..];
        let id_len = after
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(after.len());
        let secret = &after[id_len..];
        let secret_len = secret
            .strip_prefix('_')
            .map(|s| {
                s.find(|c: char| !c.is_ascii_alphanumeric())
                    .unwrap_or(s.len())
            })
            .unwrap_or(0);
        out.push_str(&rest[..p + PREFIX.len() + id_len]);
        if id_len > 0 && secret_len > 0 {
            out.push('_');
            out.push_str(MASK);
            rest = &secret[1 + secret_len..];
        } else {
            rest = secret;
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Hides the PIN of `*11*<agent>*<PIN>` (and its `%2A`-encoded form).
pub fn dialled_pin(text: Cow<'_, str>) -> Cow<'_, str> {
    let mut text = text;
    for star in ["*", "%2A", "%2a"] {
        let code = format!("{star}11{star}");
        if !text.contains(&code) {
            continue;
        }
        let mut out = String::with_capacity(text.len());
        let mut rest: &str = &text;
        while let Some(p) = rest.find(&code) {
            let after = &rest[p + code.len()..];
            let agent_len = after
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(after.len());
            let tail = &after[agent_len..];
            out.push_str(&rest[..p + code.len() + agent_len]);
            match tail.strip_prefix(star) {
                Some(pin) if agent_len > 0 => {
                    let pin_len = pin
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
                        .unwrap_or(pin.len());
                    out.push_str(star);
                    if pin_len > 0 {
                        out.push_str(MASK);
                    }
                    rest = &pin[pin_len..];
                }
                _ => rest = tail,
            }
        }
        out.push_str(rest);
        text = Cow::Owned(out);
    }
    text
}

/// The log writer: standard error, every line redacted first. `tracing_subscriber`'s formatter
/// writes each event with one `write_all` of the whole formatted line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr().lock().write_all(line(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = Stderr;

    fn make_writer(&'a self) -> Stderr {
        Stderr
    }
}

#[cfg(test)]
mod tests;
