//! Agents and the queue with real phones: a baresip phone registers, its agent logs in, a
//! caller dials the queue, the node rings the agent's phone, bridges the call, and audio flows
//! both ways (checked in the sound, not the signalling). Provisioning goes through the store,
//! as the admin API will.

mod support;

use std::time::{Duration, Instant};

use callfleet_store::{Agent, AgentState, CallLeg, Member, Queue, Store};
use support::audio::{tone_share, wav_samples};
use support::phone::{device_add, Phone};
use support::uac::Uac;
use support::{wait_until, workdir, NodeProc, NodeSpec};

fn queue(name: &str, strategy: &str) -> Queue {
    Queue {
        name: name.into(),
        strategy: strategy.parse().expect("a ring strategy"),
        ring_timeout_ms: 15_000,
        max_wait_ms: 60_000,
        announce_interval_ms: 0,
        moh_class: "default".into(),
        wrapup_ms: 500,
        fallback: callfleet_store::Fallback::Hangup,
        fallback_target: None,
        rr_last: None,
        recording: Default::default(),
        recording_prompt: false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_call_reaches_a_baresip_agent_with_audio_both_ways() {
    let dir = workdir("agents-audio");
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let n = NodeProc::start(
        &dir,
        NodeSpec {
            name: "solo",
            role: "main",
            ip: "127.0.7.11",
            db: &db,
            capacity: 20,
            extra: "",
        },
    );
    device_add(&n, "2001", "phone-secret", false);
    let phone = Phone::start(&dir, "127.0.7.41", "2001", "phone-secret", &n);
    let store = Store::connect(&db).await.expect("open db");
    let registered = wait_until(Duration::from_secs(10), || {
        let s = store.clone();
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(async move { s.registrations("2001", callfleet::now_ms()).await })
        })
        .map(|r| !r.is_empty())
        .unwrap_or(false)
    });
    assert!(
        registered.is_some(),
        "phone did not register:\n{}",
        phone.log()
    );
    let pin = callfleet_store::pin::hash("1001", "1234").expect("hash the PIN");
    store
        .upsert_agent(&Agent::new("1001", "Ada", &pin, callfleet::now_ms()))
        .await
        .unwrap();
    store
        .upsert_queue(&queue("sales", "ringall"))
        .await
        .unwrap();
    store
        .upsert_member(&Member {
            queue: "sales".into(),
            agent: "1001".into(),
            tier: 0,
            vip_allowed: false,
            weight: 1,
            position: 0,
        })
        .await
        .unwrap();
    // Hot-desk login through the JSON API; a phone that does not exist is refused.
    let login = "/api/v1/agents/1001/login";
    let (code, body) = n.post_json(login, r#"{"device":"2999"}"#);
    assert_eq!(code, 404, "{body}");
    let (code, body) = n.post_json(login, r#"{"device":"2001"}"#);
    assert_eq!(code, 204, "{body}");
    let agent = store.agent("1001").await.unwrap().unwrap();
    assert_eq!(agent.device.as_deref(), Some("2001"));
    tokio::time::sleep(Duration::from_millis(1500)).await; // the node reloads its config each second

    let mut caller = Uac::new("127.0.7.100", n.sip);
    let (_, cseq) = caller.invite("sales", "q-audio-1", None, "");
    let ok = caller
        .recv_final(Duration::from_secs(5))
        .expect("the queue answers");
    assert_eq!(ok.status, 200, "{}", ok.text);
    let to = ok.header("To").unwrap();
    caller.send(&format!(
        "ACK sip:callfleet@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-ack-q1\r\nMax-Forwards: 70\r\n\
         From: <sip:caller@{l}>;tag=from-q-audio-1\r\nTo: {to}\r\nCall-ID: q-audio-1\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
        t = caller.target,
        l = caller.local
    ));
    let rtp_to = Uac::media_addr(&ok);
    let heard = tokio::task::block_in_place(|| caller.talk(rtp_to, 1000.0, Duration::from_secs(6)));
    caller.in_dialog("BYE", "q-audio-1", &ok, None);
    let bye = caller
        .recv_final(Duration::from_secs(3))
        .expect("BYE answered");
    assert_eq!(bye.status, 200);

    let mut events: Vec<String> = vec![];
    for _ in 0..30 {
        events = store
            .queue_events(Some("q-audio-1"), 0)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event.to_string())
            .collect();
        if events.iter().any(|e| e == "complete") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for want in ["enqueue", "offer", "answer", "complete"] {
        assert!(
            events.iter().any(|e| e == want),
            "queue event {want} missing: {events:?}"
        );
    }
    // The caller heard the agent's phone (phone.sh plays a 600 Hz tone) in the last seconds.
    let tail = &heard[heard.len().saturating_sub(16_000)..];
    let share = tone_share(tail, 600.0, 8000);
    eprintln!(
        "caller heard 600 Hz share {share:.3} (1000 Hz: {:.3})",
        tone_share(tail, 1000.0, 8000)
    );
    assert!(
        share > 0.3,
        "caller hears the agent's 600 Hz tone: share {share:.3}, {} samples",
        heard.len()
    );
    // The agent's phone recorded the caller's 1000 Hz tone.
    let rec_dir = phone.dir.join("rec");
    let dec = std::fs::read_dir(&rec_dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"));
    let dec =
        dec.unwrap_or_else(|| panic!("no recording in {}: {}", rec_dir.display(), phone.log()));
    let (rate, samples) = wav_samples(&dec);
    let share = tone_share(&samples[samples.len() / 4..], 1000.0, rate);
    eprintln!(
        "agent heard 1000 Hz share {share:.3} at {rate} Hz (600 Hz: {:.3})",
        tone_share(&samples[samples.len() / 4..], 600.0, rate)
    );
    assert!(
        share > 0.3,
        "agent hears the caller's 1000 Hz tone: share {share:.3} at {rate} Hz"
    );
    // Wrap-up ends and the agent is free again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let agent = store.agent("1001").await.unwrap().unwrap();
    assert_eq!(agent.state, AgentState::Available, "{agent:?}");
    both_legs_stored(&store, "q-audio-1").await;
}

/// Both legs' RTP quality is stored with the call: the caller's (our sender, in order) and the
/// agent's (baresip's stream, the caller's relayed to it).
async fn both_legs_stored(store: &Store, call_id: &str) {
    let mut legs = vec![];
    for _ in 0..50 {
        legs = store
            .quality_of_call(call_id)
            .await
            .expect("read call_quality");
        if legs.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let roles: Vec<CallLeg> = legs.iter().map(|l| l.leg).collect();
    assert_eq!(roles, [CallLeg::Agent, CallLeg::Caller], "{legs:?}");
    let (agent_leg, caller_leg) = (&legs[0], &legs[1]);
    assert!(
        caller_leg.packets_in > 200 && caller_leg.lost == 0,
        "{caller_leg:?}"
    );
    assert!(
        agent_leg.packets_in > 100 && agent_leg.lost <= 1,
        "{agent_leg:?}"
    );
    assert!(
        agent_leg.packets_out > 100,
        "the caller relayed: {agent_leg:?}"
    );
}

/// A caller nobody serves: at the queue's maximum wait it hears the timeout prompt and the
/// queue's fallback (here: hang up) ends the call with our BYE; the queue says "timeout".
#[tokio::test(flavor = "multi_thread")]
async fn at_maximum_wait_the_caller_gets_the_timeout_path() {
    let dir = workdir("agents-maxwait");
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let n = NodeProc::start(
        &dir,
        NodeSpec {
            name: "solo",
            role: "main",
            ip: "127.0.7.12",
            db: &db,
            capacity: 20,
            extra: "",
        },
    );
    let store = Store::connect(&db).await.expect("open db");
    let mut q = queue("support", "ringall");
    q.max_wait_ms = 2_000;
    store.upsert_queue(&q).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await; // config reload
    let mut caller = Uac::new("127.0.7.101", n.sip);
    caller
        .answered("support", "q-timeout-1", Duration::from_secs(5))
        .expect("queue answers");
    let started = Instant::now();
    caller
        .sock
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut buf = [0u8; 4000];
    let (len, from) = caller
        .sock
        .recv_from(&mut buf)
        .expect("a BYE after the timeout prompt");
    let bye = String::from_utf8_lossy(&buf[..len]).into_owned();
    assert!(bye.starts_with("BYE "), "{bye}");
    let waited = started.elapsed();
    // 2 s of waiting, then the "all busy" prompt (a tone pattern here: no prompt files) plays.
    assert!(
        waited >= Duration::from_millis(2_400),
        "BYE only after the wait and the prompt: {waited:?}"
    );
    let h = |name| support::uac::header(&bye, name).unwrap();
    let reply = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        h("Via"), h("From"), h("To"), h("Call-ID"), h("CSeq")
    );
    caller.sock.send_to(reply.as_bytes(), from).unwrap();
    let mut events = vec![];
    for _ in 0..30 {
        events = store
            .queue_events(Some("q-timeout-1"), 0)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event.to_string())
            .collect::<Vec<_>>();
        if events.iter().any(|e| e == "timeout") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(events, vec!["enqueue".to_string(), "timeout".to_string()]);
    assert!(
        store.waiting_entries().await.unwrap().is_empty(),
        "the entry left the cluster queue"
    );
}
