//! RTP quality of callers' legs by caller number prefix: the question "how bad is the audio
//! from each country", answered from `call_quality` joined with the calls' CDRs.

use futures_util::TryStreamExt as _;
use sqlx::Row;

use super::queries::{caller_expr, cdr_filter, check, CallFilter, Window};
use crate::{Store, StoreError};

/// Characters of the caller (the part of `From` before `@`, `sip:+15551234567`) a row is
/// grouped by: the scheme, `+` and the first digits, enough for a country calling code
/// (1–3 digits) and a NANP area code.
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
    /// The callers' legs of the calls started in the window (`bucket_ms` unused), per caller
    /// prefix, handed to `each` as they stream.
    pub async fn report_quality_prefixes(
        &self,
        w: Window,
        filter: &CallFilter,
        mut each: impl FnMut(QualityRow) + Send,
    ) -> Result<(), StoreError> {
        const WHAT: &str = "report call quality";
        check(&w)?;
        let caller = caller_expr(self.flavour());
        let (cond, value) = cdr_filter(filter);
        let sql = format!(
            "SELECT substr({caller}, 1, {PREFIX_CHARS}) AS p, COUNT(*), \
             CAST(SUM(q.expected) AS BIGINT), CAST(SUM(q.lost) AS BIGINT), \
             CAST(SUM(q.jitter_us) AS BIGINT), MAX(q.jitter_max_us) \
             FROM call_quality q JOIN cdrs c ON c.node = q.node AND c.call_id = q.call_id \
             AND c.started_at_ms = q.started_at_ms \
             WHERE q.leg = 'caller' AND q.started_at_ms >= $1 AND q.started_at_ms < $2 \
             AND c.started_at_ms >= $1 AND c.started_at_ms < $2 {cond} \
             GROUP BY substr({caller}, 1, {PREFIX_CHARS})"
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
