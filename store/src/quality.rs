//! RTP quality per call leg (`call_quality`): one row per leg of a call, written when the
//! leg's media stops, keyed by the call (node, Call-ID, start time, as on its CDR) and the
//! leg, so a retried write replaces the row instead of adding one.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::decode::enum_col;
use crate::{ParseEnumError, Store, StoreError};

/// Which leg of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallLeg {
    /// The caller (carrier or phone) the node answered.
    Caller,
    /// The agent's phone the node rang and bridged to the caller.
    Agent,
}

impl CallLeg {
    pub const ALL: [CallLeg; 2] = [CallLeg::Caller, CallLeg::Agent];

    /// The form stored in `call_quality.leg` and used by serde.
    pub fn as_str(self) -> &'static str {
        match self {
            CallLeg::Caller => "caller",
            CallLeg::Agent => "agent",
        }
    }
}

impl FromStr for CallLeg {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CallLeg::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| ParseEnumError {
                kind: "call leg",
                value: s.to_owned(),
            })
    }
}

/// The RTP quality of one leg of a call, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegQualityRow {
    pub node: String,
    pub call_id: String,
    pub started_at_ms: i64,
    pub leg: CallLeg,
    pub ended_at_ms: i64,
    /// `PCMU` or `PCMA`.
    pub codec: String,
    /// Received from the party (duplicates included) and sent to it (ours and relayed).
    pub packets_in: i64,
    pub bytes_in: i64,
    pub packets_out: i64,
    pub bytes_out: i64,
    /// From the party's sequence numbers: expected, lost (gaps), duplicates, late.
    pub expected: i64,
    pub lost: i64,
    pub duplicates: i64,
    pub out_of_order: i64,
    /// Interarrival jitter at the end of the leg and the highest it reached (RFC 3550 A.8).
    pub jitter_us: i64,
    pub jitter_max_us: i64,
    /// The longest time between two packets of the party.
    pub longest_gap_ms: i64,
    pub rtcp_sent: i64,
    pub rtcp_received: i64,
    /// The party's last RTCP report on what we sent it (`None` when it sent none).
    pub peer_fraction_lost: Option<i64>,
    pub peer_lost: Option<i64>,
    pub peer_jitter_us: Option<i64>,
    pub rtt_us: Option<i64>,
}

macro_rules! columns {
    () => {
        "node, call_id, started_at_ms, leg, ended_at_ms, codec, packets_in, bytes_in, \
         packets_out, bytes_out, expected, lost, duplicates, out_of_order, jitter_us, \
         jitter_max_us, longest_gap_ms, rtcp_sent, rtcp_received, peer_fraction_lost, \
         peer_lost, peer_jitter_us, rtt_us"
    };
}

const UPSERT: &str = concat!(
    "INSERT INTO call_quality (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
     $18, $19, $20, $21, $22, $23) \
     ON CONFLICT (node, call_id, started_at_ms, leg) DO UPDATE SET \
     ended_at_ms = excluded.ended_at_ms, codec = excluded.codec, \
     packets_in = excluded.packets_in, bytes_in = excluded.bytes_in, \
     packets_out = excluded.packets_out, bytes_out = excluded.bytes_out, \
     expected = excluded.expected, lost = excluded.lost, duplicates = excluded.duplicates, \
     out_of_order = excluded.out_of_order, jitter_us = excluded.jitter_us, \
     jitter_max_us = excluded.jitter_max_us, longest_gap_ms = excluded.longest_gap_ms, \
     rtcp_sent = excluded.rtcp_sent, rtcp_received = excluded.rtcp_received, \
     peer_fraction_lost = excluded.peer_fraction_lost, peer_lost = excluded.peer_lost, \
     peer_jitter_us = excluded.peer_jitter_us, rtt_us = excluded.rtt_us"
);

const SELECT_OF_CALL: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM call_quality WHERE call_id = $1 ORDER BY started_at_ms, node, leg"
);

const SELECT_SINCE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM call_quality WHERE ended_at_ms >= $1 ORDER BY ended_at_ms, node, call_id, leg"
);

impl Store {
    /// Stores a leg's quality; the same (node, call, start, leg) again replaces the row.
    pub async fn upsert_leg_quality(&self, q: &LegQualityRow) -> Result<(), StoreError> {
        sqlx::query(UPSERT)
            .bind(&q.node)
            .bind(&q.call_id)
            .bind(q.started_at_ms)
            .bind(q.leg.as_str())
            .bind(q.ended_at_ms)
            .bind(&q.codec)
            .bind(q.packets_in)
            .bind(q.bytes_in)
            .bind(q.packets_out)
            .bind(q.bytes_out)
            .bind(q.expected)
            .bind(q.lost)
            .bind(q.duplicates)
            .bind(q.out_of_order)
            .bind(q.jitter_us)
            .bind(q.jitter_max_us)
            .bind(q.longest_gap_ms)
            .bind(q.rtcp_sent)
            .bind(q.rtcp_received)
            .bind(q.peer_fraction_lost)
            .bind(q.peer_lost)
            .bind(q.peer_jitter_us)
            .bind(q.rtt_us)
            .execute(self.pool())
            .await
            .map(drop)
            .map_err(StoreError::query("upsert call quality"))
    }

    /// The legs stored for a Call-ID (on any node), oldest call first.
    pub async fn quality_of_call(&self, call_id: &str) -> Result<Vec<LegQualityRow>, StoreError> {
        self.quality_rows(SELECT_OF_CALL, |q| q.bind(call_id.to_owned()))
            .await
    }

    /// The legs whose media stopped at or after `since_ms`, oldest first.
    pub async fn quality_since(&self, since_ms: i64) -> Result<Vec<LegQualityRow>, StoreError> {
        self.quality_rows(SELECT_SINCE, |q| q.bind(since_ms)).await
    }

    async fn quality_rows<'q>(
        &self,
        sql: &'q str,
        bind: impl FnOnce(
            sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<Vec<LegQualityRow>, StoreError> {
        const WHAT: &str = "list call quality";
        let rows = bind(sqlx::query(sql))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query(WHAT))?;
        rows.iter()
            .map(from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::query(WHAT))
    }
}

fn from_row(row: &AnyRow) -> Result<LegQualityRow, sqlx::Error> {
    Ok(LegQualityRow {
        node: row.try_get("node")?,
        call_id: row.try_get("call_id")?,
        started_at_ms: row.try_get("started_at_ms")?,
        leg: enum_col(row, "leg")?,
        ended_at_ms: row.try_get("ended_at_ms")?,
        codec: row.try_get("codec")?,
        packets_in: row.try_get("packets_in")?,
        bytes_in: row.try_get("bytes_in")?,
        packets_out: row.try_get("packets_out")?,
        bytes_out: row.try_get("bytes_out")?,
        expected: row.try_get("expected")?,
        lost: row.try_get("lost")?,
        duplicates: row.try_get("duplicates")?,
        out_of_order: row.try_get("out_of_order")?,
        jitter_us: row.try_get("jitter_us")?,
        jitter_max_us: row.try_get("jitter_max_us")?,
        longest_gap_ms: row.try_get("longest_gap_ms")?,
        rtcp_sent: row.try_get("rtcp_sent")?,
        rtcp_received: row.try_get("rtcp_received")?,
        peer_fraction_lost: row.try_get("peer_fraction_lost")?,
        peer_lost: row.try_get("peer_lost")?,
        peer_jitter_us: row.try_get("peer_jitter_us")?,
        rtt_us: row.try_get("rtt_us")?,
    })
}

#[cfg(test)]
mod tests;
