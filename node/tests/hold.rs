//! Hold and resume from the agent's phone: a caller (our UAC, sending 1000 Hz) queued in
//! `sales` is bridged to an agent on a baresip phone (600 Hz). The phone holds the call
//! (baresip `hold`: a re-INVITE with `a=sendonly`): the caller hears the queue's music on hold
//! (a 1400 Hz track) and nothing of the agent; `resume`
//! (`a=sendrecv`) brings the agent back. Requests with the caller's Call-ID but another
//! dialog's tags are refused 481 and leave the call alone; the call's records are those of
//! any answered call.

mod support;

use std::time::{Duration, Instant};

use callfleet::now_ms;
use support::audio::{dominant, runs, write_tone_wav};
use support::phone::{device_add, Phone};
use support::queue::{member, queue, Db};
use support::uac::Uac;
use support::{serial, wait_until, workdir, NodeProc, NodeSpec, Pg};

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

/// The labels as runs, for failure messages: `600x120 1400x200 ...`.
fn heard(l: &[Option<f32>]) -> String {
    runs(l)
        .iter()
        .map(|(t, n)| match t {
            Some(t) => format!("{t}x{n}"),
            None => format!("-x{n}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Share of frames labelled `tone`.
fn share(l: &[Option<f32>], tone: f32) -> f64 {
    l.iter().filter(|x| **x == Some(tone)).count() as f64 / l.len().max(1) as f64
}

/// A request with `call_id` but tags of no dialog of the node (`To` tag made up).
fn foreign(uac: &Uac, method: &str, call_id: &str, extra: &str) -> u16 {
    let l = uac.local;
    let text = format!(
        "{method} sip:callfleet@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-{method}-forged;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:caller@{l}>;tag=not-the-caller\r\nTo: <sip:sales@{t}>;tag=not-ours\r\n\
         Call-ID: {call_id}\r\nCSeq: 7 {method}\r\nContact: <sip:x@{l}>\r\n{extra}Content-Length: 0\r\n\r\n",
        t = uac.target,
    );
    uac.send(&text);
    uac.recv_final(Duration::from_secs(3))
        .map_or(0, |r| r.status)
}

#[test]
fn the_agent_holds_and_resumes_and_the_caller_hears_music_meanwhile() {
    let _serial = serial();
    let dir = workdir("hold");
    let pg = Pg::fresh("hold");
    write_tone_wav(&dir.join("moh").join("hold.wav"), MOH, 5.0);
    let node = NodeProc::start(
        &dir,
        NodeSpec {
            name: "main-a",
            role: "main",
            ip: &ip(1),
            db: &pg.url,
            capacity: 20,
            extra: "",
        },
    );
    support::wait_alive(&node, 1);
    let db = Db::connect(&pg.url);
    device_add(&node, AGENT_PHONE, "pw-agent", false);
    let agent = Phone::start_with_ctrl(&dir, &ip(10), AGENT_PHONE, "pw-agent", &node, 4444);
    let ok = wait_until(Duration::from_secs(15), || db.registered(AGENT_PHONE));
    assert!(ok.is_some(), "the phone did not register:\n{}", agent.log());
    db.add_agent(AGENT, "1234");
    db.login(AGENT, AGENT_PHONE);
    db.add_queue(&queue("sales", "ringall"));
    db.add_member(&member("sales", AGENT, 0, 0));
    std::thread::sleep(Duration::from_millis(2500)); // the node reloads the configuration

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
                    refused.push(foreign(&intruder, "INVITE", "hold-1", ""));
                    let refer = "Refer-To: <sip:1001@127.0.74.1>\r\n";
                    refused.push(foreign(&intruder, "REFER", "hold-1", refer));
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

    // The call's records are those of an answered call taken by the agent.
    let complete = wait_until(Duration::from_secs(10), || {
        db.events(since)
            .iter()
            .any(|e| e.call_id == "hold-1" && e.event.as_str() == "complete")
    });
    assert!(
        complete.is_some(),
        "the call completed in the queue's events"
    );
    let sql = "SELECT agent, queue, hangup_cause, answered_at_ms IS NOT NULL \
               FROM cdrs WHERE call_id = 'hold-1'";
    let mut cdr = vec![];
    wait_until(Duration::from_secs(10), || {
        cdr = pg.query(sql);
        !cdr.is_empty()
    });
    assert_eq!(cdr, ["1001|sales|normal|t"], "the call's one CDR");
    assert!(db.wait_available(&[AGENT], Duration::from_secs(10)));
}
