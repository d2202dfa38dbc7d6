use super::*;

const NOW: i64 = 1_700_000_000_000;

fn cfg() -> SnapshotConfig {
    SnapshotConfig::new("main-a", Duration::from_secs(3))
}

fn heartbeat(name: &str, updated_at_ms: i64) -> Heartbeat {
    Heartbeat {
        name: name.into(),
        role: "main".into(),
        sip_addr: "127.0.0.1:5060".into(),
        http_addr: "127.0.0.1:8080".into(),
        generation: 1,
        seq: 1,
        calls: 2,
        capacity: 10,
        cpu_milli: 123,
        load1_milli: 1500,
        mem_used_kb: 1,
        mem_total_kb: 2,
        shed_level: 1,
        draining: false,
        refusing: false,
        services: "sip".into(),
        version: "0".into(),
        updated_at_ms,
    }
}

fn agent(ext: &str, state: AgentState, since: i64, call: Option<(&str, &str)>) -> Agent {
    let mut a = Agent::new(ext, &format!("Agent {ext}"), "h", since);
    a.state = state;
    a.device = (state != AgentState::LoggedOut).then(|| format!("d{ext}"));
    a.current_call = call.map(|(c, _)| c.to_owned());
    a.current_node = call.map(|(_, n)| n.to_owned());
    a
}

fn queue(name: &str) -> Queue {
    Queue {
        name: name.into(),
        strategy: callfleet_store::Strategy::RingAll,
        ring_timeout_ms: 15_000,
        max_wait_ms: 60_000,
        announce_interval_ms: 0,
        moh_class: "default".into(),
        wrapup_ms: 0,
        fallback: callfleet_store::Fallback::Hangup,
        fallback_target: None,
        rr_last: None,
        recording: Default::default(),
        recording_prompt: false,
    }
}

fn member(queue: &str, agent: &str) -> Member {
    Member {
        queue: queue.into(),
        agent: agent.into(),
        tier: 0,
        vip_allowed: false,
        weight: 1,
        position: 0,
    }
}

fn entry(id: i64, queue: &str, node: &str, call: &str, at: i64, state: EntryState) -> QueueEntry {
    QueueEntry {
        id,
        queue: queue.into(),
        node: node.into(),
        call_id: call.into(),
        caller: "555".into(),
        priority: 0,
        vip: false,
        enqueued_at_ms: at,
        state,
        offered_to: (state == EntryState::Bridged).then(|| "1001".to_owned()),
    }
}

fn live(node: &str, call: &str, from: &str, started: i64) -> LiveCall {
    LiveCall {
        node: node.into(),
        call_id: call.into(),
        from_uri: from.into(),
        to_uri: "sip:sales@10.0.0.1".into(),
        state: "answered".into(),
        started_at_ms: started,
        answered_at_ms: Some(started),
        redirected_from: None,
    }
}

fn event(id: i64, at_ms: i64, queue: &str, call: &str, what: &str) -> QueueEvent {
    QueueEvent {
        id,
        at_ms,
        queue: queue.into(),
        call_id: call.into(),
        node: "main-a".into(),
        agent: None,
        event: what.parse().expect("a queue event kind"),
        detail: None,
        uid: None,
    }
}

fn point(name: &str, at_ms: i64, calls: i64) -> HeartbeatPoint {
    HeartbeatPoint {
        name: name.into(),
        at_ms,
        calls,
        cpu_milli: calls * 100,
        load1_milli: 0,
    }
}

/// A cluster: two nodes (one dead), queue `sales` with a waiting, an offering and a bridged
/// call, and agents in each interesting state.
fn rows() -> Rows {
    Rows {
        heartbeats: vec![
            heartbeat("main-a", NOW - 500),
            heartbeat("main-b", NOW - 4_000),
        ],
        history: Vec::new(),
        agents: vec![
            agent(
                "1001",
                AgentState::InCall,
                NOW - 42_000,
                Some(("c3", "main-a")),
            ),
            agent("1002", AgentState::Available, NOW - 5_000, None),
            agent("1003", AgentState::Paused, NOW - 1_000, None),
            agent(
                "1004",
                AgentState::Ringing,
                NOW - 2_000,
                Some(("c2", "main-a")),
            ),
            agent("1005", AgentState::LoggedOut, NOW - 9_000, None),
            agent("1006", AgentState::WrapUp, NOW - 3_000, None),
        ],
        queues: vec![queue("sales"), queue("support")],
        members: ["1001", "1002", "1003", "1004", "1005", "1006"]
            .into_iter()
            .map(|a| member("sales", a))
            .chain([member("support", "1002")])
            .collect(),
        entries: vec![
            entry(
                1,
                "sales",
                "main-a",
                "c1",
                NOW - 30_000,
                EntryState::Waiting,
            ),
            entry(
                2,
                "sales",
                "main-a",
                "c2",
                NOW - 12_000,
                EntryState::Offering,
            ),
            entry(
                3,
                "sales",
                "main-a",
                "c3",
                NOW - 90_000,
                EntryState::Bridged,
            ),
        ],
        calls: vec![
            live("main-a", "c1", "sip:555@carrier", NOW - 31_000),
            live(
                "main-a",
                "c2",
                "\"Bob\" <sip:556@carrier>;tag=x",
                NOW - 13_000,
            ),
            live("main-a", "c3", "sip:557@carrier", NOW - 100_000),
            live("main-b", "c9", "sip:558@carrier", NOW - 1_000),
        ],
        events: Vec::new(),
        alerts: Vec::new(),
    }
}

fn built(rows: &Rows) -> Snapshot {
    let mut tracker = Tracker::new(Duration::from_secs(20));
    tracker.apply(NOW, &rows.history, &rows.events);
    build(&cfg(), 7, NOW, rows, &tracker)
}

#[test]
fn nodes_are_alive_by_heartbeat_age() {
    let s = built(&rows());
    assert_eq!(s.seq, 7);
    assert_eq!(s.served_by, "main-a");
    let summary: Vec<_> = s
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.alive, n.heartbeat_age_ms))
        .collect();
    assert_eq!(
        summary,
        [("main-a", true, 500), ("main-b", false, 4_000)],
        "ttl 3 s"
    );
    let a = &s.nodes[0];
    assert_eq!((a.cpu_pct, a.load1, a.shed_level), (12.3, 1.5, 1));
}

#[test]
fn queues_count_waiting_calls_and_members_by_state() {
    let s = built(&rows());
    let sales = &s.queues[0];
    assert_eq!(sales.name, "sales");
    assert_eq!(sales.waiting, 2, "waiting and offering, not bridged");
    assert_eq!(sales.longest_wait_ms, Some(30_000));
    assert_eq!(
        (
            sales.members,
            sales.available,
            sales.busy,
            sales.paused,
            sales.logged_out
        ),
        (6, 1, 3, 1, 1)
    );
    assert_eq!(sales.by_state.iter().sum::<i64>(), 6);
    let support = &s.queues[1];
    assert_eq!((support.waiting, support.longest_wait_ms), (0, None));
    assert_eq!((support.members, support.available), (1, 1));
    assert_eq!(support.service_level, None, "nothing answered yet");
}

#[test]
fn agents_show_their_call_with_durations_from_row_times() {
    let s = built(&rows());
    let talking = &s.agents[0];
    assert_eq!(talking.extension, "1001");
    assert_eq!(talking.state_for_ms, 42_000);
    assert_eq!(
        talking.call,
        Some(AgentCall {
            call_id: "c3".into(),
            node: "main-a".into(),
            caller: Some("557".into()),
            queue: Some("sales".into()),
            duration_ms: 42_000,
        })
    );
    assert_eq!(talking.queues, ["sales"]);
    let ringing = &s.agents[3];
    assert_eq!(
        ringing.call.as_ref().map(|c| c.caller.as_deref()),
        Some(Some("556"))
    );
    assert_eq!(s.agents[1].queues, ["sales", "support"]);
    assert!(s.agents[1].call.is_none());
    assert!(s.agents[4].device.is_none());
}

#[test]
fn live_calls_carry_queue_agent_and_state() {
    let s = built(&rows());
    let by_id: HashMap<&str, &CallView> = s.calls.iter().map(|c| (c.call_id.as_str(), c)).collect();
    let c1 = by_id["c1"];
    assert_eq!(
        (c1.state.as_str(), c1.queue.as_deref(), c1.agent.as_deref()),
        ("waiting", Some("sales"), None)
    );
    assert_eq!((c1.duration_ms, c1.wait_ms), (31_000, Some(30_000)));
    let c2 = by_id["c2"];
    assert_eq!(
        (c2.state.as_str(), c2.agent.as_deref()),
        ("ringing", Some("1004"))
    );
    assert_eq!(c2.caller, "556");
    let c3 = by_id["c3"];
    assert_eq!(
        (c3.state.as_str(), c3.agent.as_deref()),
        ("talking", Some("1001"))
    );
    let c9 = by_id["c9"];
    assert_eq!(
        (c9.node.as_str(), c9.state.as_str(), c9.queue.as_deref()),
        ("main-b", "answered", None)
    );
    assert_eq!(c9.dialled, "sales");
    let order: Vec<_> = s.calls.iter().map(|c| c.call_id.as_str()).collect();
    assert_eq!(order, ["c3", "c1", "c2", "c9"], "longest first");
}

#[test]
fn service_level_counts_answers_within_the_threshold_once() {
    let mut t = Tracker::new(Duration::from_secs(20));
    let day = day_start(NOW);
    let events = vec![
        event(1, NOW - 100_000, "sales", "a", "enqueue"),
        event(2, NOW - 95_000, "sales", "a", "answer"), // 5 s: in time
        event(3, NOW - 90_000, "sales", "b", "enqueue"),
        event(4, NOW - 60_000, "sales", "b", "answer"), // 30 s: late
        event(5, NOW - 50_000, "sales", "c", "enqueue"),
        event(6, NOW - 40_000, "sales", "c", "abandon"),
        event(7, NOW - 30_000, "sales", "d", "answer"), // enqueue never seen: late
        event(8, NOW - 20_000, "support", "e", "enqueue"),
        event(9, NOW - 10_000, "support", "e", "timeout"),
        event(10, NOW - 5_000, "sales", "b", "transfer"),
    ];
    assert!(day < NOW - 100_000, "fixture stays within one UTC day");
    t.apply(NOW, &[], &events);
    // The next read overlaps the previous one: nothing is counted twice.
    t.apply(NOW + 1_000, &[], &events[4..]);
    let sales = t.queue_day("sales");
    assert_eq!(
        sales,
        QueueDay {
            answered: 3,
            answered_in_time: 1,
            abandoned: 1,
            timed_out: 0,
            transferred: 1,
        }
    );
    assert_eq!(t.queue_day("support").timed_out, 1);
    let mut rows = rows();
    rows.events = events;
    let s = build(&cfg(), 1, NOW + 1_000, &rows, &t);
    assert_eq!(s.queues[0].answered_today, 3);
    assert_eq!(s.queues[0].abandoned_today, 1);
    assert_eq!(s.queues[0].transferred_today, 1);
    let sl = s.queues[0].service_level.unwrap_or(-1.0);
    assert!((sl - 1.0 / 3.0).abs() < 1e-9, "{sl}");
}

#[test]
fn the_recent_service_level_covers_fifteen_minutes_and_short_abandons_do_not_count() {
    let mut t = Tracker::new(Duration::from_secs(20));
    let events = vec![
        event(1, NOW - 20 * 60_000, "sales", "old", "enqueue"),
        event(2, NOW - 19 * 60_000, "sales", "old", "answer"), // late, but out of the window
        event(3, NOW - 100_000, "sales", "a", "enqueue"),
        event(4, NOW - 95_000, "sales", "a", "answer"), // 5 s: in time
        event(5, NOW - 90_000, "sales", "b", "enqueue"),
        event(6, NOW - 60_000, "sales", "b", "answer"), // 30 s: late
        event(7, NOW - 50_000, "sales", "c", "enqueue"),
        event(8, NOW - 45_000, "sales", "c", "abandon"), // 5 s: not counted
        event(9, NOW - 40_000, "sales", "d", "enqueue"),
        event(10, NOW - 10_000, "sales", "d", "abandon"), // 30 s: counted, late
        event(11, NOW - 20_000, "support", "e", "timeout"), // enqueue unseen: late
    ];
    t.apply(NOW, &[], &events);
    t.apply(NOW + 1_000, &[], &events[6..]);
    assert_eq!(
        t.queue_window("sales"),
        ServiceWindow {
            counted: 3,
            in_time: 1
        }
    );
    let mut rows = rows();
    rows.events = events;
    let s = build(&cfg(), 1, NOW + 1_000, &rows, &t);
    assert_eq!(s.queues[0].recent_calls, 3);
    let sl = s.queues[0].recent_service_level.unwrap_or(-1.0);
    assert!((sl - 1.0 / 3.0).abs() < 1e-9, "{sl}");
    assert_eq!(s.queues[1].recent_calls, 1);
    assert_eq!(s.queues[1].recent_service_level, Some(0.0));
    // Fifteen minutes later, every one of them has left the window.
    t.apply(NOW + 16 * 60_000, &[], &[]);
    assert_eq!(t.queue_window("sales"), ServiceWindow::default());
}

#[test]
fn counters_start_again_at_midnight_utc_but_remember_enqueues() {
    let mut t = Tracker::new(Duration::from_secs(20));
    let midnight = day_start(NOW) + DAY_MS;
    t.apply(
        midnight - 10_000,
        &[],
        &[
            event(1, midnight - 20_000, "sales", "a", "enqueue"),
            event(2, midnight - 15_000, "sales", "a", "abandon"),
            event(3, midnight - 12_000, "sales", "b", "enqueue"),
        ],
    );
    assert_eq!(t.queue_day("sales").abandoned, 1);
    // After midnight: yesterday's abandon is gone; b, enqueued before midnight and answered
    // 14 s later, is in time.
    t.apply(
        midnight + 5_000,
        &[],
        &[
            event(2, midnight - 15_000, "sales", "a", "abandon"),
            event(4, midnight + 2_000, "sales", "b", "answer"),
        ],
    );
    assert_eq!(
        t.queue_day("sales"),
        QueueDay {
            answered: 1,
            answered_in_time: 1,
            abandoned: 0,
            timed_out: 0,
            transferred: 0,
        }
    );
}

#[test]
fn reads_ask_only_for_new_rows_with_slack() {
    let mut t = Tracker::new(Duration::from_secs(20));
    assert_eq!(t.history_since(NOW), NOW - HISTORY_WINDOW_MS);
    assert_eq!(t.events_since(NOW), day_start(NOW) - ENQUEUE_LOOKBACK_MS);
    t.apply(NOW, &[], &[]);
    assert_eq!(t.history_since(NOW + 1_000), NOW - HISTORY_SLACK_MS);
    let events_since = t.events_since(NOW + 1_000);
    assert_eq!(
        events_since,
        (NOW - EVENT_SLACK_MS).max(day_start(NOW) - ENQUEUE_LOOKBACK_MS)
    );
}

/// What a read asks of the store returns, from the events stored so far (ids in store order).
fn stored_read(from: EventsFrom, stored: &[QueueEvent]) -> Vec<QueueEvent> {
    stored
        .iter()
        .filter(|e| match from {
            EventsFrom::Since(since) => e.at_ms >= since,
            EventsFrom::AfterId(after) => e.id > after,
        })
        .cloned()
        .collect()
}

#[test]
fn events_are_read_after_a_settled_id_and_a_late_write_counts_once() {
    let mut t = Tracker::new(Duration::from_secs(20));
    let mut stored = vec![event(1, NOW - 5_000, "sales", "a", "enqueue")];
    // Once a second for a minute; a late write at 20 s: an abandon of ten minutes ago
    // (after a database outage, through a node's spool), stored with the next id.
    let mut froms = Vec::new();
    for k in 0..60 {
        let now = NOW + k * 1_000;
        if k == 20 {
            stored.push(event(2, NOW - 600_000, "sales", "b", "abandon"));
        }
        let from = t.events_from(now);
        froms.push(from);
        t.apply(now, &[], &stored_read(from, &stored));
    }
    // By time (the first read looks back to before midnight) until the first read is settled,
    // then after its highest id, then after the late write's once its read is settled.
    assert_eq!(
        froms[0],
        EventsFrom::Since(day_start(NOW) - ENQUEUE_LOOKBACK_MS)
    );
    assert_eq!(froms[9], EventsFrom::Since(NOW + 8_000 - EVENT_SLACK_MS));
    assert!(
        froms[10..30].iter().all(|f| *f == EventsFrom::AfterId(1)),
        "{froms:?}"
    );
    assert!(
        froms[30..].iter().all(|f| *f == EventsFrom::AfterId(2)),
        "{froms:?}"
    );
    // Read ten times, counted once; a read by time would have missed it (ten minutes old).
    assert_eq!(t.queue_day("sales").abandoned, 1);
    assert_eq!(t.queue_window("sales").counted, 1);
}

#[test]
fn sparklines_keep_ten_minutes_in_sixty_buckets() {
    let mut t = Tracker::new(Duration::from_secs(20));
    let history = vec![
        point("main-a", NOW - HISTORY_WINDOW_MS - 1, 99), // too old: dropped
        point("main-a", NOW - HISTORY_WINDOW_MS + 1_000, 1),
        point("main-a", NOW - 5_000, 3),
        point("main-a", NOW - 4_000, 7),
        point("main-a", NOW, 2),
    ];
    t.apply(NOW, &history, &[]);
    // The next read repeats a point: same key, no duplicate.
    t.apply(NOW, &history[3..], &[]);
    let (calls, cpu) = t.sparks("main-a", NOW);
    assert_eq!(calls.len(), SPARK_POINTS);
    assert_eq!(calls[0], Some(1));
    assert_eq!(calls[59], Some(7), "max of the last bucket");
    assert_eq!(cpu[59], Some(70.0));
    assert_eq!(calls.iter().flatten().count(), 2);
    assert_eq!(t.sparks("nobody", NOW).0, vec![None; SPARK_POINTS]);
    // Ten minutes later everything has aged out.
    t.apply(NOW + HISTORY_WINDOW_MS + 1, &[], &[]);
    assert!(t.history.is_empty());
}

async fn memory_store() -> Store {
    let store = Store::connect("sqlite::memory:")
        .await
        .expect("in-memory SQLite");
    store.migrate().await.expect("migrate in-memory SQLite");
    store
}

#[tokio::test]
async fn queues_and_members_are_read_again_only_when_the_config_version_moves() {
    let store = memory_store().await;
    store
        .upsert_queue(&queue("sales"))
        .await
        .expect("add queue");
    store
        .upsert_agent(&Agent::new("1001", "Ann", "h", NOW))
        .await
        .expect("add agent");
    let tracker = Tracker::new(Duration::from_secs(20));
    let mut config = Config::default();
    let first = read(&store, &tracker, &mut config, NOW)
        .await
        .expect("read");
    assert_eq!(first.queues.len(), 1);
    assert_eq!(first.queues[0].rr_last, None);
    assert!(first.members.is_empty());
    // A runtime write (the round-robin mark) does not move the version: the queues are not
    // read again.
    assert!(store
        .set_rr_last("sales", "1001")
        .await
        .expect("set rr_last"));
    let second = read(&store, &tracker, &mut config, NOW + 1_000)
        .await
        .expect("read");
    assert_eq!(second.queues[0].rr_last, None, "kept from the first read");
    // A configuration write moves it: queues and members are read again.
    store
        .upsert_member(&member("sales", "1001"))
        .await
        .expect("add member");
    let third = read(&store, &tracker, &mut config, NOW + 2_000)
        .await
        .expect("read");
    assert_eq!(third.members, vec![member("sales", "1001")]);
    assert_eq!(third.queues[0].rr_last.as_deref(), Some("1001"));
}

/// Waits (bounded) for a frame matching `f`.
async fn next_frame(rx: &mut watch::Receiver<Frame>, f: impl Fn(&Frame) -> bool) -> Frame {
    let wait = async {
        loop {
            {
                let frame = rx.borrow_and_update();
                if f(&frame) {
                    return frame.clone();
                }
            }
            if rx.changed().await.is_err() {
                panic!("hub dropped");
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("frame within 10 s")
}

#[tokio::test]
async fn the_task_publishes_marks_stale_on_errors_and_closes_on_stop() {
    let store = memory_store().await;
    store
        .upsert_agent(&Agent::new("1001", "Ann <b>", "h", now_ms()))
        .await
        .expect("add agent");
    store
        .upsert_queue(&queue("sales"))
        .await
        .expect("add queue");
    let hub = Hub::new();
    let metrics = Metrics::new();
    let mut cfg = cfg();
    cfg.interval = Duration::from_millis(50);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run(
        hub.clone(),
        store.clone(),
        metrics.clone(),
        cfg,
        async move {
            let _ = stop_rx.await;
        },
    ));
    let mut rx = hub.subscribe();
    let frame = next_frame(&mut rx, |f| f.snapshot.is_some()).await;
    let snapshot = frame.snapshot.expect("snapshot");
    assert!(!snapshot.stale);
    assert_eq!(snapshot.agents.len(), 1);
    assert_eq!(snapshot.agents[0].name, "Ann <b>");
    assert_eq!(snapshot.queues[0].name, "sales");
    let json: serde_json::Value = serde_json::from_str(&frame.json).expect("frame JSON");
    assert_eq!(json["agents"][0]["state"], "logged_out");
    assert_eq!(json["seq"], snapshot.seq);
    let text = metrics.encode().expect("encode");
    assert!(
        text.contains("callfleet_agents{state=\"logged_out\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("callfleet_queue_waiting{queue=\"sales\"} 0"),
        "{text}"
    );

    store.close().await;
    let frame = next_frame(&mut rx, |f| f.snapshot.as_ref().is_some_and(|s| s.stale)).await;
    let stale = frame.snapshot.expect("stale snapshot");
    assert_eq!(stale.agents, snapshot.agents, "the last data is kept");
    assert!(stale.stale_since_ms.is_some());
    let text = metrics.encode().expect("encode");
    assert!(
        !text.contains("callfleet_panel_snapshot_read_errors_total 0"),
        "{text}"
    );

    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("task stops")
        .expect("task did not panic");
    assert!(hub.current().closing);
}
