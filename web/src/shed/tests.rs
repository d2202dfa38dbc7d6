use super::*;

fn peer(name: &str, level: u8, utilisation: f32, cpu: f32) -> Peer {
    Peer {
        name: name.to_owned(),
        base: format!("http://{name}.example:8080"),
        level,
        utilisation,
        cpu_pct: cpu,
        alive: true,
        draining: false,
    }
}

#[test]
fn the_least_loaded_idle_peer_is_chosen() {
    let dead = Peer {
        alive: false,
        ..peer("dead", 0, 0.0, 0.0)
    };
    let draining = Peer {
        draining: true,
        ..peer("draining", 0, 0.0, 0.0)
    };
    // (view, chosen)
    let cases: Vec<(Vec<Peer>, Option<&str>)> = vec![
        (vec![], None),
        (vec![peer("a", 1, 0.0, 0.0)], None),
        (
            vec![peer("a", 1, 0.9, 90.0), peer("b", 0, 0.5, 10.0)],
            Some("b"),
        ),
        (
            vec![peer("b", 0, 0.5, 10.0), peer("c", 0, 0.2, 60.0)],
            Some("c"),
        ),
        (
            vec![peer("b", 0, 0.2, 30.0), peer("c", 0, 0.2, 10.0)],
            Some("c"),
        ),
        (
            vec![peer("c", 0, 0.2, 10.0), peer("b", 0, 0.2, 10.0)],
            Some("b"),
        ),
        (vec![peer("b", 2, 0.0, 0.0), peer("c", 1, 0.0, 0.0)], None),
        (vec![dead.clone(), draining.clone()], None),
        (vec![dead, draining, peer("e", 0, 0.99, 69.0)], Some("e")),
        // Never itself, even when its row says idle (its gate is newer than its row).
        (vec![peer("a", 0, 0.0, 0.0)], None),
    ];
    for (peers, want) in cases {
        let got = choose("a", &peers).map(|p| p.name.as_str());
        assert_eq!(got, want, "{peers:?}");
    }
}

#[test]
fn heavy_reports_are_served_sent_on_or_refused() {
    let view = [peer("a", 1, 0.8, 0.0), peer("b", 0, 0.1, 5.0)];
    let busy = [peer("a", 1, 0.8, 0.0), peer("b", 2, 0.1, 5.0)];
    let sent = |url: &str| Verdict::Redirect {
        to: "b".into(),
        url: url.into(),
    };
    // (level, view, path, query, verdict)
    let cases = [
        (0, &view, "/reports/queues", "", Verdict::Serve),
        (0, &view, "/reports/queues", "shed_from=b", Verdict::Serve),
        (
            1,
            &view,
            "/reports/queues",
            "",
            sent("http://b.example:8080/reports/queues?shed_from=a"),
        ),
        (
            2,
            &view,
            "/reports/callers.csv",
            "from=2026-01-01&number=%2B15551234567",
            sent("http://b.example:8080/reports/callers.csv?from=2026-01-01&number=%2B15551234567&shed_from=a"),
        ),
        (1, &busy, "/reports/queues", "", Verdict::Refuse),
        // Sent here already: answered or refused, never bounced again.
        (1, &view, "/reports/queues", "tz=UTC&shed_from=b", Verdict::Refuse),
        (3, &view, "/reports/cdrs.csv", "shed_from=c", Verdict::Refuse),
    ];
    for (level, peers, path, query, want) in cases {
        assert_eq!(
            decide(level, "a", peers, path, query),
            want,
            "{level} {path}?{query}"
        );
    }
}

#[test]
fn the_marker_is_recognised_and_stripped() {
    // (query, sent, stripped)
    let cases = [
        ("", false, ""),
        ("shed_from=a", true, ""),
        (
            "from=2026-01-01&shed_from=a&tz=UTC",
            true,
            "from=2026-01-01&tz=UTC",
        ),
        ("shed_from", true, ""),
        ("shed_fromage=1", false, "shed_fromage=1"),
        ("q=shed_from", false, "q=shed_from"),
        ("a=1&&b=2", false, "a=1&b=2"),
    ];
    for (query, sent, stripped) in cases {
        assert_eq!(was_sent(query), sent, "{query}");
        assert_eq!(strip_marker(query), stripped, "{query}");
    }
}

#[test]
fn a_refusal_says_when_to_come_back_in_the_callers_terms() {
    let accept = |v: &'static str| {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(v));
        h
    };
    let cases = [
        (
            accept("text/html,application/xhtml+xml,*/*;q=0.8"),
            Body::Html,
            "text/html",
        ),
        (accept("application/json"), Body::Json, "application/json"),
        (accept("text/csv"), Body::Text, "text/plain"),
        (HeaderMap::new(), Body::Text, "text/plain"),
    ];
    for (headers, body, content_type) in cases {
        assert_eq!(body_for(&headers), body);
        let r = refuse(&headers, Duration::from_secs(30));
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "30");
        let ct = r.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert!(ct.starts_with(content_type), "{ct}");
    }
    let r = refuse(&HeaderMap::new(), Duration::from_millis(10));
    assert_eq!(r.headers()[header::RETRY_AFTER], "1", "at least a second");
}
