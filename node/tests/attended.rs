//! Attended transfer from the agent's phone (RFC 3891 Replaces in a REFER, RFC 5589 §7): a
//! caller (our UAC, 1000 Hz) queued in `sales` is answered by agent 1001 on a phone made of raw
//! SIP (600 Hz). That phone calls agent 1002's extension (call B; 1002 is a baresip phone,
//! 800 Hz), then sends REFER in the queued call's dialog with
//! `Refer-To: <sip:1002@node?Replaces=B;to-tag=NODE;from-tag=PHONE>`. Before that, REFERs whose
//! Replaces name another phone's call (phone 2004 calling agent 1003), a dialog with swapped
//! tags, or no dialog at all, are refused and the caller keeps hearing 1001, whether the
//! Refer-To names the node's address or the cluster's domain (`sip.domains`; the node is the
//! cluster's only one, so no other node is asked); a Refer-To naming another DNS name is refused
//! 403. The good one, naming the domain, is
//! accepted: the phone gets the NOTIFYs and a BYE on both its dialogs, the caller hears agent
//! 1002, agent 1001 is available again, the caller's CDR keeps 1001 and call B's CDR ends
//! `replaced`. The queue records every call: the conversation with 1001 and the one with 1002
//! are recorded apart, each naming its agent.

mod support;

use std::time::{Duration, Instant};

use callfleet::now_ms;
use callfleet_store::{AgentState, Queue, RecordingPolicy};
use support::audio::{heard, share};
use support::phone::device_add;
use support::pump::Pump;
use support::queue::{queue, DOMAIN};
use support::raw_agent::RawAgent;
use support::raw_phone::RawPhone;
use support::transfer::{hears, labels, setup, CALLER_TONE, TONE_1, TONE_2};
use support::uac::{header, Uac};
use support::{serial, wait_until};

const NET: &str = "127.0.84";

fn ip(n: u8) -> String {
    format!("{NET}.{n}")
}

/// The node's tag in the To header of `resp` (our call's 200 OK).
fn to_tag(text: &str) -> String {
    header(text, "To")
        .and_then(|to| to.split(";tag=").nth(1).map(str::to_string))
        .unwrap_or_default()
}

/// A REFER's Refer-To line naming agent 1002 at the node and Replaces
/// `call_id;to-tag;from-tag`.
fn replaces(call_id: &str, to: &str, from: &str) -> String {
    replaces_at(&ip(1), call_id, to, from)
}

/// The same naming agent 1002 at `host`.
fn replaces_at(host: &str, call_id: &str, to: &str, from: &str) -> String {
    format!(
        "Refer-To: <sip:1002@{host}?Replaces={call_id}%3Bto-tag%3D{to}%3Bfrom-tag%3D{from}>\r\n"
    )
}

#[test]
fn the_agent_hands_its_caller_to_the_colleague_it_called() {
    let _serial = serial();
    let (s, raw) = setup(NET, "attended", true);
    let (node, db, pg) = (&s.node, &s.db, &s.pg);
    let phone = raw.expect("the raw phone 2001");
    db.add_queue(&Queue {
        recording: RecordingPolicy::Always,
        ..queue("sales", "ringall")
    });
    db.wait_reloaded(node);
    // Phone 2004, of no agent, raw too: its call is another phone's.
    device_add(node, "2004", "pw-agent", false);
    let mut other = RawPhone::new(&ip(31), node.sip, "2004", "pw-agent");
    let r = other.register().expect("an answer to the REGISTER");
    assert_eq!(r.status, 200, "{}", r.text);

    let since = now_ms();
    let mut caller = Uac::new(&ip(20), node.sip);
    let ok = caller
        .answered("sales", "att-a", Duration::from_secs(5))
        .expect("the node answers the queue call");
    let to = Uac::media_addr(&ok);
    let rtp = std::net::UdpSocket::bind(format!("{}:0", ip(30))).expect("bind RTP");
    let rtp_addr = rtp.local_addr().expect("addr");
    let mut ringing = Some(std::thread::spawn(move || {
        RawAgent::answer(phone, rtp_addr)
    }));
    let (mut raw, mut pump) = (None::<RawAgent>, None::<Pump>);
    let (mut phase, mut at, mut marks) = (0, Instant::now(), vec![]);
    let (mut calls, mut refused, mut accepted) = (vec![], vec![], 0);
    let mut got: Vec<String> = vec![];
    let frames = caller.listen(Some((to, CALLER_TONE)), Duration::from_secs(60), |f| {
        match phase {
            0 if ringing.as_ref().is_some_and(|t| t.is_finished()) => {
                let agent = ringing
                    .take()
                    .map(|t| t.join().expect("the raw agent answers"))
                    .expect("ringing");
                let sock = rtp.try_clone().expect("clone the RTP socket");
                pump = Some(Pump::start(sock, Some(agent.node_media), TONE_1));
                raw = Some(agent);
                phase = 1;
            }
            1 if hears(f, TONE_1) => {
                let Some(agent) = raw.as_mut() else {
                    return true;
                };
                // Call B: agent 1001's phone calls agent 1002; phone 2004 calls agent 1003.
                let b = agent.phone.call("1002", "2001", "att-b", true);
                let c = other.call("1003", "2004", "att-c", true);
                let (b, c) = (b.last().cloned(), c.last().cloned());
                calls = vec![
                    b.as_ref().map_or(0, |r| r.status),
                    c.as_ref().map_or(0, |r| r.status),
                ];
                // Both bridged (their agents in a call) before their dialogs are named.
                let talking = || {
                    ["1002", "1003"]
                        .iter()
                        .all(|a| db.agent(a).state == AgentState::InCall)
                };
                wait_until(Duration::from_secs(10), talking);
                let (b, c) = (b.map(|r| r.text), c.map(|r| r.text));
                let (b, c) = (b.unwrap_or_default(), c.unwrap_or_default());
                let (tb, tc) = (to_tag(&b), to_tag(&c));
                for extra in [
                    replaces("att-c", &tc, "fatt-c"),
                    replaces("att-b", "fatt-b", &tb),
                    replaces("att-zz", &tb, "fatt-b"),
                    replaces("att-b", &tb, "fatt-b")
                        .replace("%3Bfrom-tag", "%3Bearly-only%3Bfrom-tag"),
                    replaces_at(DOMAIN, "att-c", &tc, "fatt-c"),
                    replaces_at(DOMAIN, "att-zz", &tb, "fatt-b"),
                    replaces_at("pbx.example.org", "att-b", &tb, "fatt-b"),
                ] {
                    let r = agent.request("REFER", &extra, false);
                    refused.push(r.map_or(0, |r| r.status));
                }
                (phase, at) = (2, Instant::now());
                marks.push(f.len());
                // The good REFER, kept for the next phase.
                got.push(replaces_at(DOMAIN, "att-b", &tb, "fatt-b"));
            }
            2 if at.elapsed() >= Duration::from_secs(2) => {
                let Some(agent) = raw.as_mut() else {
                    return true;
                };
                let extra = got.pop().unwrap_or_default();
                let r = agent.request("REFER", &extra, false);
                accepted = r.map_or(0, |r| r.status);
                // The NOTIFYs and BYE of call A, the BYE of call B (bounded).
                for _ in 0..12 {
                    let Some(req) = agent.phone.uac.answer_any(Duration::from_secs(3)) else {
                        break;
                    };
                    let method = req.split(' ').next().unwrap_or_default().to_string();
                    let line = format!(
                        "{method} {} {}",
                        header(&req, "Call-ID").unwrap_or_default(),
                        req.split("\r\n\r\n").nth(1).unwrap_or("").trim()
                    );
                    if !got.contains(&line) {
                        got.push(line);
                    }
                    if got.iter().filter(|l| l.starts_with("BYE ")).count() == 2 {
                        break;
                    }
                }
                (phase, at) = (3, Instant::now());
                marks.push(f.len());
            }
            3 if hears(f, TONE_2) => (phase, at) = (4, Instant::now()),
            4 => return at.elapsed() >= Duration::from_secs(1),
            _ => {}
        }
        false
    });
    caller.in_dialog("BYE", "att-a", &ok, None);
    if let Some(p) = pump.take() {
        p.stop();
    }
    let l = labels(&frames);
    eprintln!("caller heard: {}", heard(&l));
    assert_eq!(calls, [200, 200], "calls B and C are answered");
    assert_eq!(
        refused,
        [403, 481, 481, 486, 403, 481, 403],
        "another phone's call, swapped tags, no such call, early-only; by the domain: another \
         phone's call, no such call; another DNS name"
    );
    let kept = &l[marks[0]..marks[1]];
    assert!(
        share(kept, TONE_1) > 0.95,
        "after refused REFERs the caller keeps agent 1001: {}",
        heard(kept)
    );
    assert_eq!(accepted, 202, "the attended transfer is accepted");
    let a = raw.as_ref().map(|r| r.call_id.clone()).unwrap_or_default();
    for want in [
        format!("NOTIFY {a} SIP/2.0 100 Trying"),
        format!("NOTIFY {a} SIP/2.0 200 OK"),
        format!("BYE {a} "),
        "BYE att-b ".to_string(),
    ] {
        assert!(
            got.iter().any(|g| format!("{g} ").starts_with(&want)),
            "{want:?} not in {got:?}"
        );
    }
    assert_eq!(phase, 4, "the caller never heard agent 1002: {}", heard(&l));
    assert!(
        db.wait_available(&["1001", "1002"], Duration::from_secs(15)),
        "both agents free again"
    );
    let cdr = |call_id: &str| {
        let sql = format!(
            "SELECT coalesce(agent, ''), coalesce(queue, ''), hangup_cause \
             FROM cdrs WHERE call_id = '{call_id}'"
        );
        let mut rows = vec![];
        wait_until(Duration::from_secs(10), || {
            rows = pg.query(&sql);
            !rows.is_empty()
        });
        rows
    };
    assert_eq!(cdr("att-a"), ["1001|sales|normal"], "the caller's CDR");
    assert_eq!(
        cdr("att-b")[0].split('|').nth(2),
        Some("replaced"),
        "call B's CDR"
    );
    // Each conversation recorded on its own: 1001's until the transfer, then 1002's.
    let sql = "SELECT coalesce(agent, '') FROM recordings WHERE call_id = 'att-a' ORDER BY id";
    let mut recorded = vec![];
    wait_until(Duration::from_secs(15), || {
        recorded = pg.query(sql);
        recorded.len() >= 2
    });
    assert_eq!(recorded, ["1001", "1002"], "the call's recordings");
    let events: Vec<String> = db
        .events(since)
        .into_iter()
        .filter(|e| e.call_id == "att-a")
        .map(|e| format!("{} {}", e.event.as_str(), e.detail.unwrap_or_default()))
        .collect();
    assert!(
        events.contains(&"transfer agent:1002".to_string()),
        "{events:?}"
    );
}
