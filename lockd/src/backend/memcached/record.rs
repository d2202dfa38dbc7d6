//! The lease record as stored in a memcached value: `1 <token> <expires_at_ms> <owner>`.
//!
//! The first field is the format version. Token 0 marks a record whose acquirer has taken the
//! key but not yet drawn its token (see the acquire steps in the parent module). The expiry is
//! wall-clock milliseconds since the UNIX epoch, so every lockd sharing the memcached can tell
//! a lease has ended with millisecond precision, whatever memcached's whole-second TTL says.

/// What the version field says in every record this code writes.
const VERSION: &str = "1";

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// 0 while the acquire is still drawing its token.
    pub token: u64,
    pub expires_at_ms: u64,
    pub owner: String,
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "{VERSION} {} {} {}",
            self.token, self.expires_at_ms, self.owner
        )
        .into_bytes()
    }

    /// Why a value is not a record, for [`super::BackendError::Corrupt`].
    pub fn decode(value: &[u8]) -> Result<Self, &'static str> {
        let text = std::str::from_utf8(value).map_err(|_| "not UTF-8")?;
        let mut fields = text.splitn(4, ' ');
        if fields.next() != Some(VERSION) {
            return Err("unknown format version");
        }
        let token = fields
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or("bad token")?;
        let expires_at_ms = fields
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or("bad expiry")?;
        let owner = fields.next().filter(|o| !o.is_empty()).ok_or("no owner")?;
        Ok(Self {
            token,
            expires_at_ms,
            owner: owner.to_owned(),
        })
    }

    /// Still held at `now_ms`: a lease of `ttl` taken at `t` ends at exactly `t + ttl`.
    pub fn live(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for owner in ["main-a", "main-a/dispatcher 2", "nœud x y"] {
            let rec = Record {
                token: 1_754_000_000_000_123,
                expires_at_ms: 1_754_000_001_500,
                owner: owner.to_owned(),
            };
            assert_eq!(Record::decode(&rec.encode()), Ok(rec));
        }
    }

    #[test]
    fn corrupt_values_are_named() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "unknown format version"),
            (b"2 5 10 a", "unknown format version"),
            (b"1 x 10 a", "bad token"),
            (b"1 5", "bad expiry"),
            (b"1 5 -1 a", "bad expiry"),
            (b"1 5 10", "no owner"),
            (b"1 5 10 ", "no owner"),
            (b"1 5 10 \xff", "not UTF-8"),
        ];
        for (value, want) in cases {
            assert_eq!(Record::decode(value), Err(*want), "{value:?}");
        }
    }

    #[test]
    fn expiry_is_exclusive() {
        let rec = Record {
            token: 1,
            expires_at_ms: 1500,
            owner: "a".into(),
        };
        assert!(rec.live(0));
        assert!(rec.live(1499));
        assert!(!rec.live(1500));
        assert!(!rec.live(9000));
    }
}
