//! The cluster queue's announcements and exits end to end (issue 3): position announcements
//! while a caller waits, the maximum wait with its fallbacks (voicemail, another queue), a
//! caller who hangs up while agents ring, and an agent left in wrap-up by a node killed with
//! `kill -9`.
//!
//! The nodes run on PostgreSQL with prompts and music on hold the tests write themselves: each
//! prompt is a pure tone of its own, so what a caller heard is read back from its RTP frame by
//! frame (which tone carries each 20 ms frame), without depending on the spoken prompts
//! `install.sh` makes. Agents are baresip phones; callers are our own UAC.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use callfleet::now_ms;
use callfleet_store::{AgentState, Cdr, Queue, QueueEvent};
use support::audio::{dominant, runs, tone_share, wav_samples, write_tone_wav};
use support::lockd::{memcached, Lockd};
use support::phone::{device_add, Phone};
use support::queue::{member, queue, Db};
use support::uac::{Resp, Uac};
use support::{serial, wait_alive, wait_until, workdir, NodeProc, NodeSpec, Pg};

/// Every address of these tests is in 127.0.11.0/24.
const NET: &str = "127.0.11";
const PIN: &str = "1234";

/// What each sound is made of (Hz): music on hold, the agents' phones (phone.sh plays 600 Hz),
/// the callers, and one tone per prompt.
const MOH: f32 = 400.0;
const AGENT: f32 = 600.0;
const CALLER: f32 = 1000.0;
const ALL_BUSY: f32 = 1200.0;
const YOU_ARE_NEXT: f32 = 1400.0;
const LEAVE_MESSAGE: f32 = 1600.0;
const THERE_ARE: f32 = 1800.0;
const BEEP: f32 = 3000.0;
/// `nK.wav` ("K calls ahead") is 2200 + 100·K Hz (K up to 15; the rest share 3800 Hz).
fn number_tone(k: usize) -> f32 {
    if k <= 15 {
        2200.0 + 100.0 * k as f32
    } else {
        3800.0
    }
}

/// The tones a frame is labelled with.
fn tones() -> Vec<f32> {
    let mut t = vec![
        MOH,
        AGENT,
        CALLER,
        ALL_BUSY,
        YOU_ARE_NEXT,
        LEAVE_MESSAGE,
        THERE_ARE,
        BEEP,
    ];
    t.extend((1..=15).map(number_tone));
    t.push(3800.0);
    t
}

/// Writes the prompts (`DIR/prompts/<name>.wav`) and one music-on-hold track (`DIR/moh`).
fn write_media(dir: &Path) {
    let prompts = dir.join("prompts");
    let clips: [(&str, f32, f32); 6] = [
        ("you-are-next", YOU_ARE_NEXT, 0.4),
        ("there-are", THERE_ARE, 0.3),
        ("calls-ahead", THERE_ARE, 0.3),
        ("all-busy", ALL_BUSY, 0.6),
        ("leave-message", LEAVE_MESSAGE, 0.6),
        ("beep", BEEP, 0.2),
    ];
    for (name, freq, secs) in clips {
        write_tone_wav(&prompts.join(format!("{name}.wav")), freq, secs);
    }
    for k in 1..=20 {
        write_tone_wav(&prompts.join(format!("n{k}.wav")), number_tone(k), 0.2);
    }
    write_tone_wav(&dir.join("moh").join("hold.wav"), MOH, 5.0);
}

/// Each received frame labelled with the tone that makes it (`None`: silence or a mix).
fn labels(frames: &[Vec<i16>]) -> Vec<Option<f32>> {
    let t = tones();
    frames.iter().map(|f| dominant(f, &t)).collect()
}

/// How many times `tone` was heard: runs of at least 3 frames (60 ms) of it.
fn bursts(labels: &[Option<f32>], tone: f32) -> usize {
    runs(labels)
        .iter()
        .filter(|(l, n)| *l == Some(tone) && *n >= 3)
        .count()
}

/// Frames of `tone` in all.
fn frames_of(labels: &[Option<f32>], tone: f32) -> usize {
    labels.iter().filter(|l| **l == Some(tone)).count()
}

/// What a caller heard, as runs of tones, for assertion messages.
fn heard(labels: &[Option<f32>]) -> String {
    runs(labels)
        .iter()
        .map(|(l, n)| match l {
            Some(f) => format!("{f:.0}x{n}"),
            None => format!("-x{n}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One test's nodes (named `fb-a`, `fb-b`), optional lockd pair on the shared memcached, and
/// phones, in 127.0.11.(base + n): nodes at +1 and +2, lockd at +3 and +4, phones from +10,
/// callers from +20. Fields drop in order: phones first, the database last.
struct Rig {
    phones: Vec<Phone>,
    nodes: Vec<NodeProc>,
    _lockd: Vec<Lockd>,
    db: Db,
    dir: PathBuf,
    base: u8,
    _pg: Pg,
}

impl Rig {
    fn start(test: &str, base: u8, nodes: usize, shared_locks: bool) -> Rig {
        let dir = workdir(test);
        write_media(&dir);
        let pg = Pg::fresh(&test.replace('-', "_"));
        let ip = |n: u8| format!("{NET}.{}", base + n);
        let lockd: Vec<Lockd> = if shared_locks {
            let backend = format!("memcached://{}", memcached());
            [3, 4]
                .iter()
                .map(|n| Lockd::start(&dir, &format!("{}:7070", ip(*n)), &backend))
                .collect()
        } else {
            vec![]
        };
        let mut extra = format!(
            "prompts_dir = \"{}\"\nvoicemail_dir = \"{}\"\n",
            dir.join("prompts").display(),
            dir.join("voicemail").display()
        );
        if !lockd.is_empty() {
            let urls: Vec<String> = lockd.iter().map(|l| format!("\"{}\"", l.url)).collect();
            extra.push_str(&format!("[lock]\nurls = [{}]\n", urls.join(", ")));
        }
        let nodes: Vec<NodeProc> = [("fb-a", 1), ("fb-b", 2)]
            .into_iter()
            .take(nodes)
            .map(|(name, n)| {
                NodeProc::start(
                    &dir,
                    NodeSpec {
                        name,
                        role: "main",
                        ip: &ip(n),
                        db: &pg.url,
                        capacity: 50,
                        extra: &extra,
                    },
                )
            })
            .collect();
        wait_alive(&nodes[0], nodes.len());
        let db = Db::connect(&pg.url);
        Rig {
            phones: vec![],
            nodes,
            _lockd: lockd,
            db,
            dir,
            base,
            _pg: pg,
        }
    }

    fn ip(&self, n: u8) -> String {
        format!("{NET}.{}", self.base + n)
    }

    /// Agent `ext` logged in on a baresip phone of its own (`device`), registered through
    /// node `via`; the phone answers by itself unless `ringing_only`.
    fn agent(&mut self, ext: &str, device: &str, via: usize, ringing_only: bool) -> usize {
        let password = format!("pw-{device}");
        device_add(&self.nodes[0], device, &password, false);
        let ip = self.ip(10 + self.phones.len() as u8);
        let node = &self.nodes[via];
        let phone = if ringing_only {
            Phone::start_ringing_only(&self.dir, &ip, device, &password, node)
        } else {
            Phone::start(&self.dir, &ip, device, &password, node)
        };
        let ok = wait_until(Duration::from_secs(15), || self.db.registered(device));
        assert!(
            ok.is_some(),
            "phone {device} did not register:\n{}",
            phone.log()
        );
        self.phones.push(phone);
        self.db.add_agent(ext, PIN);
        self.db.login(ext, device);
        self.phones.len() - 1
    }

    /// Waits until every node reloaded queues and agents at the current config version
    /// (polled every second).
    fn settle(&self) {
        for node in &self.nodes {
            self.db.wait_reloaded(node);
        }
    }

    /// A caller at +`n` calling `number` on node `node`: the UAC and the node's 200 OK.
    fn call(&self, n: u8, node: usize, number: &str, call_id: &str) -> (Uac, Resp) {
        let mut uac = Uac::new(&self.ip(n), self.nodes[node].sip);
        let ok = uac
            .answered(number, call_id, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{number} not answered {}", self.logs()));
        (uac, ok)
    }

    /// Queue events of `call_id`, once `done` holds for them or `limit` passed.
    fn events_of(
        &self,
        call_id: &str,
        limit: Duration,
        mut done: impl FnMut(&[QueueEvent]) -> bool,
    ) -> Vec<QueueEvent> {
        let mut ev = vec![];
        wait_until(limit, || {
            ev = self
                .db
                .block(self.db.store.queue_events(Some(call_id), 0))
                .expect("read queue events");
            done(&ev)
        });
        ev
    }

    /// The CDR of `call_id`, once written.
    fn cdr(&self, call_id: &str, since_ms: i64) -> Option<Cdr> {
        let mut cdr = None;
        wait_until(Duration::from_secs(10), || {
            cdr = self
                .db
                .block(self.db.store.cdrs_since(since_ms))
                .expect("read CDRs")
                .into_iter()
                .find(|c| c.call_id == call_id);
            cdr.is_some()
        });
        cdr
    }

    fn logs(&self) -> String {
        format!("(logs in {})", self.dir.display())
    }
}

fn has(ev: &[QueueEvent], queue: &str, what: &str) -> bool {
    ev.iter()
        .any(|e| e.queue == queue && e.event.as_str() == what)
}

/// `(queue, event, agent)` of each event, for comparisons and messages.
fn summary(ev: &[QueueEvent]) -> Vec<(String, String, Option<String>)> {
    ev.iter()
        .map(|e| (e.queue.clone(), e.event.to_string(), e.agent.clone()))
        .collect()
}

/// A queue nobody serves: no members; announcements every `announce_ms`.
fn lonely(name: &str, max_wait_ms: i64, announce_ms: i64) -> Queue {
    Queue {
        max_wait_ms,
        announce_interval_ms: announce_ms,
        ..queue(name, "ringall")
    }
}

#[test]
fn waiting_callers_hear_their_position_at_the_announce_interval() {
    let _serial = serial();
    let rig = Rig::start("fb-announce", 10, 1, false);
    rig.db.add_queue(&lonely("wait", 60_000, 2_000));
    rig.settle();
    let (first, first_ok) = rig.call(20, 0, "wait", "ann-1");
    let enqueued = rig.events_of("ann-1", Duration::from_secs(5), |e| {
        has(e, "wait", "enqueue")
    });
    assert!(has(&enqueued, "wait", "enqueue"), "{}", rig.logs());
    let (second, second_ok) = rig.call(21, 0, "wait", "ann-2");
    // Both listen for 7 s: three announcements each at a 2 s interval.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| first.listen(None, Duration::from_secs(7), |_| false));
        let b = s.spawn(|| second.listen(None, Duration::from_secs(7), |_| false));
        (
            labels(&a.join().expect("first listener")),
            labels(&b.join().expect("second listener")),
        )
    });
    eprintln!("first caller heard: {}", heard(&a));
    eprintln!("second caller heard: {}", heard(&b));
    let (next_a, next_b) = (bursts(&a, YOU_ARE_NEXT), bursts(&b, YOU_ARE_NEXT));
    let (one_a, one_b) = (bursts(&a, number_tone(1)), bursts(&b, number_tone(1)));
    assert!(
        next_a >= 2 && one_a == 0,
        "the first caller hears \"you are next\" again and again ({next_a} times), never \
         \"1 call ahead\" ({one_a} times): {}",
        heard(&a)
    );
    assert!(
        one_b >= 2 && next_b == 0,
        "the second caller hears \"there is 1 call ahead\" again and again ({one_b} times), \
         never \"you are next\" ({next_b} times): {}",
        heard(&b)
    );
    assert!(
        bursts(&b, THERE_ARE) >= 2 * one_b,
        "\"there are\" and \"calls ahead\" around the number: {}",
        heard(&b)
    );
    for (who, l) in [("first", &a), ("second", &b)] {
        assert!(
            frames_of(l, MOH) >= 100,
            "the {who} caller hears music between announcements: {}",
            heard(l)
        );
    }
    let mut first = first;
    let mut second = second;
    first.in_dialog("BYE", "ann-1", &first_ok, None);
    second.in_dialog("BYE", "ann-2", &second_ok, None);
    for call in ["ann-1", "ann-2"] {
        let ev = rig.events_of(call, Duration::from_secs(5), |e| has(e, "wait", "abandon"));
        assert_eq!(
            summary(&ev),
            vec![
                ("wait".into(), "enqueue".into(), None),
                ("wait".into(), "abandon".into(), None)
            ],
            "{call} {}",
            rig.logs()
        );
    }
}

#[test]
fn at_maximum_wait_the_caller_leaves_a_voicemail_for_the_target_agent() {
    let _serial = serial();
    let rig = Rig::start("fb-voicemail", 30, 1, false);
    rig.db.add_agent("8201", PIN);
    rig.db.add_queue(&Queue {
        fallback: callfleet_store::Fallback::Voicemail,
        fallback_target: Some("8201".into()),
        ..lonely("vmq", 2_500, 0)
    });
    rig.settle();
    let since = now_ms();
    let (mut caller, ok) = rig.call(20, 0, "vmq", "vm-1");
    // The caller sends its 1000 Hz tone all along and stays 3 s after the beep.
    let mut beeped: Option<std::time::Instant> = None;
    let frames = caller.listen(
        Some((Uac::media_addr(&ok), CALLER)),
        Duration::from_secs(20),
        |f| {
            if beeped.is_none() && f.iter().any(|f| dominant(f, &[BEEP]).is_some()) {
                beeped = Some(std::time::Instant::now());
            }
            beeped.is_some_and(|at| at.elapsed() >= Duration::from_secs(3))
        },
    );
    caller.in_dialog("BYE", "vm-1", &ok, None);
    let l = labels(&frames);
    eprintln!("caller heard: {}", heard(&l));
    let first = |tone: f32| l.iter().position(|x| *x == Some(tone));
    let (moh, busy, leave, beep) = (
        first(MOH),
        first(ALL_BUSY),
        first(LEAVE_MESSAGE),
        first(BEEP),
    );
    assert!(
        matches!((moh, busy, leave, beep), (Some(m), Some(a), Some(g), Some(b)) if m < a && a < g && g < b),
        "music, then \"all agents are busy\", then the greeting, then the beep \
         (first frames: {moh:?} {busy:?} {leave:?} {beep:?}): {}",
        heard(&l)
    );
    let busy = busy.unwrap_or_default();
    assert_eq!(
        frames_of(&l[busy..], MOH),
        0,
        "no music once the wait is over: {}",
        heard(&l)
    );
    assert!(
        frames_of(&l, ALL_BUSY) >= 25 && frames_of(&l, LEAVE_MESSAGE) >= 25,
        "the prompts play whole: {}",
        heard(&l)
    );

    let mut vms = vec![];
    wait_until(Duration::from_secs(10), || {
        vms = rig
            .db
            .block(rig.db.store.voicemails(Some("8201")))
            .expect("read voicemails");
        !vms.is_empty()
    });
    let [vm] = vms.as_slice() else {
        panic!("one voicemail for 8201: {vms:?} {}", rig.logs());
    };
    assert_eq!((vm.caller.as_str(), vm.node.as_str()), ("caller", "fb-a"));
    let path = PathBuf::from(&vm.path);
    assert!(
        path.starts_with(rig.dir.join("voicemail").join("8201")),
        "in the mailbox's folder: {vm:?}"
    );
    let (rate, samples) = wav_samples(&path);
    let secs = samples.len() as f64 / f64::from(rate);
    let share = tone_share(&samples, CALLER, rate);
    assert!(
        secs >= 2.5 && vm.duration_ms >= 2500,
        "a message of {secs:.1} s ({} ms in SQL)",
        vm.duration_ms
    );
    assert!(
        share > 0.3,
        "the caller's {CALLER} Hz tone is what was recorded: {share:.3}"
    );
    assert!(
        tone_share(&samples, BEEP, rate) < 0.05,
        "the recording starts after the beep"
    );
    let ev = rig.events_of("vm-1", Duration::from_secs(5), |e| has(e, "vmq", "timeout"));
    assert_eq!(
        summary(&ev),
        vec![
            ("vmq".into(), "enqueue".into(), None),
            ("vmq".into(), "timeout".into(), None)
        ]
    );
    let cdr = rig.cdr("vm-1", since).expect("a CDR for the call");
    assert_eq!(
        (
            cdr.hangup_cause.as_str(),
            cdr.queue.as_deref(),
            cdr.agent.as_deref()
        ),
        ("voicemail", Some("vmq"), None),
        "{cdr:?}"
    );
}

#[test]
fn at_maximum_wait_the_caller_moves_to_the_fallback_queue_and_reaches_its_agent() {
    let _serial = serial();
    let mut rig = Rig::start("fb-requeue", 50, 1, false);
    let p = rig.agent("8301", "2301", 0, false);
    rig.db.add_queue(&Queue {
        fallback: callfleet_store::Fallback::Queue,
        fallback_target: Some("back".into()),
        ..lonely("front", 2_000, 0)
    });
    rig.db.add_queue(&queue("back", "ringall"));
    rig.db.add_member(&member("back", "8301", 0, 0));
    rig.settle();
    let since = now_ms();
    let (mut caller, ok) = rig.call(20, 0, "front", "rq-1");
    // Until the agent's phone has been heard for 2 s.
    let frames = caller.listen(
        Some((Uac::media_addr(&ok), CALLER)),
        Duration::from_secs(20),
        |f| frames_of(&labels(f), AGENT) >= 100,
    );
    caller.in_dialog("BYE", "rq-1", &ok, None);
    let l = labels(&frames);
    eprintln!("caller heard: {}", heard(&l));
    let first = |tone: f32| l.iter().position(|x| *x == Some(tone));
    assert!(
        matches!((first(ALL_BUSY), first(AGENT)), (Some(a), Some(b)) if a < b),
        "\"all agents are busy\", then the agent of the fallback queue: {} {}",
        heard(&l),
        rig.logs()
    );
    assert!(
        frames_of(&l, AGENT) >= 100,
        "the caller talks to the agent: {}",
        heard(&l)
    );
    let ev = rig.events_of("rq-1", Duration::from_secs(5), |e| {
        has(e, "back", "complete")
    });
    let want: Vec<(String, String, Option<String>)> = [
        ("front", "enqueue", None),
        ("front", "timeout", None),
        ("back", "enqueue", None),
        ("back", "offer", Some("8301")),
        ("back", "answer", Some("8301")),
        ("back", "complete", Some("8301")),
    ]
    .iter()
    .map(|(q, e, a)| (q.to_string(), e.to_string(), a.map(str::to_string)))
    .collect();
    assert_eq!(summary(&ev), want, "{}", rig.logs());
    assert_eq!(
        rig.phones[p].calls_with("caller"),
        1,
        "the agent's phone took the call:\n{}",
        rig.phones[p].log()
    );
    let cdr = rig.cdr("rq-1", since).expect("a CDR for the call");
    assert_eq!(
        (cdr.queue.as_deref(), cdr.agent.as_deref()),
        (Some("back"), Some("8301")),
        "{cdr:?}"
    );
    assert!(
        rig.db.wait_available(&["8301"], Duration::from_secs(5)),
        "the agent is free after the wrap-up: {:?}",
        rig.db.agent("8301")
    );
}

#[test]
fn a_caller_hanging_up_while_agents_ring_cancels_every_phone() {
    let _serial = serial();
    let mut rig = Rig::start("fb-cancel", 70, 1, false);
    let agents = ["8401", "8402"];
    let phones = [
        rig.agent(agents[0], "2401", 0, true),
        rig.agent(agents[1], "2402", 0, true),
    ];
    rig.db.add_queue(&Queue {
        ring_timeout_ms: 30_000,
        ..queue("ring", "ringall")
    });
    for (i, a) in agents.iter().enumerate() {
        rig.db.add_member(&member("ring", a, 0, i as i64));
    }
    rig.settle();
    let since = now_ms();
    let (mut caller, ok) = rig.call(20, 0, "ring", "cx-1");
    let ringing = wait_until(Duration::from_secs(10), || {
        agents
            .iter()
            .all(|a| rig.db.agent(a).state == AgentState::Ringing)
            && phones.iter().all(|&p| {
                rig.phones[p]
                    .log()
                    .contains("Incoming call from:  sip:caller@")
            })
    });
    assert!(
        ringing.is_some(),
        "both phones ring: {:?} {:?} {}",
        rig.db.agent(agents[0]),
        rig.db.agent(agents[1]),
        rig.logs()
    );
    std::thread::sleep(Duration::from_millis(500));
    let cseq = caller.in_dialog("BYE", "cx-1", &ok, None);
    let bye = caller.recv_final(Duration::from_secs(3));
    assert_eq!(
        bye.map(|r| r.status),
        Some(200),
        "BYE (CSeq {cseq}) answered"
    );
    assert!(
        rig.db.wait_available(&agents, Duration::from_secs(10)),
        "both agents are available again: {:?} {:?} {}",
        rig.db.agent(agents[0]),
        rig.db.agent(agents[1]),
        rig.logs()
    );
    for &p in &phones {
        let phone = &rig.phones[p];
        // baresip answers a CANCEL with 487 and reports the session closed with ECONNRESET.
        let ended = wait_until(Duration::from_secs(5), || {
            phone
                .log()
                .contains("sip:caller@127.0.11.71:5060: session closed: Connection reset by peer")
        });
        assert!(
            ended.is_some(),
            "the phone's ringing call was cancelled:\n{}",
            phone.log()
        );
        assert_eq!(
            phone.calls_with("caller"),
            0,
            "nobody answered:\n{}",
            phone.log()
        );
    }
    let ev = rig.events_of("cx-1", Duration::from_secs(5), |e| {
        has(e, "ring", "abandon")
    });
    let s = summary(&ev);
    eprintln!("events: {s:?}");
    assert!(has(&ev, "ring", "abandon"), "{s:?}");
    assert!(!has(&ev, "ring", "answer"), "{s:?}");
    for a in agents {
        assert!(
            ev.iter()
                .any(|e| e.event.as_str() == "offer" && e.agent.as_deref() == Some(a)),
            "{a} was offered the call: {s:?}"
        );
    }
    let cdr = rig.cdr("cx-1", since).expect("a CDR for the call");
    assert_eq!(
        (
            cdr.queue.as_deref(),
            cdr.agent.as_deref(),
            cdr.hangup_side.as_str()
        ),
        (Some("ring"), None, "caller"),
        "{cdr:?}"
    );
}

/// Mirrors `queue::caller::LEASE_MARGIN`: an agent's lease outlives the ring timeout by this
/// much until its first renewal.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

#[test]
fn an_agent_in_wrap_up_on_a_killed_node_is_freed_once_its_lease_expires() {
    let _serial = serial();
    let mut rig = Rig::start("fb-wrapup-kill", 90, 2, true);
    let ring = Duration::from_secs(5);
    // The phone registers through node B, which survives.
    rig.agent("8501", "2501", 1, false);
    rig.db.add_queue(&Queue {
        ring_timeout_ms: ring.as_millis() as i64,
        wrapup_ms: 600_000,
        ..queue("wrap", "ringall")
    });
    rig.db.add_member(&member("wrap", "8501", 0, 0));
    rig.db.add_queue(&lonely("idle", 600_000, 0));
    rig.settle();

    // A call on node A reaches the agent; the caller hangs up and the agent is in wrap-up.
    let (mut caller, ok) = rig.call(20, 0, "wrap", "wu-1");
    let frames = caller.listen(
        Some((Uac::media_addr(&ok), CALLER)),
        Duration::from_secs(10),
        |f| frames_of(&labels(f), AGENT) >= 25,
    );
    assert!(
        frames_of(&labels(&frames), AGENT) >= 25,
        "the agent answered on node A {}",
        rig.logs()
    );
    caller.in_dialog("BYE", "wu-1", &ok, None);
    let ev = rig.events_of("wu-1", Duration::from_secs(5), |e| {
        has(e, "wrap", "complete")
    });
    let offered = ev
        .iter()
        .find(|e| e.event.as_str() == "offer")
        .map(|e| e.at_ms)
        .unwrap_or_else(|| panic!("no offer: {:?}", summary(&ev)));
    let wrap = wait_until(Duration::from_secs(5), || {
        let a = rig.db.agent("8501");
        a.state == AgentState::WrapUp && a.current_node.as_deref() == Some("fb-a")
    });
    assert!(
        wrap.is_some(),
        "the agent's wrap-up is tied to node A: {:?}",
        rig.db.agent("8501")
    );
    // Another caller waits on node A when it dies.
    let (_waiting, _) = rig.call(21, 0, "idle", "wu-wait");
    let entered = wait_until(Duration::from_secs(5), || {
        rig.db
            .block(rig.db.store.entries())
            .is_ok_and(|e| e.iter().any(|e| e.node == "fb-a"))
    });
    assert!(entered.is_some(), "a caller waits on node A");

    rig.nodes[0].kill9();
    let killed = now_ms();
    let ttl = ring + LEASE_MARGIN;
    let freed = wait_until(ttl + Duration::from_secs(20), || {
        rig.db.agent("8501").state == AgentState::Available
    });
    let agent = rig.db.agent("8501");
    assert!(
        freed.is_some(),
        "the agent left in wrap-up by the killed node is still {:?} on {:?} {}",
        agent.state,
        agent.current_node,
        rig.logs()
    );
    let at = now_ms();
    eprintln!(
        "agent freed {} ms after the kill, {} ms after its lease was taken (TTL {ttl:?})",
        at - killed,
        at - offered
    );
    assert!(
        at >= offered + ttl.as_millis() as i64 - 2000,
        "freed at +{} ms after the lease was taken, before its TTL {ttl:?}",
        at - offered
    );
    assert_eq!(agent.current_node, None, "{agent:?}");
    let left = rig
        .db
        .block(rig.db.store.entries())
        .expect("read queue entries");
    assert!(
        left.iter().all(|e| e.node != "fb-a"),
        "the dead node's waiting call left the queue: {left:?}"
    );

    // Node B's next caller gets the agent.
    let (mut caller, ok) = rig.call(22, 1, "wrap", "wu-2");
    let frames = caller.listen(
        Some((Uac::media_addr(&ok), CALLER)),
        Duration::from_secs(10),
        |f| frames_of(&labels(f), AGENT) >= 25,
    );
    caller.in_dialog("BYE", "wu-2", &ok, None);
    assert!(
        frames_of(&labels(&frames), AGENT) >= 25,
        "the freed agent takes a call on node B: {} {}",
        heard(&labels(&frames)),
        rig.logs()
    );
}
