//! HTTP digest authentication as SIP uses it (RFC 2617, RFC 7616, RFC 8760), server side and
//! sans-IO: HA1 values, the `Authorization` header's parameters, the expected `response`, and
//! `WWW-Authenticate` challenges. Nonces and replay protection are in [`super::nonce`].
//!
//! We parse `Authorization` ourselves rather than through rsipstack's typed header: rsipstack
//! 0.7 keeps `nc` in a `u8` (so a phone past its 255th request fails to parse) and prints it in
//! decimal while hashing it in hex. Here `nc` is exactly 8 hex digits (`0000000a` = 10), kept
//! as sent for the hash and as a number for ordering.

use std::fmt;

use md5::Md5;
use sha2::{Digest, Sha256};

/// A digest hash algorithm we accept. Devices store one HA1 per algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// Every algorithm, strongest first: the order challenges are offered in (RFC 8760 §2.4).
    pub const ALL: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Md5];

    /// The name used on the wire and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Reads an `algorithm=` value; `SHA256` (no dash) is accepted as some phones write it.
    pub fn parse(s: &str) -> Option<Algorithm> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") || s.eq_ignore_ascii_case("SHA256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// Lowercase hex of the hash of `data`.
    pub fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Algorithm {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Algorithm::parse(&s).ok_or_else(|| format!("unknown digest algorithm {s:?} (MD5, SHA-256)"))
    }
}

impl From<Algorithm> for String {
    fn from(a: Algorithm) -> String {
        a.as_str().to_string()
    }
}

/// `H(user:realm:password)`: what a device row stores instead of the password.
pub fn ha1(algorithm: Algorithm, user: &str, realm: &str, password: &str) -> String {
    algorithm.hash(&format!("{user}:{realm}:{password}"))
}

/// Why an `Authorization` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("authorization scheme {scheme:?} is not Digest")]
    NotDigest { scheme: String },
    #[error("digest parameter {name} is missing")]
    Missing { name: &'static str },
    #[error("digest algorithm {value:?} is not supported")]
    UnsupportedAlgorithm { value: String },
    #[error("digest nc {value:?} is not 8 hex digits")]
    BadNonceCount { value: String },
    #[error("malformed digest parameters at byte {offset}")]
    Syntax { offset: usize },
}

/// The `nc` of a request: 8 hex digits, kept as sent (the hash covers the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceCount {
    pub value: u32,
    text: String,
}

impl NonceCount {
    /// Parses exactly 8 hex digits (`0000000a` is 10, not an error and not 0).
    pub fn parse(text: &str) -> Result<NonceCount, DigestError> {
        let bad = || DigestError::BadNonceCount {
            value: text.chars().take(16).collect(),
        };
        if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let value = u32::from_str_radix(text, 16).map_err(|_| bad())?;
        Ok(NonceCount {
            value,
            text: text.to_string(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// The digest parameters of one `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Algorithm,
    pub qop: Option<String>,
    pub nc: Option<NonceCount>,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
}

impl Credentials {
    /// Parses an `Authorization` header value (`Digest username="..", ...`).
    pub fn parse(value: &str) -> Result<Credentials, DigestError> {
        let value = value.trim_start();
        let (scheme, rest) = value
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(DigestError::NotDigest {
                scheme: scheme.chars().take(32).collect(),
            });
        }
        let params = params(rest)?;
        let get = |name: &'static str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let need = |name: &'static str| get(name).ok_or(DigestError::Missing { name });
        let algorithm = match get("algorithm") {
            None => Algorithm::Md5, // RFC 2617 §3.2.2: absent means MD5
            Some(a) => Algorithm::parse(&a).ok_or_else(|| DigestError::UnsupportedAlgorithm {
                value: a.chars().take(32).collect(),
            })?,
        };
        let nc = get("nc").map(|v| NonceCount::parse(&v)).transpose()?;
        Ok(Credentials {
            username: need("username")?,
            realm: need("realm")?,
            nonce: need("nonce")?,
            uri: need("uri")?,
            response: need("response")?,
            algorithm,
            qop: get("qop"),
            nc,
            cnonce: get("cnonce"),
            opaque: get("opaque"),
        })
    }

    /// The `response` a client knowing `ha1` computes for this request (RFC 7616 §3.4.1);
    /// `qop=auth` when `qop` is set, the RFC 2069 form otherwise.
    pub fn expected_response(&self, ha1: &str, method: &str) -> String {
        let ha2 = self.algorithm.hash(&format!("{method}:{}", self.uri));
        match (&self.qop, &self.nc, &self.cnonce) {
            (Some(qop), Some(nc), Some(cnonce)) => self.algorithm.hash(&format!(
                "{ha1}:{}:{}:{cnonce}:{qop}:{ha2}",
                self.nonce,
                nc.as_str()
            )),
            _ => self.algorithm.hash(&format!("{ha1}:{}:{ha2}", self.nonce)),
        }
    }

    /// Whether the client's `response` is the one `ha1` gives, compared in constant time.
    pub fn response_matches(&self, ha1: &str, method: &str) -> bool {
        let expected = self.expected_response(ha1, method);
        let got = self.response.to_ascii_lowercase();
        constant_time_eq(expected.as_bytes(), got.as_bytes())
    }
}

/// Equality whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Splits `name=value, name="quoted, value"` into pairs; quoted values are unescaped.
fn params(s: &str) -> Result<Vec<(String, String)>, DigestError> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && (bytes[*i].is_ascii_whitespace() || bytes[*i] == b',') {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= bytes.len() {
            return Ok(out);
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b',' {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            return Err(DigestError::Syntax { offset: start });
        }
        let name = s[start..i].trim().to_string();
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = if bytes.get(i) == Some(&b'"') {
            quoted(s, &mut i)?
        } else {
            let v_start = i;
            while i < bytes.len() && bytes[i] != b',' {
                i += 1;
            }
            s[v_start..i].trim().to_string()
        };
        if name.is_empty() {
            return Err(DigestError::Syntax { offset: start });
        }
        out.push((name, value));
    }
}

/// Reads a quoted-string starting at `*i` (the opening quote); leaves `*i` after the close.
fn quoted(s: &str, i: &mut usize) -> Result<String, DigestError> {
    let open = *i;
    let mut out = String::new();
    let mut chars = s[open + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '"' => {
                *i = open + 1 + off + 1;
                return Ok(out);
            }
            '\\' => match chars.next() {
                Some((_, escaped)) => out.push(escaped),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(DigestError::Syntax { offset: open })
}

/// One `WWW-Authenticate` value: `qop="auth"` always (we need `nc` for replay protection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge<'a> {
    pub realm: &'a str,
    pub nonce: &'a str,
    pub algorithm: Algorithm,
    /// The credentials were right but the nonce was not (RFC 7616 §3.3): the client retries at
    /// once with the new nonce instead of treating the answer as a wrong password.
    pub stale: bool,
}

impl fmt::Display for Challenge<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest realm=\"{}\", nonce=\"{}\", algorithm={}, qop=\"auth\"",
            escape(self.realm),
            escape(self.nonce),
            self.algorithm
        )?;
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests;
