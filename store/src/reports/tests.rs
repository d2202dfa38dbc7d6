use super::{CallFilter, Department, Window};
use crate::testdb::flavour_tests;
use crate::{Cdr, Queue, QueueEvent, Store, StoreError};

const H: i64 = 3_600_000;

fn cdr(id: &str, from: &str, start: i64, agent: Option<&str>, queue: Option<&str>) -> Cdr {
    Cdr {
        node: "n1".into(),
        call_id: id.into(),
        from_uri: from.into(),
        to_uri: "sip:sales@10.0.0.1".into(),
        started_at_ms: start,
        answered_at_ms: Some(start),
        ended_at_ms: start + 60_000,
        hangup_cause: "normal".parse().expect("a hangup cause"),
        hangup_side: "caller".parse().expect("a hangup side"),
        sip_status: 200,
        redirected_from: None,
        agent: agent.map(Into::into),
        queue: queue.map(Into::into),
        uid: None,
        direction: Default::default(),
        destination: None,
    }
}

fn ev(call: &str, queue: &str, at: i64, what: &str, agent: Option<&str>) -> QueueEvent {
    QueueEvent {
        id: 0,
        at_ms: at,
        queue: queue.into(),
        call_id: call.into(),
        node: "n1".into(),
        agent: agent.map(Into::into),
        event: what.parse().expect("a queue event kind"),
        detail: None,
        uid: None,
    }
}

fn queue(name: &str) -> Queue {
    Queue {
        name: name.into(),
        strategy: "ringall".parse().expect("a strategy"),
        ring_timeout_ms: 15_000,
        max_wait_ms: 120_000,
        announce_interval_ms: 0,
        moh_class: "default".into(),
        wrapup_ms: 0,
        fallback: "hangup".parse().expect("a fallback"),
        fallback_target: None,
        rr_last: None,
        recording: Default::default(),
        recording_prompt: false,
    }
}

async fn queue_and_agent_rows(store: &Store) -> Result<(), StoreError> {
    let events = [
        // c1: answered after 10 s by 1001, 50 s talk.
        ev("c1", "sales", 10 * H, "enqueue", None),
        ev("c1", "sales", 10 * H + 10_000, "answer", Some("1001")),
        ev("c1", "sales", 10 * H + 60_000, "complete", Some("1001")),
        // c2: answered after 30 s by 1002, still talking.
        ev("c2", "sales", 10 * H + 1000, "enqueue", None),
        ev("c2", "sales", 10 * H + 31_000, "answer", Some("1002")),
        // c3: abandoned; c4: timed out, in the next hour; c5: another queue.
        ev("c3", "sales", 10 * H + 2000, "enqueue", None),
        ev("c3", "sales", 10 * H + 5000, "abandon", None),
        ev("c4", "sales", 11 * H, "enqueue", None),
        ev("c4", "sales", 11 * H + 120_000, "timeout", None),
        ev("c5", "support", 10 * H, "enqueue", None),
        // Outside the window.
        ev("c6", "sales", 20 * H, "enqueue", None),
        // Events that reach the database out of order (a spool emptied late): c7 was answered
        // after 20 s in hour 11 and talked 10 s.
        ev("c7", "sales", 11 * H + 30_000, "complete", Some("1002")),
        ev("c7", "sales", 11 * H + 20_000, "answer", Some("1002")),
        ev("c7", "sales", 11 * H, "enqueue", None),
        // Noise the summary ignores.
        ev("c7", "sales", 11 * H + 1000, "offer", Some("1001")),
        ev("c7", "sales", 11 * H + 2000, "noanswer", Some("1001")),
    ];
    store.insert_history(&[], &events).await?;
    let w = Window {
        from_ms: 0,
        to_ms: 12 * H,
        bucket_ms: H,
    };
    let mut rows = store.report_queues(w, None, 20_000).await?;
    rows.sort_by(|a, b| (&a.queue, a.bucket).cmp(&(&b.queue, b.bucket)));
    assert_eq!(rows.len(), 3, "{rows:?}");
    let s10 = &rows[0];
    assert_eq!((s10.queue.as_str(), s10.bucket), ("sales", 10));
    assert_eq!((s10.offered, s10.answered, s10.within_sl), (3, 2, 1));
    assert_eq!(
        (s10.wait_ms, s10.completed, s10.talk_ms),
        (40_000, 1, 50_000)
    );
    assert_eq!((s10.abandoned, s10.timed_out), (1, 0));
    let s11 = &rows[1];
    assert_eq!((s11.bucket, s11.offered, s11.timed_out), (11, 2, 1));
    assert_eq!(
        (s11.answered, s11.within_sl, s11.wait_ms, s11.talk_ms),
        (1, 1, 20_000, 10_000)
    );
    assert_eq!((rows[2].queue.as_str(), rows[2].offered), ("support", 1));
    let only = store.report_queues(w, Some("support"), 20_000).await?;
    assert_eq!(only.len(), 1);

    let mut agents = store.report_agents(w, None).await?;
    agents.sort_by(|a, b| (&a.agent, a.bucket).cmp(&(&b.agent, b.bucket)));
    assert_eq!(
        (agents[0].answered, agents[0].completed, agents[0].talk_ms),
        (1, 1, 50_000)
    );
    // 1002: c2 (still talking, hour 10) and c7 (hour 11).
    assert_eq!(agents.len(), 3, "{agents:?}");
    assert_eq!(
        (
            agents[1].agent.as_str(),
            agents[1].answered,
            agents[1].completed
        ),
        ("1002", 1, 0)
    );
    assert_eq!((agents[2].bucket, agents[2].talk_ms), (11, 10_000));
    assert_eq!(store.report_agents(w, Some("1002")).await?.len(), 2);
    Ok(())
}

async fn cdr_rows(store: &Store) -> Result<(), StoreError> {
    let cdrs = [
        cdr(
            "a",
            "sip:+12125550101@carrier",
            10 * H,
            Some("1001"),
            Some("sales"),
        ),
        cdr(
            "b",
            "sip:+12125550101@other",
            10 * H + 5,
            None,
            Some("sales"),
        ),
        cdr(
            "c",
            "sip:13105550199@carrier",
            11 * H,
            Some("1001"),
            Some("support"),
        ),
        cdr(
            "d",
            "sip:3105550199@carrier",
            11 * H + 1,
            Some("1002"),
            None,
        ),
        cdr("e", "sip:+33123456789@carrier", 11 * H + 2, None, None),
        cdr(
            "f",
            "sip:anonymous@anonymous.invalid",
            11 * H + 3,
            None,
            None,
        ),
        cdr("g", "tel:+12125550101", 11 * H + 4, None, None),
    ];
    store.insert_history(&cdrs, &[]).await?;
    let w = Window {
        from_ms: 0,
        to_ms: 24 * H,
        bucket_ms: H,
    };
    let mut areas = Vec::new();
    store
        .report_area_buckets(w, &CallFilter::All, |a| areas.push(a))
        .await?;
    areas.sort_by_key(|a| (a.npa, a.bucket));
    let got: Vec<_> = areas.iter().map(|a| (&a.npa, a.bucket, a.calls)).collect();
    assert_eq!(got, [(b"212", 10, 2), (b"310", 11, 2)]);
    let mut one = Vec::new();
    let agent = CallFilter::Agent("1001".into());
    store
        .report_area_buckets(w, &agent, |a| one.push(a))
        .await?;
    assert_eq!(one.len(), 2);

    let mut hours = store.report_call_buckets(w, &CallFilter::All).await?;
    hours.sort();
    assert_eq!(hours, [(10, 2), (11, 5)]);
    let sales = store
        .report_call_buckets(w, &CallFilter::Queue("sales".into()))
        .await?;
    assert_eq!(sales, [(10, 2)]);

    let top = store.report_top_callers(w, 2, 10).await?;
    assert_eq!(top.len(), 1, "{top:?}");
    assert_eq!(
        (top[0].caller.as_str(), top[0].calls, top[0].answered),
        ("sip:+12125550101", 2, 1)
    );
    let tel = store.report_top_callers(w, 1, 10).await?;
    assert!(
        tel.iter().any(|c| c.caller == "tel:+12125550101"),
        "{tel:?}"
    );
    let one = store
        .report_caller(w, &["sip:+12125550101".into(), "sip:+19999999999".into()])
        .await?;
    assert_eq!((one.len(), one[0].calls, one[0].first_ms), (1, 2, 10 * H));
    let bad = Window { bucket_ms: 0, ..w };
    assert!(matches!(
        store.report_top_callers(bad, 1, 1).await,
        Err(StoreError::InvalidArgument { .. })
    ));
    Ok(())
}

async fn departments(store: &Store) -> Result<(), StoreError> {
    store.upsert_queue(&queue("sales")).await?;
    store.upsert_queue(&queue("support")).await?;
    let mut d = Department {
        name: "front".into(),
        queues: vec!["sales".into(), "support".into()],
        created_at_ms: 5,
    };
    store.upsert_department(&d).await?;
    store
        .upsert_department(&Department {
            name: "empty".into(),
            queues: vec![],
            created_at_ms: 6,
        })
        .await?;
    let all = store.departments().await?;
    assert_eq!(all.len(), 2);
    assert_eq!(all[1], d);
    assert!(all[0].queues.is_empty());
    d.queues = vec!["nope".into()];
    assert!(matches!(
        store.upsert_department(&d).await,
        Err(StoreError::MissingReference { .. })
    ));
    assert_eq!(
        store.department("front").await?.map(|d| d.queues.len()),
        Some(2)
    );
    store.delete_queue("support").await?;
    assert_eq!(
        store.department("front").await?.map(|d| d.queues),
        Some(vec!["sales".into()])
    );
    assert!(store.delete_department("front").await?);
    assert!(!store.delete_department("front").await?);
    Ok(())
}

flavour_tests!(queue_and_agent_rows, cdr_rows, departments);

async fn cdr_export(store: &Store) -> Result<(), StoreError> {
    use futures_util::TryStreamExt as _;
    let cdrs: Vec<_> = (0..2500)
        .map(|i| {
            cdr(
                &format!("x{i}"),
                "sip:+12125550101@c",
                1000 + i,
                (i % 2 == 0).then_some("1001"),
                None,
            )
        })
        .collect();
    store.insert_history(&cdrs, &[]).await?;
    let w = Window {
        from_ms: 1000,
        to_ms: 1000 + 2400,
        bucket_ms: 1,
    };
    let all: Vec<_> = store.report_cdrs(w, &CallFilter::All).try_collect().await?;
    assert_eq!(all.len(), 2400);
    assert_eq!(all[0], cdrs[0]);
    assert!(all
        .windows(2)
        .all(|p| p[0].started_at_ms <= p[1].started_at_ms));
    let agent = CallFilter::Agent("1001".into());
    let n = store
        .report_cdrs(w, &agent)
        .try_fold(0, |n, _| async move { Ok(n + 1) })
        .await?;
    assert_eq!(n, 1200);
    Ok(())
}

flavour_tests!(cdr_export);

fn leg(
    call: &str,
    start: i64,
    leg: crate::CallLeg,
    lost: i64,
    jitter_us: i64,
) -> crate::LegQualityRow {
    crate::LegQualityRow {
        node: "n1".into(),
        call_id: call.into(),
        started_at_ms: start,
        leg,
        ended_at_ms: start + 60_000,
        codec: "PCMU".into(),
        packets_in: 1000 - lost,
        bytes_in: 160_000,
        packets_out: 1000,
        bytes_out: 160_000,
        expected: 1000,
        lost,
        duplicates: 0,
        out_of_order: 0,
        jitter_us,
        jitter_max_us: jitter_us * 2,
        longest_gap_ms: 20,
        rtcp_sent: 12,
        rtcp_received: 12,
        peer_fraction_lost: None,
        peer_lost: None,
        peer_jitter_us: None,
        rtt_us: None,
    }
}

async fn quality_by_prefix(store: &Store) -> Result<(), StoreError> {
    use crate::CallLeg::{Agent, Caller};
    let calls = [
        cdr(
            "q1",
            "sip:+15551230001@c",
            10 * H,
            Some("1001"),
            Some("sales"),
        ),
        cdr(
            "q2",
            "sip:+15559870002@c",
            10 * H,
            Some("1002"),
            Some("sales"),
        ),
        cdr(
            "q3",
            "sip:+442071230003@c",
            11 * H,
            Some("1001"),
            Some("support"),
        ),
        // Outside the window, and a call without a quality record.
        cdr(
            "q4",
            "sip:+15551230004@c",
            30 * H,
            Some("1001"),
            Some("sales"),
        ),
        cdr(
            "q5",
            "sip:+15551230005@c",
            10 * H,
            Some("1001"),
            Some("sales"),
        ),
    ];
    for c in &calls {
        store.insert_cdr(c).await?;
    }
    let legs = [
        leg("q1", 10 * H, Caller, 10, 2_000),
        // The agent's leg is not the caller's network: not counted.
        leg("q1", 10 * H, Agent, 500, 90_000),
        leg("q2", 10 * H, Caller, 30, 4_000),
        leg("q3", 11 * H, Caller, 50, 20_000),
        leg("q4", 30 * H, Caller, 900, 1),
        // A leg whose call started at another time is another call.
        leg("q5", 10 * H + 1, Caller, 900, 1),
    ];
    for l in &legs {
        store.upsert_leg_quality(l).await?;
    }
    // A leg written before its CDR (the CDR's trigger fills it in), and one whose CDR never
    // came: not counted.
    store
        .upsert_leg_quality(&leg("q6", 12 * H, Caller, 40, 6_000))
        .await?;
    store
        .insert_cdr(&cdr(
            "q6",
            "sip:+15551239999@c",
            12 * H,
            Some("1002"),
            Some("support"),
        ))
        .await?;
    store
        .upsert_leg_quality(&leg("q7", 12 * H, Caller, 900, 1))
        .await?;
    // A retried write of a leg keeps what its CDR gave it.
    store
        .upsert_leg_quality(&leg("q1", 10 * H, Caller, 10, 2_000))
        .await?;
    let w = Window {
        from_ms: 0,
        to_ms: 24 * H,
        bucket_ms: 1,
    };
    let mut rows = Vec::new();
    store
        .report_quality_prefixes(w, &CallFilter::All, |r| rows.push(r))
        .await?;
    rows.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.prefix.as_str(),
                r.legs,
                r.expected,
                r.lost,
                r.jitter_us_sum,
                r.jitter_max_us,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("sip:+15551", 2, 2000, 50, 8_000, 12_000),
            ("sip:+15559", 1, 1000, 30, 4_000, 8_000),
            ("sip:+44207", 1, 1000, 50, 20_000, 40_000),
        ]
    );
    let mut support = Vec::new();
    store
        .report_quality_prefixes(w, &CallFilter::Queue("support".into()), |r| {
            support.push(r.prefix)
        })
        .await?;
    support.sort();
    assert_eq!(support, ["sip:+15551", "sip:+44207"]);
    let mut agent = Vec::new();
    store
        .report_quality_prefixes(w, &CallFilter::Agent("1002".into()), |r| {
            agent.push((r.prefix, r.legs))
        })
        .await?;
    agent.sort();
    assert_eq!(
        agent,
        [("sip:+15551".to_owned(), 1), ("sip:+15559".to_owned(), 1)]
    );
    Ok(())
}

flavour_tests!(quality_by_prefix);

/// An outbound call's far leg (the trunk, stored as the `caller` leg) counts under the
/// number dialled, not under the phone that dialled it, whichever row is written first.
async fn quality_by_destination(store: &Store) -> Result<(), StoreError> {
    use crate::CallLeg::{Agent, Caller};
    let outbound = |id: &str, start: i64, dest: &str| Cdr {
        direction: crate::CallDirection::Outbound,
        destination: Some(dest.into()),
        queue: None,
        ..cdr(id, "sip:2001@10.0.0.9", start, Some("1001"), None)
    };
    store
        .insert_cdr(&outbound("o1", 10 * H, "+4930123456"))
        .await?;
    store
        .upsert_leg_quality(&leg("o1", 10 * H, Caller, 20, 3_000))
        .await?;
    store
        .upsert_leg_quality(&leg("o1", 10 * H, Agent, 500, 90_000))
        .await?;
    store
        .upsert_leg_quality(&leg("o2", 11 * H, Caller, 40, 5_000))
        .await?;
    store
        .insert_cdr(&outbound("o2", 11 * H, "+4989555000"))
        .await?;
    // An inbound call from the same phone keeps its From prefix.
    store
        .insert_cdr(&cdr("i1", "sip:2001@10.0.0.9", 12 * H, None, None))
        .await?;
    store
        .upsert_leg_quality(&leg("i1", 12 * H, Caller, 0, 1_000))
        .await?;
    let w = Window {
        from_ms: 0,
        to_ms: 24 * H,
        bucket_ms: 1,
    };
    let mut rows = Vec::new();
    store
        .report_quality_prefixes(w, &CallFilter::All, |r| {
            rows.push((r.prefix, r.legs, r.lost))
        })
        .await?;
    rows.sort();
    assert_eq!(
        rows,
        [
            ("sip:+49301".to_owned(), 1, 20),
            ("sip:+49895".to_owned(), 1, 40),
            ("sip:2001".to_owned(), 1, 0),
        ]
    );
    Ok(())
}

flavour_tests!(quality_by_destination);

async fn agent_state_history(store: &Store) -> Result<(), StoreError> {
    use crate::{Agent, AgentState::*};
    let w = |from_ms, to_ms| Window {
        from_ms,
        to_ms,
        bucket_ms: 1,
    };
    let sorted = |mut v: Vec<super::StateTime>| -> Vec<(String, crate::AgentState, i64)> {
        v.sort_by(|a, b| (&a.agent, a.state).cmp(&(&b.agent, b.state)));
        v.into_iter().map(|t| (t.agent, t.state, t.ms)).collect()
    };
    for ext in ["2001", "2002"] {
        store.upsert_agent(&Agent::new(ext, "A", "h", 100)).await?;
    }
    assert!(store.login_agent("2001", "d1", 1000).await?);
    assert!(store.set_paused("2001", true, 2000).await?);
    assert!(store.set_paused("2001", false, 3000).await?);
    assert!(
        store
            .transition_agent("2001", &[Available], Reserved, 4000, Some(("c1", "n1")))
            .await?
    );
    assert!(
        store
            .transition_agent("2001", &[Reserved], Ringing, 4100, None)
            .await?
    );
    assert!(
        store
            .transition_agent("2001", &[Ringing], InCall, 4200, None)
            .await?
    );
    store
        .finish_agent_call("2001", 6000, "2024-05-01", 0)
        .await?;
    // A configuration write keeps the state: no change is logged.
    store
        .upsert_agent(&Agent::new("2001", "Renamed", "h", 6500))
        .await?;
    assert!(store.logout_agent("2001", 8000).await?);
    assert!(store.login_agent("2002", "d2", 5000).await?);

    // The triggers logged every change: available since 3000 when the window opens.
    let got = store.report_agent_state_times(w(3500, 7000), None).await?;
    assert_eq!(
        sorted(got),
        [
            ("2001".to_owned(), Available, 500),
            ("2001".to_owned(), Reserved, 100),
            ("2001".to_owned(), Ringing, 100),
            ("2001".to_owned(), InCall, 1800),
            ("2001".to_owned(), WrapUp, 1000),
            ("2002".to_owned(), LoggedOut, 1500),
            ("2002".to_owned(), Available, 2000),
        ]
    );
    let one = store
        .report_agent_state_times(w(0, 10_000), Some("2002"))
        .await?;
    assert_eq!(
        sorted(one),
        [
            ("2002".to_owned(), LoggedOut, 4900),
            ("2002".to_owned(), Available, 5000)
        ]
    );
    Ok(())
}

flavour_tests!(agent_state_history);
