//! `LockClient` failover against real sockets: a lockd that refuses connections, one that
//! accepts and never answers, one that answers 500, one that hangs up, and a real one behind
//! them; a 409 or a 400 is an answer and is never retried elsewhere. Kept-alive connections
//! survive a lockd restart and fail over when a lockd dies.

// Test code: a panic is a failed test (clippy.toml allows unwrap in #[test] functions; this
// extends it to the helpers around them).
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use callfleet_lockd::{Acquire, AttemptError, Backend, LockClient, LockError};
use support::Lockd;

/// An address where nothing listens: connections are refused.
fn dead(ip: &str) -> String {
    let l = std::net::TcpListener::bind((ip, 0)).unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// Accepts connections and never answers; counts them.
async fn hung(ip: &str) -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(sock);
        }
    });
    (url, accepted)
}

/// Answers every request with `status` and `body`; counts them.
async fn canned(ip: &str, status: StatusCode, body: &'static str) -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let count = hits.clone();
    let app = axum::Router::new().fallback(move || {
        count.fetch_add(1, Ordering::SeqCst);
        async move { (status, [("content-type", "application/json")], body) }
    });
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, hits)
}

const TTL: Duration = Duration::from_secs(5);

#[tokio::test]
async fn fails_over_past_dead_hung_and_failing_lockd_and_remembers() {
    let real = Lockd::start("127.0.0.61", Backend::memory());
    let (hung_url, accepted) = hung("127.0.0.62").await;
    let (failing, failed) = canned("127.0.0.63", StatusCode::INTERNAL_SERVER_ERROR, "{}").await;
    let client = LockClient::new(
        [dead("127.0.0.64"), hung_url, failing, real.url.clone()],
        support::key(),
    )
    .unwrap();

    // The hung lockd is given up on at its request deadline: the acquire ends (the outer
    // bound only turns a hang into a failure; it measures nothing).
    let lease = tokio::time::timeout(Duration::from_secs(30), client.acquire("agent:1", "a", TTL))
        .await
        .expect("the client gives up on the hung lockd")
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            accepted.load(Ordering::SeqCst),
            failed.load(Ordering::SeqCst)
        ),
        (1, 1)
    );

    // The client now goes straight to the lockd that answered.
    assert!(client.renew(&lease, TTL).await.unwrap());
    assert!(client.release(&lease).await.unwrap());
    let again = client.acquire("agent:1", "b", TTL).await.unwrap().unwrap();
    assert!(again.token() > lease.token());
    assert_eq!(
        (
            accepted.load(Ordering::SeqCst),
            failed.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
}

#[tokio::test]
async fn a_conflict_or_a_bad_request_is_an_answer() {
    let real = Lockd::start("127.0.0.65", Backend::memory());
    let (conflict, conflicts) =
        canned("127.0.0.66", StatusCode::CONFLICT, r#"{"holder":"main-x"}"#).await;
    let client = LockClient::new([conflict, real.url.clone()], support::key()).unwrap();
    let got = client.try_acquire("agent:1", "a", TTL).await.unwrap();
    assert_eq!(
        got,
        Acquire::Held {
            holder: Some("main-x".into())
        }
    );
    assert_eq!(conflicts.load(Ordering::SeqCst), 1);

    let body = r#"{"error":"bad_request","message":"the owner is empty"}"#;
    let (picky, refusals) = canned("127.0.0.67", StatusCode::BAD_REQUEST, body).await;
    let client = LockClient::new([picky, real.url.clone()], support::key()).unwrap();
    match client.acquire("agent:1", "a", TTL).await {
        Err(LockError::Rejected {
            status: 400,
            message,
            ..
        }) => assert_eq!(message, "the owner is empty"),
        other => panic!("{other:?}"),
    }
    assert_eq!(refusals.load(Ordering::SeqCst), 1);

    // Neither was passed on: the key is still free at the real lockd.
    let direct = LockClient::new([&real.url], support::key()).unwrap();
    assert!(direct.acquire("agent:1", "a", TTL).await.unwrap().is_some());
}

#[tokio::test]
async fn a_lockd_of_another_secret_refuses_and_the_next_serves() {
    let other = support::Lockd::start_keyed(
        "127.0.0.76",
        Backend::memory(),
        callfleet_lockd::ClusterKey::new("another cluster's secret, 32 chars or more"),
    );
    let real = Lockd::start("127.0.0.77", Backend::memory());
    let client = LockClient::new([other.url.clone(), real.url.clone()], support::key()).unwrap();
    let lease = client.acquire("agent:1", "a", TTL).await.unwrap().unwrap();
    assert!(client.release(&lease).await.unwrap());
    // Alone, the refusal is the error, with lockd's reason.
    let client = LockClient::new([other.url.clone()], support::key()).unwrap();
    match client.acquire("agent:1", "a", TTL).await {
        Err(LockError::Unavailable { attempts: 1, last }) => match *last {
            AttemptError::Status {
                status: 401,
                message,
                ..
            } => assert!(message.contains("does not match"), "{message}"),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn every_lockd_down_is_an_error_naming_the_last_failure() {
    let body = r#"{"error":"backend_unavailable","message":"cannot connect to memcached at 10.0.0.9:11211"}"#;
    let (unavailable, _) = canned("127.0.0.68", StatusCode::SERVICE_UNAVAILABLE, body).await;
    let client =
        LockClient::new([dead("127.0.0.69"), unavailable.clone()], support::key()).unwrap();
    match client.acquire("agent:1", "a", TTL).await {
        Err(LockError::Unavailable { attempts: 2, last }) => match *last {
            AttemptError::Status {
                url,
                status: 503,
                message,
            } => {
                assert_eq!(url, format!("{unavailable}/v1/locks/agent:1"));
                assert_eq!(message, "cannot connect to memcached at 10.0.0.9:11211");
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    let client = LockClient::new([dead("127.0.0.69")], support::key()).unwrap();
    match client.acquire("agent:1", "a", TTL).await {
        Err(LockError::Unavailable { attempts: 1, last }) => {
            assert!(matches!(*last, AttemptError::Transport { .. }), "{last:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn requests_reuse_one_kept_alive_connection() {
    use axum::serve::ListenerExt as _;
    let l = tokio::net::TcpListener::bind(("127.0.0.70", 0))
        .await
        .unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let l = l.tap_io(move |_| {
        count.fetch_add(1, Ordering::SeqCst);
    });
    let app = callfleet_lockd::router(
        Backend::memory(),
        callfleet_lockd::Auth::new(support::key()),
    );
    tokio::spawn(async move { axum::serve(l, app).await });
    let client = LockClient::new([&url], support::key()).unwrap();
    for i in 0..20 {
        let lease = client.acquire("agent:1", "a", TTL).await.unwrap().unwrap();
        assert!(client.renew(&lease, TTL).await.unwrap(), "round {i}");
        assert!(client.release(&lease).await.unwrap(), "round {i}");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "60 requests, one connection"
    );
}

/// Accepts connections, reads a little and hangs up without answering; counts them.
async fn hangs_up(ip: &str) -> (String, Arc<AtomicUsize>) {
    use tokio::io::AsyncReadExt as _;
    let l = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 16];
            let _ = sock.read(&mut buf).await;
        }
    });
    (url, accepted)
}

#[tokio::test]
async fn a_lockd_that_hangs_up_is_skipped() {
    let real = Lockd::start("127.0.20.30", Backend::memory());
    let (rude, hung_up) = hangs_up("127.0.20.31").await;
    let client = LockClient::new([rude.clone(), real.url.clone()], support::key()).unwrap();
    let lease = client.acquire("agent:1", "a", TTL).await.unwrap().unwrap();
    assert!(client.release(&lease).await.unwrap());
    // Tried once (a new connection that closes is not retried), then never again.
    assert_eq!(hung_up.load(Ordering::SeqCst), 1);

    let client = LockClient::new([rude], support::key()).unwrap();
    match client.acquire("agent:1", "a", TTL).await {
        Err(LockError::Unavailable { attempts: 1, last }) => {
            assert!(matches!(*last, AttemptError::Transport { .. }), "{last:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn kept_alive_connections_outlive_a_lockd_restart() {
    let mut lockd = Lockd::start("127.0.20.32", Backend::memory());
    let client = LockClient::new([&lockd.url], support::key()).unwrap();
    let lease = client.acquire("agent:1", "a", TTL).await.unwrap().unwrap();
    // The restarted lockd knows nothing of the lease (memory backend); what matters is that
    // the client's kept-alive connection to the old process does not fail the request.
    lockd.restart(Backend::memory());
    for i in 0..3 {
        assert!(!client.release(&lease).await.unwrap(), "round {i}");
    }
    let again = client.acquire("agent:1", "b", TTL).await.unwrap().unwrap();
    assert!(client.release(&again).await.unwrap());
}

#[tokio::test]
async fn a_dead_lockd_s_kept_alive_connections_fail_over() {
    let mut first = Lockd::start("127.0.20.33", Backend::memory());
    let second = Lockd::start("127.0.20.34", Backend::memory());
    let client = LockClient::new([first.url.clone(), second.url.clone()], support::key()).unwrap();
    // Several connections to the first lockd, kept alive.
    let leases = futures_join(&client, 4).await;
    assert_eq!(leases.len(), 4);
    first.kill();
    let lease = client.acquire("agent:x", "a", TTL).await.unwrap().unwrap();
    assert!(client.renew(&lease, TTL).await.unwrap());
    assert!(client.release(&lease).await.unwrap());
    // The second lockd has it: a direct client sees the key free again, and the first
    // lockd's leases are unknown there.
    let direct = LockClient::new([&second.url], support::key()).unwrap();
    assert!(direct.acquire("agent:x", "b", TTL).await.unwrap().is_some());
    assert!(direct.acquire("agent:0", "b", TTL).await.unwrap().is_some());
}

/// `n` leases taken at once (on agent:0.. agent:n-1), so that `n` connections are opened.
async fn futures_join(client: &LockClient, n: usize) -> Vec<callfleet_lockd::Lease> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.acquire(&format!("agent:{i}"), "a", TTL).await })
        })
        .collect();
    let mut leases = Vec::new();
    for task in tasks {
        leases.push(task.await.unwrap().unwrap().unwrap());
    }
    leases
}
