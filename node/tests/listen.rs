//! Listen-in, whisper and barge across nodes: a caller (our UAC, 1000 Hz) queued on node A
//! talks to an agent on a baresip phone (600 Hz); a supervisor's baresip phone registered
//! through node B is asked for over node B's API, and node A (which holds the call) dials it.
//! What each party heard is checked in the sound: the supervisor hears both parties;
//! whispering, the agent hears the supervisor (1400 Hz) and the caller never does; barging,
//! both parties hear the supervisor; the call's end BYEs the supervisor, the supervisor's
//! hang-up leaves the call going. Refusals: an unknown call (404), an unregistered phone, a
//! second whisperer and a whisper over a barge (409), the holding node dead (503).

mod support;

use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use callfleet::now_ms;
use support::audio::{tone_share, wav_samples};
use support::phone::{device_add, Phone};
use support::queue::{member, queue, Db};
use support::uac::{Resp, Uac};
use support::{serial, wait_alive, wait_until, workdir, NodeProc, NodeSpec, Pg};

const NET: &str = "127.0.10";
const AGENT: &str = "1001";
const AGENT_PHONE: &str = "2001";
const SUPERVISOR: &str = "2901";

struct Cluster {
    /// Dropped first, while the nodes still answer their un-REGISTER.
    agent: Phone,
    supervisor: Phone,
    nodes: Vec<NodeProc>,
    db: Db,
    dir: std::path::PathBuf,
    _pg: Pg,
}

fn ip(n: u8) -> String {
    format!("{NET}.{n}")
}

impl Cluster {
    /// Nodes A (.1) and B (.2) on one PostgreSQL database; the agent's phone registered
    /// through A, the supervisor's (with a control port) through B; queue `sales`.
    fn start() -> Cluster {
        let dir = workdir("listen");
        let pg = Pg::fresh("listen");
        let nodes: Vec<NodeProc> = [("main-a", 1), ("main-b", 2)]
            .into_iter()
            .map(|(name, host)| {
                NodeProc::start(
                    &dir,
                    NodeSpec {
                        name,
                        role: "main",
                        ip: &ip(host),
                        db: &pg.url,
                        capacity: 20,
                        extra: "",
                    },
                )
            })
            .collect();
        wait_alive(&nodes[1], 2);
        let db = Db::connect(&pg.url);
        device_add(&nodes[0], AGENT_PHONE, "pw-agent", false);
        device_add(&nodes[0], SUPERVISOR, "pw-sup", false);
        let agent = Phone::start(&dir, &ip(10), AGENT_PHONE, "pw-agent", &nodes[0]);
        let supervisor =
            Phone::start_with_ctrl(&dir, &ip(11), SUPERVISOR, "pw-sup", &nodes[1], 4444);
        for (device, phone) in [(AGENT_PHONE, &agent), (SUPERVISOR, &supervisor)] {
            let ok = wait_until(Duration::from_secs(15), || db.registered(device));
            assert!(ok.is_some(), "{device} did not register:\n{}", phone.log());
        }
        db.add_agent(AGENT, "1234");
        db.login(AGENT, AGENT_PHONE);
        db.add_queue(&queue("sales", "ringall"));
        db.add_member(&member("sales", AGENT, 0, 0));
        for node in &nodes {
            db.wait_reloaded(node);
        }
        Cluster {
            agent,
            supervisor,
            nodes,
            db,
            dir,
            _pg: pg,
        }
    }

    /// `POST /api/v1/calls/{call_id}/listen` on node `via`, as its operator on its host (the
    /// operator token: any phone): (status, body).
    fn listen(&self, via: usize, call_id: &str, device: &str, mode: &str) -> (u16, String) {
        let body = format!(r#"{{"device":"{device}","mode":"{mode}"}}"#);
        let path = format!("/api/v1/calls/{call_id}/listen");
        self.nodes[via].post_json(&path, &body)
    }

    /// Waits for queue event `what` of `call_id` since `since`.
    fn event(&self, call_id: &str, what: &str, since: i64) -> Option<callfleet_store::QueueEvent> {
        let mut found = None;
        wait_until(Duration::from_secs(10), || {
            found = self
                .db
                .events(since)
                .into_iter()
                .find(|e| e.call_id == call_id && e.event.as_str() == what);
            found.is_some()
        });
        found
    }

    fn logs(&self) -> String {
        format!("(logs in {})", self.dir.display())
    }
}

/// A caller queued in `sales` on node A, talking (1000 Hz) on a thread for `secs`.
struct Caller {
    call_id: String,
    ok: Resp,
    talk: JoinHandle<(Uac, Vec<i16>)>,
}

fn call(c: &Cluster, n: u8, call_id: &str, secs: u64) -> Caller {
    let mut uac = Uac::new(&ip(n), c.nodes[0].sip);
    let ok = uac
        .answered("sales", call_id, Duration::from_secs(5))
        .expect("node A answers the queue call");
    let to = Uac::media_addr(&ok);
    let talk = std::thread::spawn(move || {
        let heard = uac.talk(to, 1000.0, Duration::from_secs(secs));
        (uac, heard)
    });
    Caller {
        call_id: call_id.to_string(),
        ok,
        talk,
    }
}

impl Caller {
    /// Waits for the talk to end, hangs up; what the caller heard.
    fn hang_up(self) -> Vec<i16> {
        let (mut uac, heard) = self.talk.join().expect("caller thread");
        uac.in_dialog("BYE", &self.call_id, &self.ok, None);
        heard
    }
}

/// Shares of 1000 Hz (caller), 600 Hz (agent) and 1400 Hz (supervisor) in `samples`.
fn tones(samples: &[i16]) -> (f64, f64, f64) {
    (
        tone_share(samples, 1000.0, 8000),
        tone_share(samples, 600.0, 8000),
        tone_share(samples, 1400.0, 8000),
    )
}

/// The newest recording of what `phone` heard, once it has been closed (call ended).
fn last_heard(phone: &Phone, calls_before: usize) -> Vec<i16> {
    let mut files = vec![];
    wait_until(Duration::from_secs(10), || {
        files = phone.heard_files();
        files.len() > calls_before
    });
    let path = files
        .last()
        .unwrap_or_else(|| panic!("no recording by {}:\n{}", phone.addr, phone.log()));
    let (rate, samples) = wav_samples(path);
    assert_eq!(rate, 8000, "{}", path.display());
    samples
}

fn write_tone(path: &Path, freq: f32, secs: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create the WAV");
    for i in 0..8000 * secs {
        let s = (2.0 * std::f32::consts::PI * freq * i as f32 / 8000.0).sin() * 8000.0;
        w.write_sample(s as i16).expect("write a sample");
    }
    w.finalize().expect("close the WAV");
}

/// Waits until `phone`'s log shows `n` calls ended.
fn wait_ended(phone: &Phone, n: usize, limit: Duration) -> bool {
    wait_until(limit, || {
        phone.log().matches("terminated (duration").count() >= n
    })
    .is_some()
}

#[test]
fn a_supervisor_on_another_node_listens_whispers_and_barges_in() {
    let _serial = serial();
    let mut c = Cluster::start();
    let since = now_ms();

    let (status, body) = c.listen(1, "no-such-call", SUPERVISOR, "listen");
    assert_eq!(status, 404, "unknown call: {body}");

    // 1. Listen: node B forwards to node A, which dials the supervisor registered through B.
    let first = call(&c, 20, "listen-1", 14);
    c.event("listen-1", "answer", since)
        .unwrap_or_else(|| panic!("the agent did not answer {}", c.logs()));
    let (status, body) = c.listen(1, "listen-1", SUPERVISOR, "listen");
    assert_eq!(status, 202, "listen through node B: {body} {}", c.logs());
    let joined = wait_until(Duration::from_secs(8), || {
        c.supervisor.calls_with("caller") == 1
    });
    assert!(
        joined.is_some(),
        "the supervisor's phone took the call:\n{}",
        c.supervisor.log()
    );
    let ev = c
        .event("listen-1", "listen", since)
        .expect("a queue event records the listener");
    assert_eq!(
        (ev.node.as_str(), ev.agent.as_deref(), ev.detail.as_deref()),
        ("main-a", Some(AGENT), Some("listen:2901"))
    );
    let heard = first.hang_up();
    assert!(
        wait_ended(&c.supervisor, 1, Duration::from_secs(5)),
        "the call's end BYEs the supervisor:\n{}",
        c.supervisor.log()
    );
    let (h1000, h600, _) = tones(&heard[heard.len() / 2..]);
    eprintln!("caller heard 1000 Hz {h1000:.3}, 600 Hz {h600:.3}");
    assert!(h600 > 0.3, "the caller hears the agent: {h600:.3}");
    let sup = last_heard(&c.supervisor, 0);
    let (s1000, s600, s1400) = tones(&sup[sup.len() / 3..]);
    eprintln!("supervisor heard 1000 Hz {s1000:.3}, 600 Hz {s600:.3}, 1400 Hz {s1400:.3}");
    // The agent's phone plays a full-scale tone, the caller one at a quarter of that.
    assert!(
        s1000 > 0.02 && s600 > 0.3,
        "the supervisor hears both parties: 1000 Hz {s1000:.3}, 600 Hz {s600:.3}"
    );
    assert!(
        wait_ended(&c.agent, 1, Duration::from_secs(5)),
        "{}",
        c.agent.log()
    );
    let agent = last_heard(&c.agent, 0);
    let (a1000, _, a1400) = tones(&agent[agent.len() / 4..]);
    assert!(
        a1000 > 0.3 && a1400 < 0.01,
        "listening, the agent hears only the caller: 1000 Hz {a1000:.3}, 1400 Hz {a1400:.3}"
    );
    assert!(c.db.wait_available(&[AGENT], Duration::from_secs(5)));

    // 2. Whisper: the supervisor (now playing 1400 Hz) is heard by the agent, never the caller.
    let wav = c.dir.join("whisper.wav");
    write_tone(&wav, 1400.0, 60);
    c.supervisor.play(&wav);
    let since = now_ms();
    let second = call(&c, 21, "listen-2", 16);
    c.event("listen-2", "answer", since)
        .unwrap_or_else(|| panic!("the agent did not answer {}", c.logs()));
    let (status, body) = c.listen(1, "listen-2", "2999", "whisper");
    assert_eq!(status, 409, "a phone that is not registered: {body}");
    assert!(body.contains("not registered"), "{body}");
    let (status, body) = c.listen(1, "listen-2", SUPERVISOR, "whisper");
    assert_eq!(status, 202, "whisper through node B: {body} {}", c.logs());
    let (status, body) = c.listen(0, "listen-2", AGENT_PHONE, "whisper");
    assert_eq!(status, 409, "one whisperer at a time: {body}");
    assert!(body.contains("whispering"), "{body}");
    let joined = wait_until(Duration::from_secs(8), || {
        c.supervisor.calls_with("caller") == 2
    });
    assert!(joined.is_some(), "{}", c.supervisor.log());
    std::thread::sleep(Duration::from_secs(6));
    // The supervisor hangs up: the call goes on.
    let r = c.supervisor.command("hangup", "");
    assert_eq!(r["ok"], true, "hangup: {r}");
    assert!(wait_ended(&c.supervisor, 2, Duration::from_secs(5)));
    let heard = second.hang_up();
    let (_, h600, h1400) = tones(&heard[heard.len() / 4..]);
    eprintln!("caller heard 600 Hz {h600:.3}, 1400 Hz {h1400:.3}");
    assert!(
        h600 > 0.3 && h1400 < 0.01,
        "the caller hears the agent and never the supervisor: 600 Hz {h600:.3}, 1400 Hz {h1400:.3}"
    );
    let tail = tones(&heard[heard.len().saturating_sub(12_000)..]);
    assert!(
        tail.1 > 0.3,
        "after the supervisor left, the caller still hears the agent: {tail:?}"
    );
    let ended = c
        .event("listen-2", "complete", since)
        .expect("the call completed");
    assert_eq!(
        ended.detail.as_deref(),
        Some("caller"),
        "the caller ended it"
    );
    assert!(
        wait_ended(&c.agent, 2, Duration::from_secs(5)),
        "{}",
        c.agent.log()
    );
    let agent = last_heard(&c.agent, 1);
    let (a1000, _, a1400) = tones(&agent);
    eprintln!("agent heard 1000 Hz {a1000:.3}, 1400 Hz {a1400:.3}");
    assert!(
        a1400 > 0.05 && a1000 > 0.05,
        "whispering, the agent hears the supervisor and the caller: 1400 Hz {a1400:.3}, 1000 Hz {a1000:.3}"
    );
    let sup = last_heard(&c.supervisor, 1);
    let (s1000, s600, _) = tones(&sup);
    assert!(
        s1000 > 0.02 && s600 > 0.3,
        "whispering, the supervisor hears both parties: {s1000:.3} {s600:.3}"
    );

    // 3. Barge: the supervisor (still playing 1400 Hz) is heard by both parties.
    assert!(c.db.wait_available(&[AGENT], Duration::from_secs(5)));
    let since = now_ms();
    let fourth = call(&c, 23, "listen-4", 14);
    c.event("listen-4", "answer", since)
        .unwrap_or_else(|| panic!("the agent did not answer {}", c.logs()));
    let (status, body) = c.listen(1, "listen-4", SUPERVISOR, "barge");
    assert_eq!(status, 202, "barge through node B: {body} {}", c.logs());
    let (status, body) = c.listen(0, "listen-4", AGENT_PHONE, "whisper");
    assert_eq!(status, 409, "nobody whispers over a barge: {body}");
    let joined = wait_until(Duration::from_secs(8), || {
        c.supervisor.calls_with("caller") == 3
    });
    assert!(joined.is_some(), "{}", c.supervisor.log());
    let ev = c
        .event("listen-4", "listen", since)
        .expect("a queue event records the barge");
    assert_eq!(ev.detail.as_deref(), Some("barge:2901"));
    let heard = fourth.hang_up();
    let (h1000, h600, h1400) = tones(&heard[heard.len() / 2..]);
    eprintln!("barge: caller heard 1000 Hz {h1000:.3}, 600 Hz {h600:.3}, 1400 Hz {h1400:.3}");
    assert!(
        h600 > 0.05 && h1400 > 0.05,
        "barging, the caller hears the agent and the supervisor: 600 Hz {h600:.3}, 1400 Hz {h1400:.3}"
    );
    assert!(
        wait_ended(&c.supervisor, 3, Duration::from_secs(5)),
        "the call's end BYEs the barging supervisor:\n{}",
        c.supervisor.log()
    );
    assert!(
        wait_ended(&c.agent, 3, Duration::from_secs(5)),
        "{}",
        c.agent.log()
    );
    let agent = last_heard(&c.agent, 2);
    let (a1000, _, a1400) = tones(&agent[agent.len() / 2..]);
    eprintln!("barge: agent heard 1000 Hz {a1000:.3}, 1400 Hz {a1400:.3}");
    assert!(
        a1400 > 0.05 && a1000 > 0.05,
        "barging, the agent hears the supervisor and the caller: 1400 Hz {a1400:.3}, 1000 Hz {a1000:.3}"
    );
    let sup = last_heard(&c.supervisor, 2);
    let (s1000, s600, _) = tones(&sup);
    assert!(
        s1000 > 0.02 && s600 > 0.3,
        "barging, the supervisor hears both parties: {s1000:.3} {s600:.3}"
    );

    // 4. The node holding the call is dead: node B says so.
    assert!(c.db.wait_available(&[AGENT], Duration::from_secs(5)));
    let third = call(&c, 22, "listen-3", 2);
    c.event("listen-3", "answer", now_ms() - 10_000)
        .unwrap_or_else(|| panic!("the agent did not answer {}", c.logs()));
    c.nodes[0].kill9();
    let dead = wait_until(Duration::from_secs(15), || {
        c.nodes[1].nodes().as_array().is_some_and(|a| {
            a.iter()
                .any(|n| n["name"] == "main-a" && n["alive"] == false)
        })
    });
    assert!(
        dead.is_some(),
        "node B sees node A dead: {}",
        c.nodes[1].nodes()
    );
    let (status, body) = c.listen(1, "listen-3", SUPERVISOR, "listen");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("node holding the call"), "{body}");
    drop(third.talk.join());
}
