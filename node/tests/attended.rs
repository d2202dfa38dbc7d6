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

use std::time::Duration;

use callfleet::now_ms;
use callfleet_store::{AgentState, Queue, RecordingPolicy};
use support::audio::{heard, share};
use support::phone::device_add;
use support::queue::{queue, Db, DOMAIN};
use support::raw_agent::{Pickup, RawAgent};
use support::raw_phone::RawPhone;
use support::transfer::{
    assert_replaced, call_events, cdr, raw_transfer, refer_replacing, refer_to_replacing, setup,
    to_tag, Caller, TONE_1,
};
use support::{serial, wait_until};

const NET: &str = "127.0.84";

fn ip(n: u8) -> String {
    format!("{NET}.{n}")
}

/// What phone 2001 did and got before the good REFER.
#[derive(Default)]
struct Consulted {
    /// The final statuses of call B (2001 → agent 1002) and call C (2004 → agent 1003).
    calls: Vec<u16>,
    /// The statuses of the REFERs that must be refused.
    refused: Vec<u16>,
    /// The Refer-To line naming call B at the cluster's domain.
    good: String,
}

/// Agent 1001's phone calls agent 1002 (call B) and phone 2004 agent 1003 (call C); once both
/// are bridged, the phone sends REFERs naming what it may not replace.
fn consult(agent: &mut RawAgent, other: &mut RawPhone, db: &Db) -> Consulted {
    let b = agent.phone.call("1002", "2001", "att-b", true);
    let c = other.call("1003", "2004", "att-c", true);
    let (b, c) = (b.last().cloned(), c.last().cloned());
    let calls = vec![
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
    let (tb, tc) = (
        to_tag(&b.unwrap_or_default()),
        to_tag(&c.unwrap_or_default()),
    );
    let node = ip(1);
    let mut refused = vec![];
    for extra in [
        refer_to_replacing(&node, "att-c", &tc, "fatt-c"),
        refer_to_replacing(&node, "att-b", "fatt-b", &tb),
        refer_to_replacing(&node, "att-zz", &tb, "fatt-b"),
        refer_to_replacing(&node, "att-b", &tb, "fatt-b")
            .replace("%3Bfrom-tag", "%3Bearly-only%3Bfrom-tag"),
        refer_to_replacing(DOMAIN, "att-c", &tc, "fatt-c"),
        refer_to_replacing(DOMAIN, "att-zz", &tb, "fatt-b"),
        refer_to_replacing("pbx.example.org", "att-b", &tb, "fatt-b"),
    ] {
        let r = agent.request("REFER", &extra, false);
        refused.push(r.map_or(0, |r| r.status));
    }
    let good = refer_to_replacing(DOMAIN, "att-b", &tb, "fatt-b");
    Consulted {
        calls,
        refused,
        good,
    }
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
    let mut caller = Caller::queued(&ip(20), node.sip, "att-a");
    let mut pickup = Pickup::ring(phone, &ip(30), TONE_1);
    let t = raw_transfer(
        &caller,
        &mut pickup,
        Duration::from_secs(60),
        |agent| consult(agent, &mut other, db),
        |agent, consulted| refer_replacing(agent, &consulted.good),
    );
    let l = caller.hang_up(&t.frames);
    pickup.hang_up();
    assert_eq!(t.before.calls, [200, 200], "calls B and C are answered");
    assert_eq!(
        t.before.refused,
        [403, 481, 481, 486, 403, 481, 403],
        "another phone's call, swapped tags, no such call, early-only; by the domain: another \
         phone's call, no such call; another DNS name"
    );
    let kept = &l[t.marks[0]..t.marks[1]];
    assert!(
        share(kept, TONE_1) > 0.95,
        "after refused REFERs the caller keeps agent 1001: {}",
        heard(kept)
    );
    let (accepted, got) = &t.after;
    assert_eq!(*accepted, 202, "the attended transfer is accepted");
    assert_replaced(got, &pickup.call_id(), "att-b");
    assert!(
        t.reached,
        "the caller never heard agent 1002: {}",
        heard(&l)
    );
    assert!(
        db.wait_available(&["1001", "1002"], Duration::from_secs(15)),
        "both agents free again"
    );
    let columns = "coalesce(agent, ''), coalesce(queue, ''), hangup_cause";
    assert_eq!(
        cdr(pg, "att-a", columns),
        ["1001|sales|normal"],
        "the caller's CDR"
    );
    assert_eq!(
        cdr(pg, "att-b", columns)[0].split('|').nth(2),
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
    let events = call_events(db, since, "att-a");
    assert!(
        events.contains(&"sales transfer 1001 agent:1002".to_string()),
        "{events:?}"
    );
}
