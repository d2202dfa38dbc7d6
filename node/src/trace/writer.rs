//! Writes the calls' trace chunks to `sip_trace`: compressed, in batches (what has arrived,
//! up to [`BATCH`] chunks in one transaction), off the call path. The export is optional
//! background work (`Work::Background`): from shed level 2 chunks wait in the queue; a full
//! queue loses new chunks (counted). A write the database could not take for a transient reason is retried; a chunk
//! written twice is stored once (its key is the call and its number).

use std::time::Duration;

use callfleet_store::TraceChunk;
use callfleet_vocab::Work;
use callfleet_web::metrics::trace::ChunkOutcome;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::collect::Chunk;
use crate::node::Base;
use crate::now_ms;

/// Chunks waiting for the database.
const QUEUE: usize = 4_096;
/// Most chunks written in one transaction.
pub const BATCH: usize = 64;
/// Pause between attempts, and while shedding.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Attempts of one batch while the database cannot be reached.
const ATTEMPTS: u32 = 30;

/// Starts the writer; it ends once the sender is dropped and the queue is written.
pub fn start(base: Base) -> (mpsc::Sender<Chunk>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (tx, tokio::spawn(run(base, rx)))
}

/// The stored rows of `chunks` (a chunk that cannot be encoded is counted lost).
pub fn rows(node_name: &str, chunks: Vec<Chunk>, at_ms: i64) -> (Vec<TraceChunk>, usize) {
    let mut lost = 0;
    let rows = chunks
        .into_iter()
        .filter_map(|c| match callfleet_store::trace::encode(&c.messages) {
            Ok(blob) => Some(TraceChunk {
                node: node_name.to_owned(),
                call_id: c.call_id,
                started_at_ms: c.started_at_ms,
                seq: c.seq,
                at_ms,
                messages: i64::try_from(c.messages.len()).unwrap_or(i64::MAX),
                bytes: i64::try_from(c.bytes).unwrap_or(i64::MAX),
                cut: i64::try_from(c.cut).unwrap_or(i64::MAX),
                blob,
            }),
            Err(e) => {
                warn!(call_id = %c.call_id, error = %e, "cannot encode a SIP trace chunk");
                lost += 1;
                None
            }
        })
        .collect();
    (rows, lost)
}

async fn run(base: Base, mut rx: mpsc::Receiver<Chunk>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        // Deferred while shedding, except when the node stops (the queue is written then).
        while !base.life.shed.allows(Work::Background) && !base.life.stopping.is_cancelled() {
            tokio::select! {
                _ = base.life.stopping.cancelled() => {}
                _ = tokio::time::sleep(RETRY_EVERY) => {}
            }
        }
        let (rows, lost) = rows(&base.cfg.node.name, batch, now_ms());
        for _ in 0..lost {
            base.metrics.trace().chunk(ChunkOutcome::Lost);
        }
        write(&base, &rows).await;
    }
}

async fn write(base: &Base, rows: &[TraceChunk]) {
    let m = base.metrics.trace();
    for attempt in 1..=ATTEMPTS {
        match base.store.insert_trace_chunks(rows).await {
            Ok(new) => {
                let new = usize::try_from(new).unwrap_or(rows.len()).min(rows.len());
                for _ in 0..new {
                    m.chunk(ChunkOutcome::Written);
                }
                for _ in new..rows.len() {
                    m.chunk(ChunkOutcome::Duplicate);
                }
                debug!(chunks = rows.len(), new, "SIP trace chunks written");
                return;
            }
            Err(e)
                if e.is_transient() && attempt < ATTEMPTS && !base.life.stopping.is_cancelled() =>
            {
                debug!(attempt, error = %e, "SIP trace chunks not written yet; retrying");
                tokio::time::sleep(RETRY_EVERY).await;
            }
            Err(e) => {
                warn!(chunks = rows.len(), error = %e, "SIP trace chunks given up");
                for _ in rows {
                    m.chunk(ChunkOutcome::Lost);
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callfleet_vocab::{TraceTransport, TracedMessage};

    #[test]
    fn chunks_become_rows_that_decode_back() {
        let m = TracedMessage {
            at_us: 5,
            transport: TraceTransport::Udp,
            src: "127.0.0.1:5060".parse().expect("addr"),
            dst: "127.0.0.2:5060".parse().expect("addr"),
            text: "BYE sip:a SIP/2.0\r\nCall-ID: c\r\n\r\n".into(),
        };
        let chunk = Chunk {
            call_id: "c".into(),
            started_at_ms: 9,
            seq: 2,
            messages: vec![m.clone(), m.clone()],
            bytes: 2 * m.text.len(),
            cut: 1,
        };
        let (rows, lost) = rows("n1", vec![chunk], 77);
        assert_eq!((rows.len(), lost), (1, 0));
        let r = &rows[0];
        assert_eq!(
            (
                r.node.as_str(),
                r.call_id.as_str(),
                r.started_at_ms,
                r.seq,
                r.at_ms
            ),
            ("n1", "c", 9, 2, 77)
        );
        assert_eq!(
            (r.messages, r.bytes, r.cut),
            (2, 2 * m.text.len() as i64, 1)
        );
        assert_eq!(
            callfleet_store::trace::decode(&r.blob).expect("decode"),
            vec![m.clone(), m]
        );
    }
}
