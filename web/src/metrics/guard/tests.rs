use crate::metrics::guard::{AuthKind, BanScope, BusyOutcome};
use crate::Metrics;

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
}

#[test]
fn every_label_set_is_exported_at_zero_and_counts() {
    let m = Metrics::new();
    let text = m.encode().expect("encodes");
    for kind in ["register", "invite", "pin"] {
        let f = format!("callfleet_auth_failures_total{{kind=\"{kind}\"}}");
        assert_eq!(value(&text, &f), Some(0.0), "{f}\n{text}");
        let r = format!("callfleet_auth_refused_total{{kind=\"{kind}\"}}");
        assert_eq!(value(&text, &r), Some(0.0), "{r}");
        for scope in ["source", "subject"] {
            let b = format!("callfleet_auth_bans_total{{kind=\"{kind}\",scope=\"{scope}\"}}");
            assert_eq!(value(&text, &b), Some(0.0), "{b}");
        }
        for outcome in ["admitted", "refused"] {
            let b = format!("callfleet_auth_busy_total{{kind=\"{kind}\",outcome=\"{outcome}\"}}");
            assert_eq!(value(&text, &b), Some(0.0), "{b}");
        }
    }
    assert_eq!(value(&text, "callfleet_rtp_ignored_total"), Some(0.0));
    assert_eq!(value(&text, "callfleet_voicemail_full_total"), Some(0.0));

    let g = m.guard();
    g.auth_failure(AuthKind::Pin);
    g.auth_failure(AuthKind::Pin);
    g.auth_ban(AuthKind::Register, BanScope::Subject);
    g.auth_refused(AuthKind::Invite);
    g.auth_busy(AuthKind::Register, BusyOutcome::Admitted);
    g.auth_busy(AuthKind::Register, BusyOutcome::Admitted);
    g.auth_busy(AuthKind::Register, BusyOutcome::Refused);
    g.rtp_ignored().inc_by(3);
    g.voicemail_full();
    let text = m.encode().expect("encodes");
    let cases = [
        ("callfleet_auth_failures_total{kind=\"pin\"}", 2.0),
        ("callfleet_auth_failures_total{kind=\"register\"}", 0.0),
        (
            "callfleet_auth_bans_total{kind=\"register\",scope=\"subject\"}",
            1.0,
        ),
        ("callfleet_auth_refused_total{kind=\"invite\"}", 1.0),
        (
            "callfleet_auth_busy_total{kind=\"register\",outcome=\"admitted\"}",
            2.0,
        ),
        (
            "callfleet_auth_busy_total{kind=\"register\",outcome=\"refused\"}",
            1.0,
        ),
        (
            "callfleet_auth_busy_total{kind=\"invite\",outcome=\"refused\"}",
            0.0,
        ),
        ("callfleet_rtp_ignored_total", 3.0),
        ("callfleet_voicemail_full_total", 1.0),
    ];
    for (series, want) in cases {
        assert_eq!(value(&text, series), Some(want), "{series}");
    }
}
