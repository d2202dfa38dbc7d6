//! Call recordings against real peers: a caller (our UAC, 1000 Hz) queued in a queue that
//! records every call is answered by an agent on a baresip phone (600 Hz). The conversation is
//! recorded as a stereo WAV from the call's tap, stored as a row through the record writer,
//! and converted to MP3 by the background job, which removes the WAV once the MP3 checks out.
//! The MP3, decoded by sox (not by the node's own decoder), holds the caller's tone on the left
//! channel and the phone's on the right. The node runs on 127.0.48.1 with SQLite; the queue
//! and agent are in the database before the node starts, so no reload is waited for.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use callfleet_store::{Queue, RecordingFormat, RecordingPolicy, RecordingRow};
use serde_json::json;
use support::audio::{tone_share, wav_samples};
use support::browser::Browser;
use support::phone::{device_add, Phone};
use support::queue::{member, queue, Db};
use support::uac::{Resp, Uac};
use support::{require, user_add, wait_alive, wait_until, workdir, NodeProc, NodeSpec};

const AGENT: &str = "1001";
const PHONE: &str = "2001";

/// Decodes `mp3` with sox into two mono WAVs (left, right) in `dir`.
fn split_channels(mp3: &Path, dir: &Path) -> (Vec<i16>, Vec<i16>) {
    let side = |n: &str| -> Vec<i16> {
        let out = dir.join(format!("decoded-{n}.wav"));
        let status = Command::new("sox")
            .arg(mp3)
            .args(["-b", "16"])
            .arg(&out)
            .args(["remix", n])
            .status()
            .expect("run sox");
        assert!(status.success(), "sox could not decode {}", mp3.display());
        let (rate, samples) = wav_samples(&out);
        assert_eq!(rate, 8000);
        samples
    };
    (side("1"), side("2"))
}

fn recordings(db: &Db, call_id: &str) -> Vec<RecordingRow> {
    db.block(db.store.recordings(Some(call_id), 10))
        .expect("read recordings")
}

/// The call's recordings once the first is an MP3 (within 30 s).
fn converted(db: &Db, call_id: &str, n: &NodeProc) -> Vec<RecordingRow> {
    let mut rows = vec![];
    let done = wait_until(Duration::from_secs(30), || {
        rows = recordings(db, call_id);
        rows.first()
            .is_some_and(|r| r.format == RecordingFormat::Mp3)
    });
    assert!(
        done.is_some(),
        "no MP3 recording: {rows:?}\n{}",
        n.log_text()
    );
    rows
}

/// A node on `ip` (SQLite in `dir`) whose queue `sales` records every call, with the agent
/// logged in on a baresip phone on `phone_ip`; `shed` is added to the test config's `[shed]`.
fn recording_node(dir: &Path, ip: &str, phone_ip: &str, shed: &str) -> (NodeProc, Db, Phone) {
    let db_url = format!("sqlite://{}", dir.join("cluster.db").display());
    let extra = format!(
        "[recording]\ndir = \"{}\"\nmin_free_mb = 1\n",
        dir.join("recordings").display()
    );
    let mut n = NodeProc::configure(
        dir,
        NodeSpec {
            name: "solo",
            role: "main",
            ip,
            db: &db_url,
            capacity: 20,
            extra: &extra,
        },
    );
    let text = std::fs::read_to_string(&n.config).expect("read config");
    let section = "[shed]\n";
    assert!(text.contains(section), "the test config's [shed]: {text}");
    std::fs::write(
        &n.config,
        text.replace(section, &format!("{section}{shed}")),
    )
    .expect("write config");
    let db = Db::connect(&db_url);
    device_add(&n, PHONE, "pw-agent", false);
    db.add_agent(AGENT, "1234");
    db.login(AGENT, PHONE);
    db.add_queue(&Queue {
        recording: RecordingPolicy::Always,
        recording_prompt: true,
        ..queue("sales", "ringall")
    });
    db.add_member(&member("sales", AGENT, 0, 0));
    n.spawn();
    let phone = Phone::start(dir, phone_ip, PHONE, "pw-agent", &n);
    let registered = wait_until(Duration::from_secs(15), || db.registered(PHONE));
    assert!(
        registered.is_some(),
        "the phone did not register:\n{}",
        phone.log()
    );
    (n, db, phone)
}

#[test]
fn a_recorded_call_becomes_a_stereo_mp3_caller_left_agent_right() {
    require("baresip", "baresip");
    require("sox", "sox");
    let dir = workdir("recording");
    let db_url = format!("sqlite://{}", dir.join("cluster.db").display());
    let rec_dir = dir.join("recordings");
    let (n, db, _phone) = recording_node(&dir, "127.0.48.1", "127.0.48.10", "");

    let call_id = "rec-1";
    let mut uac = Uac::new("127.0.48.20", n.sip);
    let ok = uac
        .answered("sales", call_id, Duration::from_secs(5))
        .expect("the queue answers");
    let to = Uac::media_addr(&ok);
    // The prompt, the ringing, then about 6 s of conversation.
    uac.talk(to, 1000.0, Duration::from_secs(10));
    uac.in_dialog("BYE", call_id, &ok, None);

    let rows = converted(&db, call_id, &n);
    let r = &rows[0];
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (r.node.as_str(), r.queue.as_deref(), r.agent.as_deref()),
        ("solo", Some("sales"), Some(AGENT))
    );
    assert!(
        (3_000..=10_000).contains(&r.duration_ms),
        "the conversation's length: {r:?}"
    );
    let mp3 = PathBuf::from(&r.path);
    assert!(mp3.starts_with(&rec_dir) && mp3.extension().is_some_and(|e| e == "mp3"));
    assert_eq!(
        std::fs::metadata(&mp3).expect("the MP3").len() as i64,
        r.size_bytes
    );
    assert!(
        !mp3.with_extension("wav").exists(),
        "the WAV is removed once the MP3 is verified"
    );
    let (left, right) = split_channels(&mp3, &dir);
    // The first second holds the priming and the phone's start.
    let (l, r_) = (&left[8000..], &right[8000..]);
    let (l1000, r600) = (tone_share(l, 1000.0, 8000), tone_share(r_, 600.0, 8000));
    eprintln!(
        "left 1000 Hz {l1000:.3} 600 Hz {:.3}; right 600 Hz {r600:.3} 1000 Hz {:.3}",
        tone_share(l, 600.0, 8000),
        tone_share(r_, 1000.0, 8000)
    );
    assert!(l1000 >= 0.9, "the caller on the left: {l1000:.3}");
    assert!(r600 >= 0.9, "the agent on the right: {r600:.3}");
    let metrics = n.metrics();
    assert!(
        metrics.contains("callfleet_recordings_total{outcome=\"recorded\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("callfleet_jobs_total{outcome=\"done\"} 1"),
        "{metrics}"
    );
    plays_from_another_node(&dir, &db_url, r);
}

/// Converting to MP3 is optional work that load shedding defers: while the node is at shed
/// level 2 (here from its calls in progress) the job of a recorded call waits, its WAV kept;
/// once those calls end and the level falls, the job runs by itself.
#[test]
fn an_mp3_job_waits_while_the_node_sheds_and_runs_once_the_level_falls() {
    require("baresip", "baresip");
    let dir = workdir("recording-shed");
    // Of 20 calls, 1 makes level 1 and 2 make level 2; the level falls below 5 %: no call.
    let shed = "calls = [5.0, 10.0]\n";
    let (n, db, _phone) = recording_node(&dir, "127.0.48.3", "127.0.48.11", shed);
    let level = || n.metric("callfleet_shed_level ");
    let deferred = || n.metric("callfleet_shed_actions_total{action=\"background_deferred\"} ");
    let mut fillers: Vec<(Uac, String, Resp)> = (0..2)
        .map(|i| {
            let mut uac = Uac::new(&format!("127.0.48.{}", 21 + i), n.sip);
            let call_id = format!("filler-{i}");
            let ok = uac
                .answered("100", &call_id, Duration::from_secs(5))
                .expect("music on hold answers");
            (uac, call_id, ok)
        })
        .collect();
    let busy = wait_until(Duration::from_secs(10), || level() == 2.0);
    assert!(busy.is_some(), "level 2 with 2 calls: {}", n.log_text());

    // A recorded call, answered and bridged as at any level below 3.
    let call_id = "rec-shed";
    let mut uac = Uac::new("127.0.48.23", n.sip);
    let ok = uac
        .answered("sales", call_id, Duration::from_secs(5))
        .expect("the queue answers at level 2");
    uac.talk(Uac::media_addr(&ok), 1000.0, Duration::from_secs(8));
    uac.in_dialog("BYE", call_id, &ok, None);
    let mut rows = vec![];
    let recorded = wait_until(Duration::from_secs(10), || {
        rows = recordings(&db, call_id);
        !rows.is_empty()
    });
    assert!(recorded.is_some(), "no recording: {}", n.log_text());
    // The runner looks every 2 s: three more deferrals, and the job has still not run.
    let before = deferred();
    let waited = wait_until(Duration::from_secs(15), || deferred() >= before + 3.0);
    assert!(
        waited.is_some(),
        "the runner deferred nothing: {}",
        n.log_text()
    );
    let r = &recordings(&db, call_id)[0];
    assert_eq!(r.format, RecordingFormat::Wav, "{r:?}");
    assert!(PathBuf::from(&r.path).exists(), "the WAV waits: {r:?}");
    let jobs = db.block(db.store.job_counts()).expect("count jobs");
    assert_eq!(jobs, (1, 0, 0), "one job queued, none done or failed");
    assert_eq!(level(), 2.0);

    // The calls end: the level falls and the job runs.
    for (uac, call_id, ok) in &mut fillers {
        uac.in_dialog("BYE", call_id, ok, None);
    }
    let fell = wait_until(Duration::from_secs(15), || level() == 0.0);
    assert!(fell.is_some(), "the level did not fall: {}", n.log_text());
    converted(&db, call_id, &n);
    assert!(!PathBuf::from(&r.path).exists(), "the WAV is removed");
    let jobs = db.block(db.store.job_counts()).expect("count jobs");
    assert_eq!(jobs, (0, 1, 0));
    let changes: Vec<String> = n
        .log_text()
        .lines()
        .filter(|l| l.contains("shed level "))
        .map(str::to_owned)
        .collect();
    assert!(
        changes.iter().any(|l| l.contains("-> 2"))
            && changes.last().is_some_and(|l| l.contains("-> 0")),
        "{changes:#?}"
    );
}

/// A second node on the same database serves the recording held by the first: a panel
/// user's range request is forwarded (signed) and answered 206, and the Calls page plays
/// the MP3 in headless Chromium.
fn plays_from_another_node(dir: &Path, db_url: &str, r: &RecordingRow) {
    let other = NodeProc::start(
        dir,
        NodeSpec {
            name: "other",
            role: "main",
            ip: "127.0.48.2",
            db: db_url,
            capacity: 20,
            extra: "",
        },
    );
    wait_alive(&other, 2);
    user_add(&other, "sue", "supervisor", "sue-password-1", None);
    let b = Browser::start(dir, &dir.join("shots"));
    b.goto(&format!("http://{}/calls", other.http));
    assert!(b.url().contains("/login"), "no session: {}", b.url());
    b.type_into("#name", "sue");
    b.type_into("#password", "sue-password-1");
    b.click("#login");
    b.goto(&format!("http://{}/calls", other.http));
    let player = format!("[data-testid='recording-{}'] audio", r.id);
    let played = b.wait_js(
        Duration::from_secs(15),
        "const a = document.querySelector(arguments[0]); \
         return !!a && isFinite(a.duration) && a.duration > 0;",
        vec![json!(player)],
    );
    let state = b.js(
        "const a = document.querySelector(arguments[0]); \
         return a ? [a.duration, a.error && a.error.message, a.currentSrc] : null;",
        vec![json!(player)],
    );
    assert!(
        played,
        "the recording does not load in the panel: {state} {}",
        b.url()
    );
    eprintln!("the panel's player: {state}");
    let secs = state[0].as_f64().unwrap_or(0.0);
    assert!(
        (secs * 1000.0 - r.duration_ms as f64).abs() < 1000.0,
        "{secs} s played, {} ms recorded",
        r.duration_ms
    );
    let range = b.js_async(
        "const done = arguments[arguments.length - 1]; \
         fetch(arguments[0], {headers: {Range: 'bytes=100-199'}}) \
           .then(async r => done([r.status, r.headers.get('content-range'), \
                 r.headers.get('content-type'), (await r.arrayBuffer()).byteLength])) \
           .catch(e => done(String(e)));",
        vec![json!(format!("/recordings/{}/audio", r.id))],
        Duration::from_secs(10),
    );
    assert_eq!(
        range,
        json!([
            206,
            format!("bytes 100-199/{}", r.size_bytes),
            "audio/mpeg",
            100
        ]),
        "a range of the MP3 through the node that does not hold it"
    );
    let severe: Vec<String> = b
        .console()
        .into_iter()
        .filter(|l| l.starts_with("SEVERE"))
        .collect();
    assert!(severe.is_empty(), "console errors: {severe:?}");
}
