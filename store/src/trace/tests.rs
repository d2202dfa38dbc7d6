//! Tests for the trace chunks: the codec, and the table on both flavours.

use super::*;
use crate::testdb::flavour_tests;
use callfleet_vocab::TraceTransport;

fn msg(n: i64) -> TracedMessage {
    TracedMessage {
        at_us: n,
        transport: TraceTransport::Udp,
        src: "127.0.0.1:5060".parse().expect("addr"),
        dst: "127.0.0.2:5062".parse().expect("addr"),
        text: format!("INVITE sip:{n}@b SIP/2.0\r\nCall-ID: c{n}\r\n\r\n"),
    }
}

#[test]
fn chunks_read_back_as_written_and_bad_ones_are_refused() {
    let messages: Vec<_> = (0..50).map(msg).collect();
    let blob = encode(&messages).expect("encode");
    assert!(blob.len() < serde_json::to_vec(&messages).expect("json").len() / 2);
    assert_eq!(decode(&blob).expect("decode"), messages);
    assert!(matches!(
        decode(b"not zstd"),
        Err(ChunkError::Decompress(_))
    ));
    let not_a_list = zstd::bulk::compress(b"{\"a\":1}", 1).expect("compress");
    assert!(matches!(decode(&not_a_list), Err(ChunkError::Json(_))));
}

flavour_tests!(chunks_are_inserted_once_and_read_back_by_call,);

fn chunk(node: &str, call_id: &str, seq: i64, n: i64) -> TraceChunk {
    let messages: Vec<_> = (0..n).map(msg).collect();
    TraceChunk {
        node: node.into(),
        call_id: call_id.into(),
        started_at_ms: 1_000,
        seq,
        at_ms: 2_000 + seq,
        messages: n,
        bytes: messages.iter().map(|m| m.text.len() as i64).sum(),
        cut: seq,
        blob: encode(&messages).expect("encode"),
    }
}

async fn chunks_are_inserted_once_and_read_back_by_call(store: &Store) -> Result<(), StoreError> {
    let first = [chunk("main-a", "t1@h", 1, 3), chunk("main-a", "t1@h", 0, 2)];
    assert_eq!(store.insert_trace_chunks(&first).await?, 2);
    // A retried batch (one chunk already there, one new) stores the new one only.
    let retry = [chunk("main-a", "t1@h", 1, 3), chunk("main-a", "t1@h", 2, 1)];
    assert_eq!(store.insert_trace_chunks(&retry).await?, 1);
    store
        .insert_trace_chunks(&[chunk("main-b", "other@h", 0, 1)])
        .await?;
    let got = store.trace_of_call("t1@h").await?;
    let seqs: Vec<i64> = got.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, [0, 1, 2]);
    assert_eq!(got[1], chunk("main-a", "t1@h", 1, 3));
    assert_eq!(decode(&got[1].blob).expect("decode").len(), 3);
    assert!(store.trace_of_call("none@h").await?.is_empty());
    assert!(store.insert_trace_chunks(&[]).await? == 0);
    Ok(())
}

flavour_tests!(expired_chunks_go_in_batches_oldest_first_of_one_node_only,);

async fn expired_chunks_go_in_batches_oldest_first_of_one_node_only(
    store: &Store,
) -> Result<(), StoreError> {
    // main-a: chunks written at 2000..2005 (two at 2003); main-b: one at 2000.
    let mut chunks: Vec<TraceChunk> = (0..5).map(|s| chunk("main-a", "old@h", s, 1)).collect();
    chunks.push(chunk("main-a", "tie@h", 3, 1));
    chunks.push(chunk("main-b", "b@h", 0, 1));
    store.insert_trace_chunks(&chunks).await?;
    let left = |call: &'static str| async move {
        let got = store.trace_of_call(call).await?;
        Ok::<Vec<i64>, StoreError>(got.iter().map(|c| c.at_ms).collect())
    };
    // Before 2004: 2000, 2001, 2002, 2003 ×2 of main-a, two at most a batch plus ties.
    assert_eq!(store.delete_trace_before("main-a", 2004, 2).await?, 2);
    assert_eq!(left("old@h").await?, [2002, 2003, 2004]);
    assert_eq!(
        store.delete_trace_before("main-a", 2004, 2).await?,
        3,
        "ties go together"
    );
    assert_eq!(left("old@h").await?, [2004]);
    assert!(left("tie@h").await?.is_empty());
    assert_eq!(store.delete_trace_before("main-a", 2004, 2).await?, 0);
    // Fewer left than a batch: all of them; another node's are never touched.
    assert_eq!(store.delete_trace_before("main-a", 9_999, 100).await?, 1);
    assert_eq!(left("b@h").await?, [2000]);
    Ok(())
}
