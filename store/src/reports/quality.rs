//! RTP quality of callers' legs by caller number prefix: the question "how bad is the audio
//! from each country", answered from `call_quality` alone: the caller's leg keeps its call's
//! caller prefix, agent and queue, copied from the CDR by triggers (migration 0013).

use futures_util::TryStreamExt as _;
use sqlx::Row;

use super::queries::{check, CallFilter, Window};
use crate::{Store, StoreError};

/// Characters of the caller (the part of `From` before `@`, `sip:+15551234567`) a row is
/// grouped by: the scheme, `+` and the first digits, enough for a country calling code
/// (1–3 digits) and a NANP area code. Migration 0013's triggers cut it.
pub const PREFIX_CHARS: i64 = 10;

/// The callers' legs of calls whose caller starts with `prefix`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QualityRow {
    /// The first [`PREFIX_CHARS`] characters of the caller: `sip:+15551`.
    pub prefix: String,
    /// Legs with a quality record.
    pub legs: i64,
    /// RTP packets expected from the callers and lost (RFC 3550 A.3).
    pub expected: i64,
    pub lost: i64,
    /// Sum of the legs' interarrival jitter at their end, and the highest any leg reached.
    pub jitter_us_sum: i64,
    pub jitter_max_us: i64,
}

impl Store {
    /// The callers' legs of the calls started in the window (`bucket_ms` unused) whose CDR
    /// is written, per caller prefix, handed to `each` as they stream.
    pub async fn report_quality_prefixes(
        &self,
        w: Window,
        filter: &CallFilter,
        mut each: impl FnMut(QualityRow) + Send,
    ) -> Result<(), StoreError> {
        const WHAT: &str = "report call quality";
        check(&w)?;
        let (cond, value) = match filter {
            CallFilter::All => ("$3 = ''", ""),
            CallFilter::Agent(a) => ("cdr_agent = $3", a.as_str()),
            CallFilter::Queue(q) => ("cdr_queue = $3", q.as_str()),
        };
        let sql = format!(
            "SELECT caller_prefix, COUNT(*), CAST(SUM(expected) AS BIGINT), \
             CAST(SUM(lost) AS BIGINT), CAST(SUM(jitter_us) AS BIGINT), MAX(jitter_max_us) \
             FROM call_quality \
             WHERE leg = 'caller' AND started_at_ms >= $1 AND started_at_ms < $2 \
             AND caller_prefix IS NOT NULL AND {cond} \
             GROUP BY caller_prefix"
        );
        let mut rows = sqlx::query(&sql)
            .bind(w.from_ms)
            .bind(w.to_ms)
            .bind(value)
            .fetch(self.pool());
        while let Some(r) = rows.try_next().await.map_err(StoreError::query(WHAT))? {
            let row = (|| {
                Ok::<_, sqlx::Error>(QualityRow {
                    prefix: r.try_get(0)?,
                    legs: r.try_get(1)?,
                    expected: r.try_get(2)?,
                    lost: r.try_get(3)?,
                    jitter_us_sum: r.try_get(4)?,
                    jitter_max_us: r.try_get(5)?,
                })
            })()
            .map_err(StoreError::query(WHAT))?;
            each(row);
        }
        Ok(())
    }
}
