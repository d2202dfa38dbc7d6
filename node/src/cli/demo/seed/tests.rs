use super::*;
use callfleet_store::AgentState;

#[test]
fn the_call_centre_holds_together() {
    let names: Vec<String> = queues().iter().map(|q| q.name.clone()).collect();
    for (queue, agent, tier, _) in MEMBERS {
        assert!(names.iter().any(|n| n == queue), "{queue}");
        assert!(AGENTS.iter().any(|a| a.ext == agent), "{agent}");
        assert!((0..=1).contains(&tier));
    }
    for q in queues() {
        let best: Vec<_> = MEMBERS
            .iter()
            .filter(|(queue, _, tier, _)| *queue == q.name && *tier == 0)
            .collect();
        assert_eq!(best.len(), 2, "queue {} has two agents in tier 0", q.name);
        let target = q.fallback_target.clone().unwrap_or_default();
        let ok = match q.fallback.as_str() {
            "queue" => names.contains(&target),
            "voicemail" => AGENTS.iter().any(|a| a.ext == target),
            other => panic!("fallback {other}"),
        };
        assert!(ok, "queue {}: fallback target {target}", q.name);
    }
    // The VIP queue has a member allowed to take VIP callers on a simulated phone.
    assert!(MEMBERS.iter().any(|(q, a, _, vip)| *q == SALES
        && *vip
        && AGENTS.iter().any(|d| d.ext == *a && d.phone.is_some())));
    let phones: Vec<&str> = AGENTS.iter().filter_map(|a| a.phone).collect();
    assert_eq!(phones.len(), 4);
    assert!(!phones.contains(&SUPERVISOR_PHONE));
}

#[tokio::test]
async fn seeding_twice_writes_the_call_centre_once_and_logs_the_agents_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::connect(&format!("sqlite://{}/demo.db", dir.path().display()))
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    let first = seed(&store, 1_000).await.expect("seed");
    let second = seed(&store, 2_000).await.expect("seed again");
    assert_eq!(first.phones.len(), 5);
    assert!(first.not_logged_in.is_empty() && second.not_logged_in.is_empty());
    for (a, b) in first.phones.iter().zip(&second.phones) {
        assert_eq!(a.ext, b.ext);
        assert_ne!(a.password, b.password, "a new password every start");
    }
    assert_eq!(store.queues().await.expect("queues").len(), 2);
    assert_eq!(store.members(None).await.expect("members").len(), 8);
    assert_eq!(store.devices().await.expect("devices").len(), 5);
    assert!(store.is_vip(VIP_CALLER, SALES).await.expect("vip"));
    let agents = store.agents().await.expect("agents");
    assert_eq!(agents.len(), 5);
    for a in agents {
        let def = AGENTS.iter().find(|d| d.ext == a.extension).expect("known");
        assert!(
            callfleet_store::pin::verify(def.ext, def.pin, &a.pin_hash)
                .expect("a stored PIN hash")
                .is_right(),
            "agent {}'s PIN",
            def.ext
        );
        match def.phone {
            Some(phone) => {
                assert_eq!(a.device.as_deref(), Some(phone));
                assert_eq!(a.state, AgentState::Available);
            }
            None => assert_eq!(a.state, AgentState::LoggedOut),
        }
    }
    // The stored digest is the one the phone's password gives in the demo's realm.
    let sup = second
        .phones
        .iter()
        .find(|p| p.ext == SUPERVISOR_PHONE)
        .expect("supervisor");
    let row = store
        .device(SUPERVISOR_PHONE)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(
        row.ha1_md5,
        crate::registrar::digest::ha1(
            crate::registrar::digest::Algorithm::Md5,
            SUPERVISOR_PHONE,
            REALM,
            &sup.password
        )
    );
}
