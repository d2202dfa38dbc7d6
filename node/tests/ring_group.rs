//! Ring groups end to end: two baresip phones that only ring (`--answer manual`, answered by
//! the test through baresip's control port): phone 2001 is a device member, phone 2002 carries
//! agent 1001, an agent member. Callers dial numbers routed to groups:
//!
//! - `all`: both phones get the INVITE, the agent's answers, the other is CANCELled (baresip
//!   reports the 487), the caller hears music on hold (1400 Hz) and then the agent's phone
//!   (600 Hz), the phone hears the caller (1000 Hz), and the call record names the agent;
//! - `ordered`: the device rings alone for the group's ring time, is CANCELled, then the agent's
//!   phone rings and answers; an agent already on a call is passed over;
//! - nobody answers: the caller goes to the group's no-answer destination (a queue, seen in
//!   its `enqueue` event);
//! - an IVR menu key (SIPp pressing `1` as an RFC 4733 event) leads to a group.
//!
//! One node on SQLite; every address is in 127.0.82.0/24.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use callfleet_store::{
    DestKind, Destination, GroupStrategy, IvrMenu, Number, QueueEventKind, RingGroup,
};
use support::audio::{dominant, tone_share, wav_samples, write_tone_wav};
use support::dtmf::{event_pcap, key};
use support::phone::{device_add, Phone};
use support::queue::{queue, Db};
use support::uac::Uac;
use support::{peers, serial, sipp, wait_until, workdir, NodeProc, NodeSpec};

const NET: &str = "127.0.82";
const AGENT: &str = "1001";
/// The phones: a device member, and the one agent 1001 is logged in on.
const DEVICE: &str = "2001";
const AGENT_PHONE: &str = "2002";
/// The tones: the phones (phone.sh's), the caller, the music on hold.
const PHONE_TONE: f32 = 600.0;
const CALLER_TONE: f32 = 1000.0;
const MOH: f32 = 1400.0;

fn ip(n: u8) -> String {
    format!("{NET}.{n}")
}

fn group(name: &str, strategy: GroupStrategy, ring_ms: i64, members: &[&str]) -> RingGroup {
    RingGroup {
        name: name.into(),
        strategy,
        ring_ms,
        members: members.iter().map(|m| m.parse().expect("member")).collect(),
        no_answer: Destination::new(DestKind::Queue, "after"),
        moh_class: "default".into(),
        created_at_ms: 0,
    }
}

fn number(n: &str, open: &str) -> Number {
    Number {
        number: n.into(),
        open: open.parse().expect("destination"),
        closed: open.parse().expect("destination"),
        time_zone: "UTC".into(),
        open_hours: String::new(),
        holidays: String::new(),
        created_at_ms: 0,
    }
}

/// INVITEs a phone received (baresip logs each).
fn rang(p: &Phone) -> usize {
    p.log().matches("Incoming call from:").count()
}

/// Ringing calls of a phone that were CANCELled (baresip answers 487 and reports the reset).
fn cancelled(p: &Phone) -> usize {
    p.log()
        .matches("session closed: Connection reset by peer")
        .count()
}

struct Rig {
    node: NodeProc,
    db: Db,
    device: Phone,
    agent: Phone,
    dir: std::path::PathBuf,
}

fn rig() -> Rig {
    let dir = workdir("ring_group");
    write_tone_wav(&dir.join("moh").join("hold.wav"), MOH, 5.0);
    write_tone_wav(&dir.join("prompts").join("welcome.wav"), 700.0, 0.5);
    let db_url = format!("sqlite://{}", dir.join("cluster.db").display());
    let extra = format!("prompts_dir = \"{}\"", dir.join("prompts").display());
    let node = NodeProc::start(
        &dir,
        NodeSpec {
            name: "groups",
            role: "main",
            ip: &ip(1),
            db: &db_url,
            capacity: 20,
            extra: &extra,
        },
    );
    let db = Db::connect(&db_url);
    device_add(&node, DEVICE, "pw-device", false);
    device_add(&node, AGENT_PHONE, "pw-agent", false);
    let device = Phone::start_manual_with_ctrl(&dir, &ip(10), DEVICE, "pw-device", &node, 4444);
    let agent = Phone::start_manual_with_ctrl(&dir, &ip(11), AGENT_PHONE, "pw-agent", &node, 4445);
    let ok = wait_until(Duration::from_secs(15), || {
        db.registered(DEVICE) && db.registered(AGENT_PHONE)
    });
    assert!(
        ok.is_some(),
        "the phones did not register:\n{}\n{}",
        device.log(),
        agent.log()
    );
    db.add_agent(AGENT, "1234");
    db.login(AGENT, AGENT_PHONE);
    db.add_queue(&queue("after", "ringall"));
    let both = ["device:2001", "agent:1001"];
    for g in [
        group("everyone", GroupStrategy::All, 20_000, &both),
        group("in-turn", GroupStrategy::Ordered, 3_000, &both),
        group("nobody", GroupStrategy::All, 2_000, &["device:2001"]),
    ] {
        db.block(db.store.upsert_group(&g)).expect("group");
    }
    let menu = IvrMenu {
        name: "main".into(),
        prompt: "welcome.wav".into(),
        timeout_ms: 5_000,
        repeats: 2,
        invalid: Destination::new(DestKind::Message, "goodbye"),
        choices: BTreeMap::from([('1', Destination::new(DestKind::Group, "nobody"))]),
        moh_class: "default".into(),
        created_at_ms: 0,
    };
    db.block(db.store.upsert_menu(&menu)).expect("menu");
    for (n, to) in [
        ("0800", "group:everyone"),
        ("0801", "group:in-turn"),
        ("0802", "group:nobody"),
        ("0803", "menu:main"),
    ] {
        db.block(db.store.upsert_number(&number(n, to)))
            .expect("number");
    }
    db.wait_reloaded(&node);
    Rig {
        node,
        db,
        device,
        agent,
        dir,
    }
}

impl Rig {
    fn logs(&self) -> String {
        format!(
            "node:\n{}\ndevice phone:\n{}\nagent phone:\n{}",
            self.node.log_text(),
            self.device.log(),
            self.agent.log()
        )
    }

    /// Waits until `p` got more than `before` INVITEs.
    fn rings(&self, p: &Phone, before: usize, what: &str) {
        let ok = wait_until(Duration::from_secs(10), || rang(p) > before);
        assert!(ok.is_some(), "{what}\n{}", self.logs());
    }

    /// The caller listens (sending its tone) until the phone that answered (`who`) is heard
    /// for a second; returns what it heard, labelled.
    fn talk(&self, caller: &Uac, ok: &support::uac::Resp, who: &str) -> Vec<Option<f32>> {
        let to = Uac::media_addr(ok);
        let frames = caller.listen(Some((to, CALLER_TONE)), Duration::from_secs(20), |f| {
            f.len() >= 50
                && labels(&f[f.len() - 50..])
                    .iter()
                    .all(|l| *l == Some(PHONE_TONE))
        });
        let heard = labels(&frames);
        let talking = heard.len() >= 50
            && heard[heard.len() - 50..]
                .iter()
                .all(|l| *l == Some(PHONE_TONE));
        assert!(
            talking,
            "the caller hears the {who}: {:?}\n{}",
            support::audio::runs(&heard),
            self.logs()
        );
        heard
    }

    /// The caller hangs up; the agent is free again.
    fn hang_up(&self, caller: &mut Uac, call_id: &str, ok: &support::uac::Resp) {
        caller.in_dialog("BYE", call_id, ok, None);
        let bye = caller.recv_final(Duration::from_secs(3)).map(|r| r.status);
        assert_eq!(bye, Some(200), "BYE answered");
        assert!(
            self.db.wait_available(&[AGENT], Duration::from_secs(10)),
            "the agent is available again: {:?}",
            self.db.agent(AGENT)
        );
    }

    /// Whether a caller entered queue `after` (the groups' no-answer destination) since
    /// `since`, within 15 s.
    fn went_to_no_answer(&self, since: i64) -> bool {
        wait_until(Duration::from_secs(15), || {
            self.db
                .events(since)
                .iter()
                .any(|e| e.event == QueueEventKind::Enqueue && e.queue == "after")
        })
        .is_some()
    }
}

fn labels(frames: &[Vec<i16>]) -> Vec<Option<f32>> {
    frames
        .iter()
        .map(|f| dominant(f, &[PHONE_TONE, CALLER_TONE, MOH]))
        .collect()
}

fn share(l: &[Option<f32>], tone: f32) -> usize {
    l.iter().filter(|x| **x == Some(tone)).count()
}

#[test]
fn ring_groups_ring_all_at_once_in_order_and_fall_back_when_nobody_answers() {
    let _serial = serial();
    let r = rig();
    all_at_once(&r);
    in_order(&r);
    nobody_answers(&r);
    from_an_ivr_key(&r);
    let log = r.node.log_text();
    assert!(!log.contains("panicked"), "{log}");
}

/// `all`: both phones ring, the agent answers, the device is CANCELled; music meanwhile, then
/// audio both ways; the record names the agent.
fn all_at_once(r: &Rig) {
    let (dev0, agent0, cancel0) = (rang(&r.device), rang(&r.agent), cancelled(&r.device));
    let since = callfleet::now_ms();
    let mut caller = Uac::new(&ip(20), r.node.sip);
    let ok = caller
        .answered("0800", "all-1", Duration::from_secs(5))
        .expect("the node answers the number");
    r.rings(&r.device, dev0, "the device member rings");
    r.rings(&r.agent, agent0, "the agent member's phone rings");
    r.agent.accept();
    let heard = r.talk(&caller, &ok, "agent's phone");
    assert!(
        share(&heard, MOH) > 0,
        "music on hold while the phones rang: {:?}",
        support::audio::runs(&heard)
    );
    let ok_cancel = wait_until(Duration::from_secs(5), || cancelled(&r.device) > cancel0);
    assert!(
        ok_cancel.is_some(),
        "the device was CANCELled\n{}",
        r.logs()
    );
    assert_eq!(r.device.calls_with("caller"), 0, "{}", r.device.log());
    agent_on_a_call_is_passed_over(r);
    r.hang_up(&mut caller, "all-1", &ok);

    // The agent's phone heard the caller's tone.
    let rec = r.agent.heard_files();
    let last = rec
        .last()
        .unwrap_or_else(|| panic!("no recording: {}", r.agent.log()));
    let (rate, samples) = wav_samples(last);
    let heard_caller = tone_share(&samples[samples.len() / 2..], CALLER_TONE, rate);
    assert!(
        heard_caller > 0.3,
        "the agent's phone hears the caller: share {heard_caller:.3}"
    );
    // The call's record names the agent who answered.
    let mut agent = None;
    wait_until(Duration::from_secs(10), || {
        let cdrs = r.db.block(r.db.store.cdrs_since(since)).expect("cdrs");
        agent = cdrs
            .into_iter()
            .find(|c| c.call_id == "all-1")
            .map(|c| c.agent);
        agent.is_some()
    });
    assert_eq!(agent, Some(Some(AGENT.to_string())), "the CDR's agent");
}

/// While the agent talks, a second caller to the `ordered` group: the device rings, the agent
/// (on a call) is passed over, and the caller goes to the no-answer destination.
fn agent_on_a_call_is_passed_over(r: &Rig) {
    let (dev0, agent0) = (rang(&r.device), rang(&r.agent));
    let since = callfleet::now_ms();
    let mut caller = Uac::new(&ip(24), r.node.sip);
    let ok = caller
        .answered("0801", "busy-1", Duration::from_secs(5))
        .expect("the node answers the number");
    r.rings(&r.device, dev0, "the device member rings");
    assert!(
        r.went_to_no_answer(since),
        "then the no-answer destination\n{}",
        r.logs()
    );
    assert_eq!(rang(&r.agent), agent0, "the agent on a call is not rung");
    caller.in_dialog("BYE", "busy-1", &ok, None);
    let bye = caller.recv_final(Duration::from_secs(3)).map(|r| r.status);
    assert_eq!(bye, Some(200), "BYE answered");
}

/// `ordered`: the device rings alone for the ring time and is CANCELled, then the agent's
/// phone rings and answers.
fn in_order(r: &Rig) {
    let (dev0, agent0, cancel0) = (rang(&r.device), rang(&r.agent), cancelled(&r.device));
    let mut caller = Uac::new(&ip(21), r.node.sip);
    let ok = caller
        .answered("0801", "ordered-1", Duration::from_secs(5))
        .expect("the node answers the number");
    r.rings(&r.device, dev0, "the first member rings");
    assert_eq!(rang(&r.agent), agent0, "the second waits its turn");
    r.rings(&r.agent, agent0, "the second member rings after the first");
    assert!(
        cancelled(&r.device) > cancel0,
        "the first stopped ringing before the second rang\n{}",
        r.logs()
    );
    r.agent.accept();
    r.talk(&caller, &ok, "second member");
    r.hang_up(&mut caller, "ordered-1", &ok);
}

/// Nobody answers: the no-answer destination.
fn nobody_answers(r: &Rig) {
    let dev0 = rang(&r.device);
    let since = callfleet::now_ms();
    let mut caller = Uac::new(&ip(22), r.node.sip);
    let ok = caller
        .answered("0802", "nobody-1", Duration::from_secs(5))
        .expect("the node answers the number");
    r.rings(&r.device, dev0, "the member rings");
    assert!(
        r.went_to_no_answer(since),
        "the caller goes to the no-answer destination\n{}",
        r.logs()
    );
    assert_eq!(r.device.calls_with("caller"), 0, "{}", r.device.log());
    caller.in_dialog("BYE", "nobody-1", &ok, None);
}

/// A menu key that leads to a group (SIPp presses 1): the group rings, then its no-answer
/// destination.
fn from_an_ivr_key(r: &Rig) {
    let dev0 = rang(&r.device);
    std::fs::write(r.dir.join("keys.pcap"), event_pcap(key('1'))).expect("write keys.pcap");
    let since = callfleet::now_ms();
    let scenario = peers().join("sipp/dtmf-call.xml");
    let node = r.node.sip.to_string();
    let stats = sipp(
        &r.dir,
        "ivr-group",
        &[
            "-sf",
            scenario.to_str().expect("utf-8 path"),
            "-s",
            "0803",
            "-d",
            "9000",
            "-m",
            "1",
            "-i",
            &ip(23),
            "-p",
            "5070",
            "-mp",
            "16000",
            "-timeout",
            "40",
            "-max_retrans",
            "5",
            &node,
        ],
    );
    assert_eq!((stats.successful, stats.failed), (1, 0), "SIPp call");
    assert!(rang(&r.device) > dev0, "key 1 rang the group\n{}", r.logs());
    assert!(
        r.device.log().contains("Incoming call from:  sip:sipp@"),
        "{}",
        r.device.log()
    );
    assert!(
        r.went_to_no_answer(since),
        "then its no-answer destination\n{}",
        r.logs()
    );
}
