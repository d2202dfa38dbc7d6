use super::*;

fn report(name: &str, calls: u32, capacity: u32) -> NodeReport {
    NodeReport {
        name: name.to_owned(),
        role: Role::Extra,
        sip: "127.0.0.1:5060".parse().expect("addr"),
        http: "127.0.0.1:8080".parse().expect("addr"),
        alive: true,
        accepting: true,
        responding: true,
        calls,
        capacity,
        pending: 0,
        cpu: 10.0,
        load1: 0.1,
        shed_level: 0,
        draining: false,
        refusing: false,
        heartbeat_age_ms: 100,
        generation: 1,
        services: String::new(),
        version: "0.1.0".into(),
        mem_used_kb: 0,
        mem_total_kb: 0,
    }
}

#[test]
fn utilisation_counts_the_nodes_that_take_calls() {
    let load = |nodes: Vec<NodeReport>| utilisation(&nodes);
    let base = || vec![report("a", 40, 100), report("b", 60, 100)];
    assert_eq!(
        load(base()),
        Some(Load {
            calls: 100,
            capacity: 200,
            nodes: 2
        })
    );
    let mut dead = base();
    dead.push(NodeReport {
        alive: false,
        ..report("c", 0, 500)
    });
    assert_eq!(
        load(dead).map(|l| l.ratio()),
        Some(0.5),
        "a dead node is no capacity"
    );
    let mut draining = base();
    draining.push(NodeReport {
        draining: true,
        ..report("c", 300, 500)
    });
    assert_eq!(
        load(draining).map(|l| l.ratio()),
        Some(0.5),
        "nor a draining one, nor its calls"
    );
    let mut silent = base();
    silent.push(NodeReport {
        responding: false,
        ..report("c", 0, 500)
    });
    assert_eq!(
        load(silent).map(|l| l.ratio()),
        Some(0.5),
        "nor one that misses probes"
    );
    let mut refusing = base();
    refusing.push(NodeReport {
        refusing: true,
        ..report("c", 5, 200)
    });
    assert_eq!(
        load(refusing),
        Some(Load {
            calls: 300,
            capacity: 400,
            nodes: 3
        }),
        "a refusing node has no room left"
    );
    let over = vec![report("a", 130, 100)];
    assert_eq!(
        load(over).map(|l| l.ratio()),
        Some(1.0),
        "calls over capacity count as full"
    );
    assert_eq!(load(vec![]), None);
    assert_eq!(
        load(vec![NodeReport {
            draining: true,
            ..report("a", 1, 1)
        }]),
        None
    );
    assert_eq!(
        Load {
            calls: 0,
            capacity: 0,
            nodes: 0
        }
        .ratio(),
        1.0
    );
}

#[test]
fn the_trigger_acts_once_utilisation_stayed_above_for_the_duration() {
    let mut t = Trigger::new(0.8, Duration::from_secs(60));
    // (seconds, utilisation, expected step)
    let s = 1000;
    let script: &[(i64, Option<f64>, Step)] = &[
        (0, Some(0.5), Step::Below),
        (10, Some(0.81), Step::Busy { for_ms: 0 }),
        (40, Some(0.95), Step::Busy { for_ms: 30 * s }),
        // At the threshold is not above it: the spell is broken.
        (50, Some(0.8), Step::Below),
        (60, Some(0.9), Step::Busy { for_ms: 0 }),
        // A view with nothing to judge breaks it too.
        (70, None, Step::Below),
        (80, Some(0.9), Step::Busy { for_ms: 0 }),
        (139, Some(0.9), Step::Busy { for_ms: 59 * s }),
        (140, Some(0.9), Step::Act { for_ms: 60 * s }),
    ];
    for &(at, u, want) in script {
        assert_eq!(t.step(at * s, u), want, "at {at} s, {u:?}");
    }
}

#[test]
fn after_acting_the_trigger_cools_down_and_needs_a_whole_spell_again() {
    let s = 1000;
    let mut t = Trigger::new(0.5, Duration::from_secs(10));
    assert_eq!(t.step(0, Some(0.9)), Step::Busy { for_ms: 0 });
    assert_eq!(t.step(10 * s, Some(0.9)), Step::Act { for_ms: 10 * s });
    t.acted(10 * s, Duration::from_secs(600));
    assert_eq!(t.step(11 * s, Some(0.9)), Step::Busy { for_ms: 0 });
    // Busy all through the cooldown: still quiet until it ends, then it acts again.
    assert_eq!(t.step(300 * s, Some(0.9)), Step::Busy { for_ms: 289 * s });
    assert_eq!(t.step(609 * s, Some(0.9)), Step::Busy { for_ms: 598 * s });
    assert_eq!(t.step(610 * s, Some(0.9)), Step::Act { for_ms: 599 * s });
}

#[test]
fn a_lease_held_elsewhere_means_asking_again_later_without_losing_the_spell() {
    let s = 1000;
    let mut t = Trigger::new(0.5, Duration::from_secs(10));
    t.step(0, Some(0.9));
    assert_eq!(t.step(10 * s, Some(0.9)), Step::Act { for_ms: 10 * s });
    t.retry(10 * s, RETRY);
    assert_eq!(t.step(12 * s, Some(0.9)), Step::Busy { for_ms: 12 * s });
    assert_eq!(t.step(15 * s, Some(0.9)), Step::Act { for_ms: 15 * s });
    // Load gone meanwhile: nothing to do, whatever the retry said.
    t.retry(15 * s, RETRY);
    assert_eq!(t.step(30 * s, Some(0.2)), Step::Below);
    assert_eq!(t.step(31 * s, Some(0.9)), Step::Busy { for_ms: 0 });
}

#[test]
fn the_webhook_is_signed_with_the_cluster_secret() {
    let load = Load {
        calls: 14,
        capacity: 20,
        nodes: 2,
    };
    let body = webhook_body("main-a", load, 0.5, 1_700_000_000_000);
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["event"], "scale_out");
    assert_eq!(json["node"], "main-a");
    assert_eq!(json["utilisation"], 0.7);
    assert_eq!(json["calls"], 14);
    assert_eq!(json["capacity"], 20);
    assert_eq!(json["nodes"], 2);
    assert_eq!(json["threshold"], 0.5);
    // RFC 4231 test case 2.
    assert_eq!(
        signature("Jefe", "what do ya want for nothing?").as_deref(),
        Some("sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    );
}
