//! Agent state changes made under the agent's lease carry the lease's fencing token: the
//! database refuses a change from a holder whose lease another node has since taken (see
//! `Store::transition_agent_fenced`). Here the outcome is logged once, in one place.

use callfleet_lockd::Lease;
use callfleet_store::{AgentState, Store, StoreError, Transition};
use tracing::warn;

/// The lease's fencing token as the database stores it (tokens fit in 63 bits).
pub fn token(lease: &Lease) -> i64 {
    i64::try_from(lease.token()).unwrap_or(i64::MAX)
}

/// Moves the agent from one of `from` to `to` under `lease`; whether it moved. A refusal for
/// a stale token, or a database error, is logged.
pub async fn move_agent(
    store: &Store,
    ext: &str,
    lease: &Lease,
    from: &[AgentState],
    to: AgentState,
    call: Option<(&str, &str)>,
) -> bool {
    let res = store
        .transition_agent_fenced(ext, from, to, crate::now_ms(), call, token(lease))
        .await;
    judge(ext, lease, to.as_str(), res)
}

/// Ends the agent's call (`in_call` → `wrap_up`, counted) under `lease`.
pub async fn finish_call(store: &Store, ext: &str, lease: &Lease, now_ms: i64) -> bool {
    let res = store
        .finish_agent_call(ext, now_ms, &callfleet_store::utc_day(now_ms), token(lease))
        .await;
    judge(ext, lease, AgentState::WrapUp.as_str(), res)
}

fn judge(ext: &str, lease: &Lease, to: &str, res: Result<Transition, StoreError>) -> bool {
    match res {
        Ok(Transition::Moved) => true,
        Ok(Transition::Refused) => false,
        Ok(Transition::Fenced { stored }) => {
            warn!(
                agent = ext,
                to,
                token = lease.token(),
                stored,
                "agent state change refused: a newer lease holder took the agent"
            );
            false
        }
        Err(e) => {
            warn!(
                agent = ext,
                to,
                error = format!("{e:#}"),
                "agent state not written"
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use callfleet_lockd::LockClient;
    use callfleet_store::{Agent, AgentState::*, Store, Transition};

    /// A real lease holder goes stale: node A rings the agent under its lease, the lease runs
    /// out (paused time), node B takes the lease and the agent; every change A still tries
    /// with its token is refused as fenced, and A's lease cannot be renewed.
    #[tokio::test]
    async fn a_holder_whose_lease_ran_out_is_fenced_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let store = Store::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        let agent = Agent::new("1001", "Agent", "hash", 100);
        store.upsert_agent(&agent).await.expect("agent");
        assert!(store
            .login_agent("1001", "dev-1001", 1)
            .await
            .expect("login"));
        let locks = LockClient::in_process();
        let ttl = Duration::from_secs(2);
        let a = locks
            .acquire("agent:1001", "a", ttl)
            .await
            .expect("lock")
            .expect("free");
        let t = |l| super::token(l);
        let go = |from, to, kit, fence| {
            let store = store.clone();
            async move {
                store
                    .transition_agent_fenced("1001", &[from], to, 5, Some(("call", kit)), fence)
                    .await
                    .expect("write")
            }
        };
        assert_eq!(go(Available, Ringing, "a", t(&a)).await, Transition::Moved);

        tokio::time::pause();
        tokio::time::advance(ttl + Duration::from_millis(1)).await;
        tokio::time::resume();
        let b = locks
            .acquire("agent:1001", "b", ttl)
            .await
            .expect("lock")
            .expect("A's lease ran out");
        assert!(t(&b) > t(&a), "tokens grow");
        assert_eq!(go(Ringing, Available, "b", t(&b)).await, Transition::Moved);
        assert_eq!(go(Available, Ringing, "b", t(&b)).await, Transition::Moved);

        // A, back from its pause, answers its call as if nothing happened.
        assert_eq!(
            go(Ringing, InCall, "a", t(&a)).await,
            Transition::Fenced { stored: t(&b) }
        );
        assert!(
            !locks.renew(&a, ttl).await.expect("renew"),
            "A's lease is gone"
        );
        let now = store.agent("1001").await.expect("read").expect("agent");
        assert_eq!(
            (now.state, now.current_node.as_deref()),
            (Ringing, Some("b"))
        );
    }
}
