//! The call centre a run needs, written through the store's typed methods as the admin pages
//! and `callfleet demo` do: one queue, one agent per bridged call, each with a phone (device)
//! whose password is derived from its number, the agents logged in on their phones.

use anyhow::Context as _;
use callfleet_store::{Agent, Fallback, Member, Queue, Store, Strategy};

/// The queue bridged calls dial.
pub const QUEUE: &str = "mediaload";
/// What waiting callers dial: no queue or agent has this number, so the node plays them music
/// on hold until they hang up (the same media as a queue's waiting callers).
pub const HOLD: &str = "mediaload-hold";
/// The digest realm of the nodes (the config default).
pub const REALM: &str = "callfleet";

/// Agent `i`'s extension.
pub fn agent(i: usize) -> String {
    format!("4{i:05}")
}

/// The phone agent `i` is logged in on.
pub fn device(i: usize) -> String {
    format!("5{i:05}")
}

/// The password of phone `ext` (a benchmark's phones need no secret).
pub fn password(ext: &str) -> String {
    format!("mediaload-{ext}")
}

/// Writes the queue and `agents` agents with their phones, and logs them in. Idempotent:
/// another run on the same database rewrites the same rows.
pub async fn provision(url: &str, agents: usize) -> anyhow::Result<()> {
    let store = Store::connect(url)
        .await
        .with_context(|| format!("open the database {url}"))?;
    store.migrate().await.context("migrate the database")?;
    let now = callfleet::now_ms();
    store
        .upsert_queue(&Queue {
            name: QUEUE.into(),
            strategy: Strategy::LeastRecent,
            ring_timeout_ms: 10_000,
            max_wait_ms: 3_600_000,
            announce_interval_ms: 0,
            moh_class: "default".into(),
            wrapup_ms: 300,
            fallback: Fallback::Hangup,
            fallback_target: None,
            rr_last: None,
            recording: Default::default(),
            recording_prompt: false,
        })
        .await
        .context("write the queue")?;
    // One PIN hash for every agent: nobody logs in with it, and argon2 takes a while.
    let pin = callfleet_store::pin::hash("mediaload", "0000").context("hash a PIN")?;
    for i in 0..agents {
        let (ext, dev) = (agent(i), device(i));
        store
            .upsert_agent(&Agent::new(&ext, &format!("load agent {i}"), &pin, now))
            .await
            .with_context(|| format!("write agent {ext}"))?;
        let row = callfleet::registrar::credentials::device(
            &dev,
            REALM,
            &password(&dev),
            &format!("load phone {i}"),
            now,
        )
        .with_context(|| format!("make device {dev}"))?;
        store
            .upsert_device(&row)
            .await
            .with_context(|| format!("write device {dev}"))?;
        store
            .upsert_member(&Member {
                queue: QUEUE.into(),
                agent: ext.clone(),
                tier: 0,
                vip_allowed: false,
                weight: 1,
                position: 0,
            })
            .await
            .with_context(|| format!("add agent {ext} to the queue"))?;
        let ok = store
            .login_agent(&ext, &dev, now)
            .await
            .with_context(|| format!("log agent {ext} in"))?;
        if !ok {
            anyhow::bail!("agent {ext} could not log in on {dev} (still holding a call?)");
        }
    }
    store.close().await;
    Ok(())
}
