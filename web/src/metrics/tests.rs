//! Tests for [`Metrics`]: label mapping and the encoded text after increments.

use std::time::Duration;

use super::{Metrics, Outcome, SipMethod};

/// The value of the sample line `name{labels}` (or bare `name`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

fn encoded(metrics: &Metrics) -> String {
    metrics.encode().expect("encode metrics")
}

#[test]
fn sip_method_names_map_to_bounded_labels() {
    let cases = [
        ("INVITE", SipMethod::Invite, "INVITE"),
        ("ACK", SipMethod::Ack, "ACK"),
        ("BYE", SipMethod::Bye, "BYE"),
        ("CANCEL", SipMethod::Cancel, "CANCEL"),
        ("OPTIONS", SipMethod::Options, "OPTIONS"),
        ("REGISTER", SipMethod::Register, "REGISTER"),
        ("invite", SipMethod::Other, "other"),
        ("SUBSCRIBE", SipMethod::Other, "other"),
        ("", SipMethod::Other, "other"),
    ];
    for (name, method, label) in cases {
        assert_eq!(SipMethod::from_name(name), method, "{name:?}");
        assert_eq!(method.as_str(), label, "{name:?}");
    }
}

#[test]
fn closed_label_sets_are_exported_at_zero() {
    let text = encoded(&Metrics::new());
    for outcome in Outcome::ALL {
        let series = format!("callfleet_calls_total{{outcome=\"{}\"}}", outcome.as_str());
        assert_eq!(sample(&text, &series), Some(0.0), "{series}\n{text}");
    }
    for method in SipMethod::ALL {
        let series = format!(
            "callfleet_sip_requests_total{{method=\"{}\"}}",
            method.as_str()
        );
        assert_eq!(sample(&text, &series), Some(0.0), "{series}\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[test]
fn increments_show_in_the_encoded_text() {
    let metrics = Metrics::new();
    let clone = metrics.clone();
    metrics.set_calls_active(7);
    metrics.call_outcome(Outcome::Answered);
    clone.call_outcome(Outcome::Answered);
    metrics.call_outcome(Outcome::Forbidden);
    metrics.redirect("main-b");
    metrics.redirect("main-b");
    metrics.redirect("extra-c");
    metrics.sip_request("INVITE");
    metrics.sip_request("INFO");
    metrics.sip_request("PUBLISH");
    metrics.sip_response(180);
    metrics.sip_response(200);
    metrics.sip_response(200);
    metrics.sip_response(42);
    metrics.sip_response(7000);
    metrics.sip_malformed();
    metrics.heartbeat_written(Duration::from_millis(3));
    metrics.heartbeat_written(Duration::from_millis(500));
    metrics.heartbeat_failed();
    let text = encoded(&metrics);

    let expected = [
        ("callfleet_calls_active", 7.0),
        ("callfleet_calls_total{outcome=\"answered\"}", 2.0),
        ("callfleet_calls_total{outcome=\"forbidden\"}", 1.0),
        ("callfleet_calls_total{outcome=\"refused\"}", 0.0),
        ("callfleet_redirects_total{target=\"main-b\"}", 2.0),
        ("callfleet_redirects_total{target=\"extra-c\"}", 1.0),
        ("callfleet_sip_requests_total{method=\"INVITE\"}", 1.0),
        ("callfleet_sip_requests_total{method=\"other\"}", 2.0),
        ("callfleet_sip_responses_total{status=\"180\"}", 1.0),
        ("callfleet_sip_responses_total{status=\"200\"}", 2.0),
        ("callfleet_sip_responses_total{status=\"0\"}", 2.0),
        ("callfleet_sip_malformed_total", 1.0),
        ("callfleet_heartbeat_write_seconds_count", 2.0),
        ("callfleet_heartbeat_write_seconds_sum", 0.503),
        (
            "callfleet_heartbeat_write_seconds_bucket{le=\"0.001\"}",
            0.0,
        ),
        (
            "callfleet_heartbeat_write_seconds_bucket{le=\"0.004\"}",
            1.0,
        ),
        (
            "callfleet_heartbeat_write_seconds_bucket{le=\"0.512\"}",
            2.0,
        ),
        (
            "callfleet_heartbeat_write_seconds_bucket{le=\"1.024\"}",
            2.0,
        ),
        ("callfleet_heartbeat_write_errors_total", 1.0),
    ];
    for (series, value) in expected {
        let got = sample(&text, series);
        assert!(
            got.is_some_and(|got| (got - value).abs() < 1e-9),
            "{series}: want {value}, got {got:?}\n{text}"
        );
    }
    assert!(
        text.contains("# UNIT callfleet_heartbeat_write_seconds seconds"),
        "{text}"
    );
}

#[test]
fn queue_gauges_follow_the_configured_queues() {
    use super::QueueGauges;
    let m = Metrics::new();
    let mut agents = [0i64; 7];
    agents[1] = 2;
    let sales = QueueGauges {
        queue: "sales",
        waiting: 3,
        longest_wait: Duration::from_millis(12_500),
        agents,
    };
    let support = QueueGauges {
        queue: "support",
        waiting: 0,
        longest_wait: Duration::ZERO,
        agents: [0; 7],
    };
    m.set_queues(&[sales.clone(), support]);
    m.set_agents(&[1, 2, 0, 0, 3, 0, 0]);
    let text = m.encode().expect("encode");
    for line in [
        "callfleet_queue_waiting{queue=\"sales\"} 3",
        "callfleet_queue_longest_wait_seconds{queue=\"sales\"} 12.5",
        "callfleet_queue_agents{queue=\"sales\",state=\"available\"} 2",
        "callfleet_queue_waiting{queue=\"support\"} 0",
        "callfleet_agents{state=\"in_call\"} 3",
        "callfleet_agents{state=\"paused\"} 0",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    // `support` was deleted from the configuration: its series go.
    m.set_queues(&[sales]);
    let text = m.encode().expect("encode");
    assert!(text.contains("queue=\"sales\""), "{text}");
    assert!(!text.contains("queue=\"support\""), "{text}");
}

#[test]
fn panel_reads_errors_and_viewers_are_counted() {
    let m = Metrics::new();
    m.panel_snapshot_read(true);
    m.panel_snapshot_read(false);
    let a = m.panel_viewer();
    let b = m.panel_viewer();
    drop(a);
    let text = m.encode().expect("encode");
    for line in [
        "callfleet_panel_snapshot_reads_total 2",
        "callfleet_panel_snapshot_read_errors_total 1",
        "callfleet_panel_viewers 1",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    drop(b);
}

#[test]
fn leg_quality_histograms_have_the_buckets_the_alert_rules_use() {
    let m = Metrics::new();
    m.media().observe(0.05, 0.007);
    m.media().observe(0.0, 0.0012);
    let text = encoded(&m);
    let at = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}:\n{text}"));
    assert_eq!(at("callfleet_rtp_loss_ratio_count"), 2.0);
    // docs/alerts.rules.yml counts the legs over 2 % loss from this bucket.
    assert_eq!(at("callfleet_rtp_loss_ratio_bucket{le=\"0.02\"}"), 1.0);
    assert_eq!(at("callfleet_rtp_loss_ratio_bucket{le=\"0.0\"}"), 1.0);
    assert_eq!(at("callfleet_rtp_jitter_seconds_bucket{le=\"0.002\"}"), 1.0);
    assert_eq!(at("callfleet_rtp_jitter_seconds_bucket{le=\"0.008\"}"), 2.0);
    assert_eq!(at("callfleet_rtp_jitter_seconds_count"), 2.0);
}
