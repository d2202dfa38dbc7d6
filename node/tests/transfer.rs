//! Blind transfer from the agent's phone: a caller (our UAC, sending 1000 Hz) queued in
//! `sales` is answered by agent 1001 (600 Hz). On a baresip phone, its transfer (`transfer`,
//! a REFER) to agent 1002's extension (800 Hz) hands the caller on, on its own dialog: it
//! hears agent 1002, agent 1001 is free again (a second call reaches it), and the records say
//! what docs/operations.md says (one CDR, answered by 1001 in `sales`; a `transfer` queue
//! event with its target, then 1001's `complete`); a REFER with the caller's Call-ID but
//! another dialog's tags is refused 481. A transfer to the queue `support` reaches its agent
//! 1003 (1200 Hz). A transfer whose Refer-To names the cluster's SIP domain
//! (`sip:1002@pbx.example.com`, `sip.domains`) reaches agent 1002 as one naming the node's
//! address does. A phone made of raw SIP sends the REFERs baresip will not (baresip hangs up
//! after a refused transfer): each bogus one (another DNS name among them) is refused and the
//! call keeps its audio; the good one gets its NOTIFYs and the node's BYE.

mod support;

use std::time::{Duration, Instant};

use callfleet::now_ms;
use support::audio::{heard, share};
use support::queue::DOMAIN;
use support::raw_agent::{Pickup, RawAgent};
use support::transfer::{
    call_events, cdr, hears, raw_transfer, setup, Caller, Setup, TONE_1, TONE_2, TONE_3,
};
use support::uac::{header, Uac};
use support::{serial, wait_until};

const NET: &str = "127.0.81";

fn ip(n: u8) -> String {
    format!("{NET}.{n}")
}

/// The call's records once `completes` of its queue segments completed: the queue events of
/// `call_id` (queue, kind, agent, detail) and its CDR row.
fn records(s: &Setup, call_id: &str, since: i64, completes: usize) -> (Vec<String>, Vec<String>) {
    let columns = "agent, queue, hangup_cause, answered_at_ms IS NOT NULL";
    let cdr = cdr(&s.pg, call_id, columns);
    let mut ev = vec![];
    wait_until(Duration::from_secs(10), || {
        ev = call_events(&s.db, since, call_id);
        ev.iter().filter(|e| e.contains(" complete ")).count() >= completes
    });
    (ev, cdr)
}

#[test]
fn the_agent_transfers_blind_to_another_agent() {
    let _serial = serial();
    let (s, _) = setup(NET, "transfer_agent", false);
    let (node, agent1) = (&s.node, &s.phones[0]);
    let since = now_ms();
    let mut caller = Caller::queued(&ip(20), node.sip, "xfer-1");
    let intruder = Uac::new(&ip(21), node.sip);

    // Phases, driven from the caller's listening loop: a forged REFER once the caller hears
    // agent 1001, 2 s of conversation, then the transfer to 1002, 2 s of 1002.
    let (mut phase, mut at, mut marks) = (0, Instant::now(), vec![]);
    let mut forged = 0;
    let frames = caller.listen(Duration::from_secs(50), |f| {
        match phase {
            0 if hears(f, TONE_1) => {
                forged = intruder.foreign("REFER", "xfer-1", "Refer-To: <sip:1002@127.0.81.1>\r\n");
                (phase, at) = (1, Instant::now());
                marks.push(f.len());
            }
            1 if at.elapsed() >= Duration::from_secs(2) => {
                let r = agent1.command("transfer", "sip:1002@127.0.81.1");
                assert_eq!(r["ok"], true, "transfer: {r}\n{}", agent1.log());
                (phase, at) = (2, Instant::now());
                marks.push(f.len());
            }
            2 if hears(f, TONE_2) => (phase, at) = (3, Instant::now()),
            3 => return at.elapsed() >= Duration::from_secs(2),
            _ => {}
        }
        false
    });
    let l = caller.hang_up(&frames);
    assert_eq!(
        phase,
        3,
        "the transfer did not reach agent 1002: {}\n{}",
        heard(&l),
        agent1.log()
    );
    assert_eq!(forged, 481, "a REFER with another dialog's tags is refused");
    let kept = &l[marks[0]..marks[1]];
    assert!(
        share(kept, TONE_1) > 0.95,
        "after the forged REFER the call keeps its audio: {}",
        heard(kept)
    );
    // Transferred: 1001 is never heard again (after 0.5 s for the REFER), 1002 is.
    let after = &l[marks[1] + 25..];
    assert_eq!(share(after, TONE_1), 0.0, "{}", heard(after));
    assert!(share(after, TONE_2) > 0.3, "{}", heard(after));

    let (events, cdr) = records(&s, "xfer-1", since, 1);
    assert_eq!(
        events,
        [
            "sales enqueue  ",
            "sales offer 1001 ",
            "sales answer 1001 ",
            "sales transfer 1001 agent:1002",
            "sales complete 1001 agent",
        ],
        "the queue's events of the call"
    );
    assert_eq!(cdr, ["1001|sales|normal|t"], "the call's one CDR");

    // Agent 1001 is free again: a second call reaches it.
    assert!(s
        .db
        .wait_available(&["1001", "1002"], Duration::from_secs(10)));
    let mut second = Caller::queued(&ip(22), node.sip, "xfer-2");
    let frames2 = second.listen(Duration::from_secs(20), |f| hears(f, TONE_1));
    let l2 = second.hang_up(&frames2);
    assert!(
        hears(&frames2, TONE_1),
        "the second caller hears agent 1001: {}",
        heard(&l2)
    );
}

#[test]
fn the_agent_transfers_blind_to_a_queue() {
    let _serial = serial();
    let (s, _) = setup(NET, "transfer_queue", false);
    let (node, agent1) = (&s.node, &s.phones[0]);
    let since = now_ms();
    let mut caller = Caller::queued(&ip(20), node.sip, "xfer-3");
    let mut phase = 0;
    let frames = caller.listen(Duration::from_secs(40), |f| {
        match phase {
            0 if hears(f, TONE_1) => {
                let r = agent1.command("transfer", "sip:support@127.0.81.1");
                assert_eq!(r["ok"], true, "transfer: {r}\n{}", agent1.log());
                phase = 1;
            }
            1 if hears(f, TONE_3) => return true,
            _ => {}
        }
        false
    });
    let l = caller.hang_up(&frames);
    assert!(
        hears(&frames, TONE_3),
        "the caller reaches support's agent 1003: {}\n{}",
        heard(&l),
        agent1.log()
    );
    let (events, cdr) = records(&s, "xfer-3", since, 2);
    let want = [
        "sales enqueue  ",
        "sales offer 1001 ",
        "sales answer 1001 ",
        "sales transfer 1001 queue:support",
        "sales complete 1001 agent",
        "support enqueue  ",
        "support offer 1003 ",
        "support answer 1003 ",
        "support complete 1003 caller",
    ];
    assert_eq!(events, want, "the queues' events of the call");
    assert_eq!(cdr, ["1001|sales|normal|t"], "the call's one CDR");
    assert!(s
        .db
        .wait_available(&["1001", "1003"], Duration::from_secs(10)));
}

/// The agent's baresip phone transfers with the cluster's domain in the Refer-To (desk phones
/// configured with the call centre's domain do): the caller reaches agent 1002.
#[test]
fn the_agent_transfers_blind_to_the_cluster_domain() {
    const NET: &str = "127.0.88";
    let _serial = serial();
    let (s, _) = setup(NET, "transfer_domain", false);
    let (node, agent1) = (&s.node, &s.phones[0]);
    let since = now_ms();
    let mut caller = Caller::queued(&format!("{NET}.20"), node.sip, "xfer-5");
    let mut phase = 0;
    let frames = caller.listen(Duration::from_secs(40), |f| {
        match phase {
            0 if hears(f, TONE_1) => {
                let r = agent1.command("transfer", &format!("sip:1002@{DOMAIN}"));
                assert_eq!(r["ok"], true, "transfer: {r}\n{}", agent1.log());
                phase = 1;
            }
            1 if hears(f, TONE_2) => return true,
            _ => {}
        }
        false
    });
    let l = caller.hang_up(&frames);
    assert!(
        hears(&frames, TONE_2),
        "the caller reaches agent 1002 through the domain: {}\n{}",
        heard(&l),
        agent1.log()
    );
    let (events, cdr) = records(&s, "xfer-5", since, 1);
    assert!(
        events.contains(&"sales transfer 1001 agent:1002".to_string()),
        "{events:?}"
    );
    assert_eq!(cdr, ["1001|sales|normal|t"], "the call's one CDR");
    assert!(s
        .db
        .wait_available(&["1001", "1002"], Duration::from_secs(10)));
}

/// The texts of the NOTIFYs of the transfer that reach `raw` (each answered 200), until the
/// final one (`200 OK` in its body); retransmissions (same CSeq) counted once.
fn notifies(raw: &RawAgent) -> Vec<String> {
    let mut seen: Vec<String> = vec![];
    for _ in 0..6 {
        let Some(n) = raw
            .phone
            .uac
            .answer_request("NOTIFY", Duration::from_secs(3))
        else {
            break;
        };
        let cseq = header(&n, "CSeq");
        if seen.iter().any(|s| header(s, "CSeq") == cseq) {
            continue;
        }
        let done = n.contains("SIP/2.0 200 OK\r\n") && n.ends_with("SIP/2.0 200 OK\r\n");
        seen.push(n);
        if done {
            break;
        }
    }
    seen
}

/// The bogus REFERs, in the agent's dialog but for the node `t` (the last with another
/// dialog's tags): their statuses.
fn bogus_refers(agent: &mut RawAgent, t: &str) -> Vec<u16> {
    let mut refused = vec![];
    for (extra, forged) in [
        (format!("Refer-To: <sip:nobody@{t}>\r\n"), false),
        ("Refer-To: <sip:1002@192.0.2.9>\r\n".to_string(), false),
        (
            "Refer-To: <sip:1002@pbx.example.org>\r\n".to_string(),
            false,
        ),
        (
            format!("Refer-To: <sip:1002@{t}?Replaces=abc%3Bto-tag%3Da%3Bfrom-tag%3Db>\r\n"),
            false,
        ),
        (String::new(), false),
        (format!("Refer-To: <sip:1001@{t}>\r\n"), false),
        (format!("Refer-To: <sip:1002@{t}>\r\n"), true),
    ] {
        let r = agent.request("REFER", &extra, forged);
        refused.push(r.map_or(0, |r| r.status));
    }
    refused
}

/// What the good REFER got: its status, the NOTIFYs that followed, and the node's BYE.
#[derive(Default)]
struct Notified {
    accepted: u16,
    sipfrags: Vec<String>,
    bye: Option<String>,
}

/// The good REFER (agent 1002 at the node `t`), its NOTIFYs and the node's BYE.
fn good_refer(agent: &mut RawAgent, t: &str) -> Notified {
    let r = agent.request("REFER", &format!("Refer-To: <sip:1002@{t}>\r\n"), false);
    let accepted = r.map_or(0, |r| r.status);
    let sipfrags = notifies(agent);
    let bye = agent
        .phone
        .uac
        .answer_request("BYE", Duration::from_secs(5));
    Notified {
        accepted,
        sipfrags,
        bye,
    }
}

impl Notified {
    /// Accepted (202), then the NOTIFYs RFC 3515 asks for (`message/sipfrag`, `100 Trying`
    /// then a terminating `200 OK`) and the node's BYE.
    fn check(&self) {
        assert_eq!(self.accepted, 202, "the good REFER is accepted");
        let bodies: Vec<&str> = self
            .sipfrags
            .iter()
            .map(|n| n.split("\r\n\r\n").nth(1).unwrap_or(""))
            .collect();
        assert_eq!(
            bodies,
            ["SIP/2.0 100 Trying\r\n", "SIP/2.0 200 OK\r\n"],
            "the NOTIFYs"
        );
        for n in &self.sipfrags {
            let h = |name| header(n, name).unwrap_or_default();
            assert_eq!(h("Event"), "refer", "{n}");
            assert!(h("Content-Type").starts_with("message/sipfrag"), "{n}");
        }
        assert!(
            header(&self.sipfrags[1], "Subscription-State")
                .is_some_and(|s| s.starts_with("terminated")),
            "{}",
            self.sipfrags[1]
        );
        assert!(
            self.bye.is_some(),
            "the node ends the agent's leg with a BYE"
        );
    }
}

/// A phone made of raw SIP sends REFERs in the bridged dialog: each bogus one is refused
/// with its status and the caller keeps hearing the agent; the good one is accepted (202),
/// followed by the NOTIFYs RFC 3515 asks for (`message/sipfrag`, `100 Trying` then `200 OK`)
/// and the node's BYE; the caller then hears agent 1002.
#[test]
fn bogus_refers_are_refused_and_a_good_one_is_notified() {
    let _serial = serial();
    let (s, raw) = setup(NET, "transfer_raw", true);
    let phone = raw.expect("the raw phone");
    let since = now_ms();
    let mut caller = Caller::queued(&ip(20), s.node.sip, "xfer-4");
    let mut pickup = Pickup::ring(phone, &ip(30), TONE_1);
    let t = ip(1);
    let x = raw_transfer(
        &caller,
        &mut pickup,
        Duration::from_secs(50),
        |agent| bogus_refers(agent, &t),
        |agent, _| good_refer(agent, &t),
    );
    let l = caller.hang_up(&x.frames);
    pickup.hang_up();
    assert_eq!(
        x.before,
        [404, 403, 403, 481, 400, 403, 481],
        "nothing routable, another host, another DNS name, Replaces of no call, no Refer-To, \
         the agent itself, forged tags"
    );
    let kept = &l[x.marks[0]..x.marks[1]];
    assert!(
        share(kept, TONE_1) > 0.95,
        "after refused REFERs the call keeps its audio: {}",
        heard(kept)
    );
    x.after.check();
    assert!(
        x.reached,
        "the caller never heard agent 1002: {}",
        heard(&l)
    );
    let (events, cdr) = records(&s, "xfer-4", since, 1);
    assert!(
        events.contains(&"sales transfer 1001 agent:1002".to_string()),
        "{events:?}"
    );
    assert_eq!(cdr, ["1001|sales|normal|t"], "the call's one CDR");
    assert!(s
        .db
        .wait_available(&["1001", "1002"], Duration::from_secs(10)));
}
