//! Hold and resume from the agent's phone: a caller (our UAC, sending 1000 Hz) queued in
//! `sales` is bridged to an agent on a baresip phone (600 Hz). The phone holds the call
//! (baresip `hold`: a re-INVITE with `a=sendonly`): the caller hears the queue's music on hold
//! (a 1400 Hz track) and nothing of the agent; `resume`
//! (`a=sendrecv`) brings the agent back. Requests with the caller's Call-ID but another
//! dialog's tags are refused 481 and leave the call alone; the call's records are those of
//! any answered call. A phone made of raw SIP checks what baresip does not do: it keeps
//! sending while holding, holds with `c=0.0.0.0`, moves its media to another port, and
//! sends a re-INVITE with another dialog's tag.

mod support;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use callfleet::now_ms;
use support::audio::{dominant, heard, share};
use support::phone::{device_add, Phone};
use support::pump::Pump;
use support::queue::{member, moh_node, queue, Db};
use support::raw_agent::{Pickup, RawAgent};
use support::raw_phone::RawPhone;
use support::uac::Uac;
use support::{serial, wait_until, NodeProc, Pg};

const NET: &str = "127.0.74";
const AGENT: &str = "1001";
const AGENT_PHONE: &str = "2001";
/// The tones: the agent's phone, the caller, the music on hold.
const AGENT_TONE: f32 = 600.0;
const CALLER_TONE: f32 = 1000.0;
const MOH: f32 = 1400.0;

fn ip(n: u8) -> String {
    format!("{NET}.{n}")
}

fn labels(frames: &[Vec<i16>]) -> Vec<Option<f32>> {
    frames
        .iter()
        .map(|f| dominant(f, &[AGENT_TONE, CALLER_TONE, MOH]))
        .collect()
}

/// One node (.1) on a fresh database, queue `sales` with agent 1001 logged in on phone
/// 2001, whose phone `start_phone` starts and registers.
struct Setup {
    db: Db,
    node: NodeProc,
    pg: Pg,
}

fn setup<P>(tag: &str, start_phone: impl FnOnce(&std::path::Path, &NodeProc) -> P) -> (Setup, P) {
    let (dir, pg, node, db) = moh_node(tag, &ip(1), MOH);
    device_add(&node, AGENT_PHONE, "pw-agent", false);
    let phone = start_phone(&dir, &node);
    let ok = wait_until(Duration::from_secs(15), || db.registered(AGENT_PHONE));
    assert!(ok.is_some(), "the phone did not register");
    db.add_agent(AGENT, "1234");
    db.login(AGENT, AGENT_PHONE);
    db.add_queue(&queue("sales", "ringall"));
    db.add_member(&member("sales", AGENT, 0, 0));
    db.wait_reloaded(&node);
    (Setup { db, node, pg }, phone)
}

/// The call's records are those of an answered call the agent took from `sales`.
fn records_untouched(s: &Setup, call_id: &str, since: i64) {
    let complete = wait_until(Duration::from_secs(10), || {
        s.db.events(since)
            .iter()
            .any(|e| e.call_id == call_id && e.event.as_str() == "complete")
    });
    assert!(
        complete.is_some(),
        "the call completed in the queue's events"
    );
    let sql = format!(
        "SELECT agent, queue, hangup_cause, answered_at_ms IS NOT NULL \
         FROM cdrs WHERE call_id = '{call_id}'"
    );
    let mut cdr = vec![];
    wait_until(Duration::from_secs(10), || {
        cdr = s.pg.query(&sql);
        !cdr.is_empty()
    });
    assert_eq!(cdr, ["1001|sales|normal|t"], "the call's one CDR");
    assert!(s.db.wait_available(&[AGENT], Duration::from_secs(10)));
}

#[test]
fn the_agent_holds_and_resumes_and_the_caller_hears_music_meanwhile() {
    let _serial = serial();
    let (s, agent) = setup("hold", |dir, node| {
        Phone::start_with_ctrl(dir, &ip(10), AGENT_PHONE, "pw-agent", node, 4444)
    });
    let node = &s.node;
    let since = now_ms();
    let mut caller = Uac::new(&ip(20), node.sip);
    let ok = caller
        .answered("sales", "hold-1", Duration::from_secs(5))
        .expect("the node answers the queue call");
    let to = Uac::media_addr(&ok);
    let intruder = Uac::new(&ip(21), node.sip);

    // Phases, driven from the caller's listening loop: the agent talks for 1 s, then holds
    // for 4 s, then resumes for 4 s.
    let (mut phase, mut at) = (0, Instant::now());
    let (mut held_at, mut resumed_at) = (0, 0);
    let mut refused = vec![];
    let frames = caller.listen(Some((to, CALLER_TONE)), Duration::from_secs(40), |f| {
        match phase {
            0 => {
                let talking = f.len() >= 50
                    && labels(&f[f.len() - 50..])
                        .iter()
                        .all(|l| *l == Some(AGENT_TONE));
                if talking {
                    // Someone else's re-INVITE and REFER for this call: refused, no effect.
                    refused.push(intruder.foreign("INVITE", "hold-1", ""));
                    let refer = "Refer-To: <sip:1001@127.0.74.1>\r\n";
                    refused.push(intruder.foreign("REFER", "hold-1", refer));
                    let r = agent.command("hold", "");
                    assert_eq!(r["ok"], true, "hold: {r}\n{}", agent.log());
                    (phase, at, held_at) = (1, Instant::now(), f.len());
                }
            }
            1 if at.elapsed() >= Duration::from_secs(4) => {
                let r = agent.command("resume", "");
                assert_eq!(r["ok"], true, "resume: {r}\n{}", agent.log());
                (phase, at, resumed_at) = (2, Instant::now(), f.len());
            }
            2 => return at.elapsed() >= Duration::from_secs(4),
            _ => {}
        }
        false
    });
    caller.in_dialog("BYE", "hold-1", &ok, None);
    let l = labels(&frames);
    eprintln!("caller heard: {}", heard(&l));
    assert_eq!(
        phase,
        2,
        "the agent never talked, held and resumed: {}",
        heard(&l)
    );
    assert_eq!(
        refused,
        [481, 481],
        "requests with foreign tags are refused"
    );

    // Before the hold: the agent (the re-INVITEs of the intruder changed nothing).
    let before = &l[..held_at];
    assert!(
        share(&before[before.len() - 50..], AGENT_TONE) == 1.0,
        "{}",
        heard(&l)
    );
    // Held (after 0.5 s for the re-INVITE): the music, and never the agent's tone.
    let hold = &l[held_at + 25..resumed_at];
    let (moh, agent_tone) = (share(hold, MOH), share(hold, AGENT_TONE));
    eprintln!("on hold: music {moh:.2}, agent {agent_tone:.2}");
    assert!(
        moh > 0.95 && agent_tone == 0.0,
        "on hold the caller hears the music only: {}",
        heard(hold)
    );
    // Resumed (after 0.5 s): the agent again.
    let back = &l[resumed_at + 25..];
    let again = share(back, AGENT_TONE);
    assert!(
        again > 0.95,
        "resumed, the caller hears the agent ({again:.2}): {}",
        heard(back)
    );

    records_untouched(&s, "hold-1", since);
    drop(agent);
}

/// A phone that keeps sending while it holds (as many do), holds the RFC 2543 way
/// (`c=0.0.0.0`), and moves its media to another port: the caller never hears it while held,
/// and hears it from the new port once resumed; its re-INVITE with another dialog's tag is
/// refused 481.
#[test]
fn a_phone_that_keeps_sending_on_hold_is_not_heard_and_its_new_port_is_followed() {
    let _serial = serial();
    let (s, phone) = setup("hold_raw", |_, node| {
        let mut phone = RawPhone::new(&ip(30), node.sip, AGENT_PHONE, "pw-agent");
        let r = phone.register().expect("an answer to the REGISTER");
        assert_eq!(r.status, 200, "{}", r.text);
        phone
    });
    let since = now_ms();
    let mut caller = Uac::new(&ip(20), s.node.sip);
    let ok = caller
        .answered("sales", "hold-2", Duration::from_secs(5))
        .expect("the node answers the queue call");
    let to = Uac::media_addr(&ok);
    // The INVITE comes once the caller is queued; the caller's media starts with the listen.
    let mut pickup = Pickup::ring(phone, &ip(30), AGENT_TONE);
    let first_port = pickup.rtp_port();
    let second = UdpSocket::bind(format!("{}:0", ip(30))).expect("bind RTP");
    let second_port = second.local_addr().expect("addr").port();
    let (mut second, mut second_pump) = (Some(second), None);
    let (mut phase, mut at, mut marks) = (0, Instant::now(), vec![]);
    let mut answers = vec![];
    let frames = caller.listen(Some((to, CALLER_TONE)), Duration::from_secs(40), |f| {
        let mut step = |raw: &mut RawAgent, c: &str, port: u16, dir: &str, forged: bool| {
            let r = raw.reinvite(c, port, dir, forged);
            let direction = r
                .body()
                .lines()
                .find(|l| l.starts_with("a=") && !l.contains(':'));
            answers.push((r.status, direction.unwrap_or("").to_string()));
        };
        match phase {
            0 if pickup.answered() => phase = 1,
            1 if f.len() >= 50
                && labels(&f[f.len() - 50..])
                    .iter()
                    .all(|l| *l == Some(AGENT_TONE)) =>
            {
                // Hold, while the pump goes on sending.
                if let Some(raw) = pickup.agent.as_mut() {
                    step(raw, &ip(30), first_port, "a=sendonly\r\n", false);
                }
                (phase, at) = (2, Instant::now());
                marks.push(f.len());
            }
            2 if at.elapsed() >= Duration::from_millis(2500) => {
                // Resume from another port: the old one goes quiet first (packets from it
                // after the re-INVITE would latch the leg there), the new one talks.
                pickup.hang_up();
                if let (Some(raw), Some(sock)) = (pickup.agent.as_mut(), second.take()) {
                    step(raw, &ip(30), second_port, "a=sendrecv\r\n", false);
                    second_pump = Some(Pump::start(sock, Some(raw.node_media), AGENT_TONE));
                }
                (phase, at) = (3, Instant::now());
                marks.push(f.len());
            }
            3 if at.elapsed() >= Duration::from_millis(2500) => {
                // Hold the RFC 2543 way; the pump goes on sending.
                if let Some(raw) = pickup.agent.as_mut() {
                    step(raw, "0.0.0.0", second_port, "", false);
                    step(raw, &ip(30), second_port, "a=sendrecv\r\n", true);
                }
                (phase, at) = (4, Instant::now());
                marks.push(f.len());
            }
            4 => return at.elapsed() >= Duration::from_millis(2500),
            _ => {}
        }
        false
    });
    caller.in_dialog("BYE", "hold-2", &ok, None);
    let bye = pickup
        .agent
        .as_ref()
        .and_then(|r| r.phone.uac.answer_request("BYE", Duration::from_secs(5)));
    assert!(bye.is_some(), "the caller's end BYEs the agent's phone");
    let second_heard = second_pump.take().map(Pump::stop).unwrap_or_default();
    pickup.hang_up();
    let l = labels(&frames);
    eprintln!("caller heard: {}", heard(&l));
    eprintln!("re-INVITE answers: {answers:?}");
    assert_eq!(phase, 4, "the phases did not all run: {}", heard(&l));
    assert_eq!(
        answers,
        [
            (200, "a=recvonly".to_string()),
            (200, "a=sendrecv".to_string()),
            (200, "a=recvonly".to_string()),
            (481, String::new()),
        ],
        "answers to sendonly, sendrecv (new port), c=0.0.0.0, another dialog's tag"
    );
    let (held, back, held_again) = (
        &l[marks[0] + 25..marks[1]],
        &l[marks[1] + 25..marks[2]],
        &l[marks[2] + 25..],
    );
    for (what, part) in [("sendonly", held), ("c=0.0.0.0", held_again)] {
        assert!(
            share(part, MOH) > 0.95 && share(part, AGENT_TONE) == 0.0,
            "held with {what}, the caller hears the music only, though the phone sends: {}",
            heard(part)
        );
    }
    assert!(
        share(back, AGENT_TONE) > 0.95,
        "resumed from the new port, the caller hears the agent: {}",
        heard(back)
    );
    let from_caller = labels(&second_heard)
        .iter()
        .filter(|x| **x == Some(CALLER_TONE))
        .count();
    assert!(
        from_caller >= 25,
        "the new port receives the caller ({from_caller} frames)"
    );
    records_untouched(&s, "hold-2", since);
}
