//! Tests for background jobs and recordings, on both flavours.

use crate::testdb::flavour_tests;
use crate::{JobState, NewJob, RecordingFormat, RecordingRow, Store, StoreError};

flavour_tests!(
    claims_are_exclusive_until_they_expire,
    settled_jobs_retry_finish_or_fail,
    a_recording_and_its_job_are_stored_once,
    workers_racing_claim_each_job_once,
);

fn job(kind: &str, node: Option<&str>, at_ms: i64) -> NewJob {
    NewJob {
        kind: kind.to_owned(),
        payload: "{}".to_owned(),
        node: node.map(str::to_owned),
        at_ms,
    }
}

async fn claims_are_exclusive_until_they_expire(store: &Store) -> Result<(), StoreError> {
    let a = store.enqueue_job(&job("mp3", Some("n1"), 1_000)).await?;
    let b = store.enqueue_job(&job("mp3", None, 2_000)).await?;
    // Not due yet.
    assert_eq!(store.claim_job("w1", "n1", 500, 10_000).await?, None);
    // Another node may not take n1's job, only the one for any node, once due.
    assert_eq!(store.claim_job("w2", "n2", 1_500, 10_000).await?, None);
    let first = store
        .claim_job("w1", "n1", 2_500, 10_000)
        .await?
        .expect("a job");
    assert_eq!((first.id, first.attempts), (a, 1));
    let second = store
        .claim_job("w2", "n2", 2_500, 10_000)
        .await?
        .expect("b");
    assert_eq!(second.id, b);
    assert_eq!(
        store.claim_job("w3", "n1", 9_999, 20_000).await?,
        None,
        "both claimed"
    );
    // w1 died: its claim runs out at 10 000 and the job is taken again, a second attempt.
    let again = store
        .claim_job("w3", "n1", 10_000, 20_000)
        .await?
        .expect("expired");
    assert_eq!((again.id, again.attempts), (a, 2));
    assert!(
        !store
            .settle_job(a, "w1", JobState::Done, 0, None, 10_001)
            .await?,
        "the old claimer's word no longer counts"
    );
    assert!(
        store
            .settle_job(a, "w3", JobState::Done, 0, None, 10_001)
            .await?
    );
    Ok(())
}

async fn settled_jobs_retry_finish_or_fail(store: &Store) -> Result<(), StoreError> {
    let id = store.enqueue_job(&job("mp3", None, 0)).await?;
    let j = store.claim_job("w", "n", 10, 1_000).await?.expect("job");
    assert!(
        store
            .settle_job(id, "w", JobState::Queued, 5_000, Some("disk"), 20)
            .await?
    );
    assert_eq!(
        store.claim_job("w", "n", 4_999, 9_000).await?,
        None,
        "backoff"
    );
    let j2 = store
        .claim_job("w", "n", 5_000, 9_000)
        .await?
        .expect("retried");
    assert_eq!((j2.id, j2.attempts), (j.id, 2));
    assert!(
        store
            .settle_job(id, "w", JobState::Failed, 0, Some("bad"), 5_001)
            .await?
    );
    assert_eq!(store.claim_job("w", "n", 1 << 40, 1 << 41).await?, None);
    assert_eq!(store.job_counts().await?, (0, 0, 1));
    Ok(())
}

fn recording(uid: &str) -> RecordingRow {
    RecordingRow {
        id: 0,
        uid: uid.to_owned(),
        node: "n1".to_owned(),
        call_id: "c1@x".to_owned(),
        queue: Some("sales".to_owned()),
        agent: Some("3001".to_owned()),
        caller: "+15551234".to_owned(),
        path: "/r/1.wav".to_owned(),
        format: RecordingFormat::Wav,
        duration_ms: 12_000,
        size_bytes: 384_044,
        dropped_frames: 0,
        started_at_ms: 1_000,
        created_at_ms: 13_000,
    }
}

async fn a_recording_and_its_job_are_stored_once(store: &Store) -> Result<(), StoreError> {
    let conv = job("mp3", Some("n1"), 13_000);
    let id = store
        .insert_recording(&recording("n1/1/r1"), Some(&conv))
        .await?
        .expect("new");
    assert_eq!(
        store
            .insert_recording(&recording("n1/1/r1"), Some(&conv))
            .await?,
        None,
        "a replayed write stores nothing"
    );
    assert_eq!(store.job_counts().await?, (1, 0, 0), "one job, not two");
    let got = store.recording(id).await?.expect("stored");
    assert_eq!(
        got,
        RecordingRow {
            id,
            ..recording("n1/1/r1")
        }
    );
    assert_eq!(store.recording_by_uid("n1/1/r1").await?, Some(got.clone()));
    assert!(
        !store
            .set_recording_file(id, "/elsewhere", "/r/1.mp3", RecordingFormat::Mp3, 9)
            .await?
    );
    assert!(
        store
            .set_recording_file(id, "/r/1.wav", "/r/1.mp3", RecordingFormat::Mp3, 96_000)
            .await?
    );
    let list = store.recordings(Some("c1@x"), 10).await?;
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].format, list[0].size_bytes),
        (RecordingFormat::Mp3, 96_000)
    );
    assert_eq!(store.recordings_before("n1", 13_000, 10).await?.len(), 0);
    assert_eq!(store.recordings_before("n2", 14_000, 10).await?.len(), 0);
    assert_eq!(store.recordings_before("n1", 14_000, 10).await?.len(), 1);
    assert!(store.delete_recording(id).await?);
    assert!(!store.delete_recording(id).await?);
    Ok(())
}

async fn workers_racing_claim_each_job_once(store: &Store) -> Result<(), StoreError> {
    for _ in 0..20 {
        store.enqueue_job(&job("mp3", None, 0)).await?;
    }
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let me = format!("w{w}");
            let mut got = Vec::new();
            while let Some(j) = store.claim_job(&me, "n", 1, 1 << 40).await? {
                got.push(j.id);
            }
            Ok::<_, StoreError>(got)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("worker")?);
    }
    all.sort_unstable();
    let before = all.len();
    all.dedup();
    assert_eq!(
        (before, all.len()),
        (20, 20),
        "every job claimed exactly once"
    );
    Ok(())
}
