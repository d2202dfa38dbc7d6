use callfleet_store::{CallLeg, LegQualityRow};

use super::*;

fn leg(call_id: &str, leg: CallLeg, ended_at_ms: i64) -> LegQualityRow {
    LegQualityRow {
        node: "main-a".into(),
        call_id: call_id.into(),
        started_at_ms: 0,
        leg,
        ended_at_ms,
        codec: "PCMU".into(),
        packets_in: 570,
        bytes_in: 98_040,
        packets_out: 600,
        bytes_out: 103_200,
        expected: 600,
        lost: 30,
        duplicates: 0,
        out_of_order: 0,
        jitter_us: 7_541,
        jitter_max_us: 11_176,
        longest_gap_ms: 59,
        rtcp_sent: 2,
        rtcp_received: 0,
        peer_fraction_lost: None,
        peer_lost: None,
        peer_jitter_us: None,
        rtt_us: None,
    }
}

fn chrome() -> Chrome {
    Chrome {
        title: "Calls".into(),
        area: Area::Calls,
        user: Some("sue".into()),
        csrf: Some("t".into()),
        admin: false,
        script: None,
    }
}

#[test]
fn legs_are_listed_newest_first_with_their_figures_escaped() {
    let old = leg("old<b>@h", CallLeg::Caller, 1_000);
    let new = LegQualityRow {
        peer_fraction_lost: Some(64),
        peer_jitter_us: Some(1_125),
        rtt_us: Some(320),
        ..leg("new@h", CallLeg::Agent, 120_000)
    };
    let html = view(chrome(), &[old, new], 181_000).html();
    let first = html.find("leg-new@h-agent").expect("the newest leg");
    let second = html
        .find("leg-old&lt;b&gt;@h-caller")
        .expect("the older leg, escaped");
    assert!(first < second, "newest first");
    for want in [
        "<td>1 min ago</td>",
        "<td>3 min ago</td>",
        "<td>30 (5.00 %)</td>",
        "<td>7.5 ms</td>",
        "<td>59 ms</td>",
        "<td>25.0 %</td>",
        "<td>1.1 ms</td>",
        "<td>0.3 ms</td>",
        "<td>–</td>",
        "aria-current=\"page\"",
        "href=\"/calls/old%3Cb%3E@h/trace\"",
    ] {
        assert!(html.contains(want), "{want} in\n{html}");
    }
    assert!(!html.contains("old<b>"), "escaped");
    assert!(
        html.contains("<a href=\"/calls\" aria-current=\"page\">Calls</a>"),
        "{html}"
    );
    let empty = view(chrome(), &[], 0).html();
    assert!(empty.contains("No call leg ended in the last 24 hours."));
}
