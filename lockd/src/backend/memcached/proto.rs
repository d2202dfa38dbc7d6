//! The slice of memcached's text protocol that lockd speaks, without I/O: commands encoded
//! into a write buffer, replies parsed incrementally from a read buffer.
//!
//! Every meta command carries an opaque `O<n>` that memcached echoes on its reply, so the
//! connection can check that replies line up with the commands it sent (see `conn`). Data
//! lengths are sent and read explicitly; values never need escaping.
//!
//! | command | sent as | replies |
//! |---|---|---|
//! | [`Cmd::Add`] | `ms <key> <len> ME T<exptime> c O<n>` + data | `HD c<cas>`, `NS` |
//! | [`Cmd::SetCas`] | `ms <key> <len> C<cas> T<exptime> c O<n>` + data | `HD c<cas>`, `EX`, `NF` |
//! | [`Cmd::Get`] | `mg <key> v c O<n>` | `VA <len> c<cas>` + data, `EN` |
//! | [`Cmd::DeleteCas`] | `md <key> C<cas> O<n>` | `HD`, `EX`, `NF` |
//! | [`Cmd::Draw`] | `ma <key> N0 J<seed> v O<n>` | `VA <len>` + number |
//! | [`Cmd::Version`] | `version` | `VERSION <v>` |
//!
//! Any command may also get `ERROR`, `CLIENT_ERROR <msg>` or `SERVER_ERROR <msg>`, which carry
//! no opaque.

use std::io::Write as _;

/// Longest reply line accepted (meta reply lines are a few dozen bytes).
const MAX_LINE: usize = 1024;
/// Largest value accepted in a `VA` reply (lease records are a few hundred bytes).
pub(crate) const MAX_VALUE: usize = 64 * 1024;

/// One command, borrowing its key and value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmd<'a> {
    /// Store only if the key is absent.
    Add {
        key: &'a str,
        value: &'a [u8],
        exptime: u32,
    },
    /// Store only if the item's CAS value is still `cas`.
    SetCas {
        key: &'a str,
        value: &'a [u8],
        exptime: u32,
        cas: u64,
    },
    /// Value and CAS value of the key.
    Get {
        key: &'a str,
    },
    /// Delete only if the item's CAS value is still `cas`.
    DeleteCas {
        key: &'a str,
        cas: u64,
    },
    /// Add one to the counter `key` and return its new value; a missing counter is created,
    /// never to expire, at `seed` (and `seed` is returned).
    Draw {
        key: &'a str,
        seed: u64,
    },
    Version,
}

impl Cmd<'_> {
    /// Short name for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Cmd::Add { .. } => "ms ME",
            Cmd::SetCas { .. } => "ms C",
            Cmd::Get { .. } => "mg",
            Cmd::DeleteCas { .. } => "md C",
            Cmd::Draw { .. } => "ma",
            Cmd::Version => "version",
        }
    }

    /// The opaque memcached will echo on the reply to this command sent with `opaque`.
    pub fn echo(&self, opaque: u32) -> Option<u32> {
        match self {
            Cmd::Version => None,
            _ => Some(opaque),
        }
    }

    /// Appends the command, tagged with `opaque`, to `out`.
    pub fn encode(&self, opaque: u32, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail.
        let _ = match *self {
            Cmd::Add {
                key,
                value,
                exptime,
            } => write!(
                out,
                "ms {key} {} ME T{exptime} c O{opaque}\r\n",
                value.len()
            ),
            Cmd::SetCas {
                key,
                value,
                exptime,
                cas,
            } => write!(
                out,
                "ms {key} {} C{cas} T{exptime} c O{opaque}\r\n",
                value.len()
            ),
            Cmd::Get { key } => write!(out, "mg {key} v c O{opaque}\r\n"),
            Cmd::DeleteCas { key, cas } => write!(out, "md {key} C{cas} O{opaque}\r\n"),
            Cmd::Draw { key, seed } => write!(out, "ma {key} N0 J{seed} v O{opaque}\r\n"),
            Cmd::Version => write!(out, "version\r\n"),
        };
        if let Cmd::Add { value, .. } | Cmd::SetCas { value, .. } = *self {
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// A reply, whatever command it answers; the caller knows which replies its command allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `HD`: stored or deleted; `cas` when asked for with `c`.
    Done {
        cas: Option<u64>,
    },
    /// `NS`: not stored (an add found the key).
    NotStored,
    /// `EX`: the CAS value did not match.
    Exists,
    /// `NF`: no such item.
    NotFound,
    /// `EN`: no such item (get).
    Miss,
    /// `VA`: a value, with its CAS value when asked for.
    Value {
        data: Vec<u8>,
        cas: Option<u64>,
    },
    Version,
    /// `ERROR`, `CLIENT_ERROR ...` or `SERVER_ERROR ...`.
    Failed {
        kind: Failure,
        message: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// `ERROR`: memcached did not know the command.
    Unknown,
    /// `CLIENT_ERROR`: memcached found the command malformed.
    Client,
    /// `SERVER_ERROR`: memcached could not carry it out (out of memory, ...).
    Server,
}

/// A reply parsed from the front of a buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub reply: Reply,
    /// The `O` flag, if the reply has one.
    pub opaque: Option<u32>,
    /// Bytes of the buffer the reply took.
    pub len: usize,
}

/// The bytes are not a memcached reply: the connection cannot be trusted any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("a reply line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("a reply line that does not end in CRLF")]
    BareNewline,
    #[error("a reply that is not UTF-8")]
    NotText,
    #[error("an unknown reply code")]
    UnknownReply,
    #[error("a bad number in a reply")]
    BadNumber,
    #[error("a value of more than {MAX_VALUE} bytes")]
    ValueTooLarge,
    #[error("a value not followed by CRLF")]
    BadValueEnd,
}

/// Parses the reply at the front of `buf`: `Ok(None)` when `buf` holds only part of it.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<Parsed>, ProtocolError> {
    let Some(nl) = buf.iter().take(MAX_LINE + 2).position(|&b| b == b'\n') else {
        return if buf.len() > MAX_LINE + 1 {
            Err(ProtocolError::LineTooLong)
        } else {
            Ok(None)
        };
    };
    if nl == 0 || buf[nl - 1] != b'\r' {
        return Err(ProtocolError::BareNewline);
    }
    let line = std::str::from_utf8(&buf[..nl - 1]).map_err(|_| ProtocolError::NotText)?;
    let head_len = nl + 1;
    let (code, rest) = line.split_once(' ').unwrap_or((line, ""));
    let failed = |kind| {
        let reply = Reply::Failed {
            kind,
            message: rest.to_owned(),
        };
        Ok(Some(Parsed {
            reply,
            opaque: None,
            len: head_len,
        }))
    };
    let status = |reply| {
        let (cas, opaque) = flags(rest)?;
        let reply = match reply {
            Reply::Done { .. } => Reply::Done { cas },
            other => other,
        };
        Ok(Some(Parsed {
            reply,
            opaque,
            len: head_len,
        }))
    };
    match code {
        "HD" => status(Reply::Done { cas: None }),
        "NS" => status(Reply::NotStored),
        "EX" => status(Reply::Exists),
        "NF" => status(Reply::NotFound),
        "EN" => status(Reply::Miss),
        "VA" => value(buf, head_len, rest),
        "VERSION" => Ok(Some(Parsed {
            reply: Reply::Version,
            opaque: None,
            len: head_len,
        })),
        "ERROR" => failed(Failure::Unknown),
        "CLIENT_ERROR" => failed(Failure::Client),
        "SERVER_ERROR" => failed(Failure::Server),
        _ => Err(ProtocolError::UnknownReply),
    }
}

/// `VA <len> <flags>*\r\n<data>\r\n`, whose header line `rest` (after `VA `) ends at `head_len`.
fn value(buf: &[u8], head_len: usize, rest: &str) -> Result<Option<Parsed>, ProtocolError> {
    let (size, flag_text) = rest.split_once(' ').unwrap_or((rest, ""));
    let size: usize = number(size)?;
    if size > MAX_VALUE {
        return Err(ProtocolError::ValueTooLarge);
    }
    let (cas, opaque) = flags(flag_text)?;
    let end = head_len + size;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(ProtocolError::BadValueEnd);
    }
    let reply = Reply::Value {
        data: buf[head_len..end].to_vec(),
        cas,
    };
    Ok(Some(Parsed {
        reply,
        opaque,
        len: end + 2,
    }))
}

/// The `c` (CAS) and `O` (opaque) flags among `text`; other flags are ignored.
fn flags(text: &str) -> Result<(Option<u64>, Option<u32>), ProtocolError> {
    let (mut cas, mut opaque) = (None, None);
    for flag in text.split(' ').filter(|f| !f.is_empty()) {
        // `get` rather than slicing: a flag may start with a multi-byte character.
        let value = flag.get(1..).unwrap_or("");
        match flag.as_bytes().first() {
            Some(b'c') => cas = Some(number(value)?),
            Some(b'O') => opaque = Some(number(value)?),
            _ => {}
        }
    }
    Ok((cas, opaque))
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, ProtocolError> {
    // `parse` accepts a leading `+`; memcached never sends one.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProtocolError::BadNumber);
    }
    text.parse().map_err(|_| ProtocolError::BadNumber)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_encoded_as_memcached_expects() {
        let cases: &[(Cmd<'_>, &str)] = &[
            (
                Cmd::Add {
                    key: "k:1",
                    value: b"1 0 99 a b",
                    exptime: 3,
                },
                "ms k:1 10 ME T3 c O7\r\n1 0 99 a b\r\n",
            ),
            (
                Cmd::SetCas {
                    key: "k",
                    value: b"",
                    exptime: 0,
                    cas: 42,
                },
                "ms k 0 C42 T0 c O7\r\n\r\n",
            ),
            (Cmd::Get { key: "k" }, "mg k v c O7\r\n"),
            (
                Cmd::DeleteCas {
                    key: "k",
                    cas: u64::MAX,
                },
                "md k C18446744073709551615 O7\r\n",
            ),
            (
                Cmd::Draw {
                    key: "c#t",
                    seed: 1_754_000_000_000_000,
                },
                "ma c#t N0 J1754000000000000 v O7\r\n",
            ),
            (Cmd::Version, "version\r\n"),
        ];
        for (cmd, want) in cases {
            let mut out = b"before|".to_vec();
            cmd.encode(7, &mut out);
            assert_eq!(String::from_utf8_lossy(&out), format!("before|{want}"));
            let echo = if *cmd == Cmd::Version { None } else { Some(7) };
            assert_eq!(cmd.echo(7), echo, "{}", cmd.name());
        }
    }

    type Outcome = Result<Option<Parsed>, ProtocolError>;

    fn parsed(reply: Reply, opaque: Option<u32>, len: usize) -> Outcome {
        Ok(Some(Parsed { reply, opaque, len }))
    }

    fn value(data: &[u8], cas: Option<u64>) -> Reply {
        Reply::Value {
            data: data.to_vec(),
            cas,
        }
    }

    fn failed(kind: Failure, message: &str) -> Reply {
        Reply::Failed {
            kind,
            message: message.into(),
        }
    }

    /// Each reply parses to what it says, alone or followed by another.
    fn check(cases: Vec<(&[u8], Outcome)>) {
        for (buf, want) in cases {
            let text = String::from_utf8_lossy(buf);
            assert_eq!(&parse(buf), &want, "{text}");
            let mut more = buf.to_vec();
            more.extend_from_slice(b"HD O9\r\n");
            assert_eq!(&parse(&more), &want, "{text} + more");
        }
    }

    #[test]
    fn status_replies() {
        let done = |cas| Reply::Done { cas };
        check(vec![
            (
                b"HD c3920596 O12\r\n",
                parsed(done(Some(3920596)), Some(12), 17),
            ),
            (b"HD O1\r\n", parsed(done(None), Some(1), 7)),
            (b"HD\r\n", parsed(done(None), None, 4)),
            (b"NS c0 O13\r\n", parsed(Reply::NotStored, Some(13), 11)),
            (b"EX c0 O15\r\n", parsed(Reply::Exists, Some(15), 11)),
            (b"EX O17\r\n", parsed(Reply::Exists, Some(17), 8)),
            (b"NF O18\r\n", parsed(Reply::NotFound, Some(18), 8)),
            (b"EN O11\r\n", parsed(Reply::Miss, Some(11), 8)),
            // Flags lockd did not ask for are skipped.
            (
                b"HD W Z k:x b c5 O2\r\n",
                parsed(done(Some(5)), Some(2), 20),
            ),
            (
                "HD \u{e9}t\u{e9} O3\r\n".as_bytes(),
                parsed(done(None), Some(3), 13),
            ),
            (b"VERSION 1.6.18\r\n", parsed(Reply::Version, None, 16)),
        ]);
    }

    #[test]
    fn value_and_refusal_replies() {
        let (oom, chunk) = ("out of memory storing object", "bad data chunk");
        check(vec![
            (
                b"VA 3 c3920596 O14\r\nabc\r\n",
                parsed(value(b"abc", Some(3920596)), Some(14), 24),
            ),
            (
                b"VA 1 O19\r\n7\r\n",
                parsed(value(b"7", None), Some(19), 13),
            ),
            // A value may hold anything, CRLF included: its length says where it ends.
            (
                b"VA 4\r\n\r\n\r\n\r\n",
                parsed(value(b"\r\n\r\n", None), None, 12),
            ),
            (b"ERROR\r\n", parsed(failed(Failure::Unknown, ""), None, 7)),
            (
                b"CLIENT_ERROR bad data chunk\r\n",
                parsed(failed(Failure::Client, chunk), None, 29),
            ),
            (
                b"SERVER_ERROR out of memory storing object\r\n",
                parsed(failed(Failure::Server, oom), None, 43),
            ),
        ]);
    }

    #[test]
    fn a_partial_reply_waits_for_more_bytes() {
        let whole: &[u8] = b"VA 3 c9 O1\r\nabc\r\n";
        for cut in 0..whole.len() {
            assert_eq!(parse(&whole[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(matches!(parse(whole), Ok(Some(p)) if p.len == whole.len()));
        for cut in 0..7 {
            assert_eq!(parse(&b"HD c1\r\n"[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let long = format!("HD {}\r\n", "x".repeat(MAX_LINE));
        let endless = "H".repeat(MAX_LINE + 2);
        let huge = format!("VA {} O1\r\n", MAX_VALUE + 1);
        let cases: Vec<(&[u8], ProtocolError)> = vec![
            (b"HD\n", ProtocolError::BareNewline),
            (b"\n", ProtocolError::BareNewline),
            (b"OK\r\n", ProtocolError::UnknownReply),
            (b"\r\n", ProtocolError::UnknownReply),
            (b"hd\r\n", ProtocolError::UnknownReply),
            (b"HD c12x\r\n", ProtocolError::BadNumber),
            (b"HD c\r\n", ProtocolError::BadNumber),
            (b"HD c+1\r\n", ProtocolError::BadNumber),
            (b"HD O99999999999\r\n", ProtocolError::BadNumber),
            (b"HD c99999999999999999999\r\n", ProtocolError::BadNumber),
            (b"VA x\r\n", ProtocolError::BadNumber),
            (b"VA\r\n", ProtocolError::BadNumber),
            (b"VA -1\r\n", ProtocolError::BadNumber),
            (huge.as_bytes(), ProtocolError::ValueTooLarge),
            (b"VA 2\r\nabc\r\n", ProtocolError::BadValueEnd),
            (b"HD \xff\r\n", ProtocolError::NotText),
            (long.as_bytes(), ProtocolError::LineTooLong),
            (endless.as_bytes(), ProtocolError::LineTooLong),
        ];
        for (buf, want) in cases {
            assert_eq!(parse(buf), Err(want), "{}", String::from_utf8_lossy(buf));
        }
        // Just under the limit, a line without its end yet is only incomplete.
        assert_eq!(parse("H".repeat(MAX_LINE + 1).as_bytes()), Ok(None));
    }
}
