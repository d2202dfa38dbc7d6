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

#[test]
fn recordings_and_voicemail_get_players_and_escaped_names() {
    use callfleet_store::{RecordingFormat, RecordingRow, Voicemail};
    let rec = RecordingRow {
        id: 7,
        uid: "n/x".into(),
        node: "main-a".into(),
        call_id: "c<i>1".into(),
        queue: Some("sales".into()),
        agent: Some("1001".into()),
        caller: "+1555".into(),
        path: "/r/x.mp3".into(),
        format: RecordingFormat::Mp3,
        duration_ms: 9_360,
        size_bytes: 37_000,
        dropped_frames: 0,
        started_at_ms: 0,
        created_at_ms: 60_000,
    };
    let vm = Voicemail {
        id: 3,
        agent: "1001".into(),
        caller: "\"bob\"".into(),
        path: "/v/1.wav".into(),
        duration_ms: 4_000,
        created_at_ms: 0,
        node: "main-b".into(),
    };
    let mut page = view(chrome(), &[], 120_000);
    page.sections.push(recordings_section(&[rec], 120_000));
    page.sections.push(voicemail_section(&[vm], 120_000));
    let html = page.html();
    for want in [
        "<audio controls preload=\"metadata\" src=\"/recordings/7/audio\"",
        "aria-label=\"Recording of call c&lt;i&gt;1\"",
        "<td>9.4 s</td>",
        "<td>MP3</td>",
        "<audio controls preload=\"metadata\" src=\"/voicemails/3/audio\"",
        "Voicemail for 1001 from &quot;bob&quot;",
    ] {
        assert!(html.contains(want), "{want} in\n{html}");
    }
    assert!(!html.contains("c<i>1"), "escaped");
    let empty = recordings_section(&[], 0);
    assert_eq!(
        empty.table.map(|t| t.empty),
        Some("No recording yet.".into())
    );
}
