//! Numbers (DIDs) and IVR menus end to end: a SIPp caller dials a number whose menu plays a
//! prompt, presses a key as RFC 4733 telephone-events (a pcap the test writes, played by
//! SIPp's `play_pcap_audio`) and waits in the queue the key chose; a key leading to a queue
//! that was removed, or no key at all, takes the menu's invalid path; a number on a holiday sends the caller to
//! its closed destination. What happened is read from the queue events (`enqueue`).
//!
//! One node on SQLite; every address is in 127.0.70.0/24.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use callfleet_store::{DestKind, Destination, IvrMenu, Number, QueueEventKind};
use jiff::tz::TimeZone;
use support::audio::{tone_share, write_tone_wav};
use support::dtmf::{event_pcap, key, FLASH};
use support::phone::device_add;
use support::queue::{queue, Db};
use support::raw_agent::next_request;
use support::raw_phone::RawPhone;
use support::uac::Uac;
use support::{peers, serial, sipp, workdir, NodeProc, NodeSpec};

const NODE_IP: &str = "127.0.70.1";
const CALLER_IP: &str = "127.0.70.20";
/// One call to `number` from SIPp sending `event` 1.5 s after the answer, held `hold_ms`
/// after; returns the queues the call entered (from the queue events) and when, in ms after
/// SIPp started.
fn call(
    dir: &Path,
    db: &Db,
    tag: &str,
    number: &str,
    event: u8,
    hold_ms: u32,
) -> Vec<(String, i64)> {
    std::fs::write(dir.join("keys.pcap"), event_pcap(event)).expect("write keys.pcap");
    let since = callfleet::now_ms();
    let scenario = peers().join("sipp/dtmf-call.xml");
    let node = format!("{NODE_IP}:5060");
    let stats = sipp(
        dir,
        tag,
        &[
            "-sf",
            scenario.to_str().expect("utf-8 path"),
            "-s",
            number,
            "-d",
            &hold_ms.to_string(),
            "-m",
            "1",
            "-i",
            CALLER_IP,
            "-p",
            "5070",
            "-mp",
            "16000",
            "-timeout",
            "30",
            "-max_retrans",
            "5",
            &node,
        ],
    );
    assert_eq!(
        (stats.successful, stats.failed),
        (1, 0),
        "SIPp call {tag}: see {}",
        dir.join(format!("sipp-{tag}.out")).display()
    );
    db.events(since)
        .into_iter()
        .filter(|e| e.event == QueueEventKind::Enqueue)
        .map(|e| (e.queue, e.at_ms - since))
        .collect()
}

/// The queues of [`call`]'s answer.
fn queues(entered: &[(String, i64)]) -> Vec<&str> {
    entered.iter().map(|(q, _)| q.as_str()).collect()
}

fn menu(choices: &[(char, &str)]) -> IvrMenu {
    IvrMenu {
        name: "main".into(),
        prompt: "welcome.wav".into(),
        timeout_ms: 3_000,
        repeats: 2,
        invalid: Destination::new(DestKind::Queue, "operator"),
        choices: choices
            .iter()
            .map(|(k, to)| (*k, to.parse().expect("destination")))
            .collect::<BTreeMap<_, _>>(),
        moh_class: "default".into(),
        created_at_ms: 0,
    }
}

#[test]
fn a_caller_chooses_a_queue_by_key_and_a_closed_number_goes_to_its_closed_destination() {
    let _serial = serial();
    let dir = workdir("ivr");
    write_tone_wav(&dir.join("prompts").join("welcome.wav"), 700.0, 0.5);
    let db_url = format!("sqlite://{}", dir.join("cluster.db").display());
    let extra = format!("prompts_dir = \"{}\"", dir.join("prompts").display());
    let node = NodeProc::start(
        &dir,
        NodeSpec {
            name: "ivr",
            role: "main",
            ip: NODE_IP,
            db: &db_url,
            capacity: 20,
            extra: &extra,
        },
    );
    let db = Db::connect(&db_url);
    for q in ["sales", "support", "operator", "after"] {
        db.add_queue(&queue(q, "ringall"));
    }
    db.block(db.store.upsert_menu(&menu(&[
        ('1', "queue:sales"),
        ('2', "queue:support"),
        ('3', "queue:gone"),
    ])))
    .expect("menu");
    let number = |n: &str, open: &str, holidays: String| Number {
        number: n.into(),
        open: open.parse().expect("destination"),
        closed: Destination::new(DestKind::Queue, "after"),
        time_zone: "UTC".into(),
        open_hours: "mon-sun 00:00-24:00".into(),
        holidays,
        created_at_ms: 0,
    };
    db.block(
        db.store
            .upsert_number(&number("0800", "menu:main", String::new())),
    )
    .expect("number");
    // Closed today whatever the hour: yesterday, today and tomorrow are holidays.
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(TimeZone::UTC)
        .date();
    let days = [today.yesterday(), Ok(today), today.tomorrow()]
        .into_iter()
        .map(|d| d.expect("a date").to_string())
        .collect::<Vec<_>>()
        .join(" ");
    db.block(db.store.upsert_number(&number("0900", "queue:sales", days)))
        .expect("number");
    db.wait_reloaded(&node);

    // Keys pressed 1 s after the prompt: the queue is entered within about 2 s.
    for (tag, k, want) in [("key-2", '2', "support"), ("key-1", '1', "sales")] {
        let entered = call(&dir, &db, tag, "0800", key(k), 3000);
        assert_eq!(queues(&entered), [want], "{tag}");
        assert!(
            entered[0].1 < 3_000,
            "{tag}: entered after {} ms",
            entered[0].1
        );
    }
    // Key 3 leads to a queue that does not exist: logged, and the menu's invalid path.
    let entered = call(&dir, &db, "key-3", "0800", key('3'), 3000);
    assert_eq!(queues(&entered), ["operator"]);
    // No key (an event that is none): the menu plays twice (0.5 s, then 3 s for a key, each
    // time), then the invalid path.
    let entered = call(&dir, &db, "no-key", "0800", FLASH, 9000);
    assert_eq!(queues(&entered), ["operator"]);
    assert!(
        (6_900..9_000).contains(&entered[0].1),
        "two plays and timeouts, then the invalid path: {} ms",
        entered[0].1
    );
    let log = node.log_text();
    assert!(
        log.contains("the destination does not exist") && log.contains("queue:gone"),
        "{log}"
    );
    // The closed number: the key pressed in its queue changes nothing.
    let entered = call(&dir, &db, "closed", "0900", key('1'), 3000);
    assert_eq!(queues(&entered), ["after"]);
    let log = node.log_text();
    assert!(!log.contains("panicked"), "{log}");
}

/// A menu's music-on-hold class: a caller who leaves the menu for an agent's extension hears
/// that class (1100 Hz) while the agent's phone rings, not the default music (1400 Hz).
#[test]
fn a_caller_sent_from_a_menu_to_an_agent_hears_the_menus_music_while_it_rings() {
    let _serial = serial();
    let dir = workdir("ivr-moh");
    write_tone_wav(&dir.join("prompts").join("welcome.wav"), 700.0, 0.5);
    write_tone_wav(&dir.join("moh").join("default.wav"), 1400.0, 5.0);
    write_tone_wav(&dir.join("moh").join("calm").join("calm.wav"), 1100.0, 5.0);
    let db_url = format!("sqlite://{}", dir.join("cluster.db").display());
    let extra = format!("prompts_dir = \"{}\"", dir.join("prompts").display());
    let node = NodeProc::start(
        &dir,
        NodeSpec {
            name: "ivr-moh",
            role: "main",
            ip: "127.0.70.2",
            db: &db_url,
            capacity: 20,
            extra: &extra,
        },
    );
    let db = Db::connect(&db_url);
    // Agent 1001 logged in on a phone that rings and never answers.
    device_add(&node, "2001", "pw-agent", false);
    let mut phone = RawPhone::new("127.0.70.30", node.sip, "2001", "pw-agent");
    let reg = phone.register().expect("an answer to the REGISTER");
    assert_eq!(reg.status, 200, "{}", reg.text);
    db.add_agent("1001", "1234");
    db.login("1001", "2001");
    let mut m = menu(&[]);
    m.timeout_ms = 500;
    m.repeats = 1;
    m.invalid = Destination::new(DestKind::Agent, "1001");
    m.moh_class = "calm".into();
    db.block(db.store.upsert_menu(&m)).expect("menu");
    db.block(db.store.upsert_number(&Number {
        number: "0800".into(),
        open: Destination::new(DestKind::Menu, "main"),
        closed: Destination::new(DestKind::Menu, "main"),
        time_zone: "UTC".into(),
        open_hours: String::new(),
        holidays: String::new(),
        created_at_ms: 0,
    }))
    .expect("number");
    db.wait_reloaded(&node);

    let mut uac = Uac::new("127.0.70.21", node.sip);
    let ok = uac
        .answered("0800", "ivr-moh-1", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("the number answers:\n{}", node.log_text()));
    // The prompt (0.5 s), no key for 0.5 s, then the agent's phone rings.
    let heard = uac.talk(Uac::media_addr(&ok), 500.0, Duration::from_secs(4));
    uac.in_dialog("BYE", "ivr-moh-1", &ok, None);
    let ringing = &heard[heard.len() / 2..];
    let (calm, default) = (
        tone_share(ringing, 1100.0, 8000),
        tone_share(ringing, 1400.0, 8000),
    );
    eprintln!("while the agent rang: 1100 Hz {calm:.2}, 1400 Hz {default:.2}");
    assert!(
        next_request(&phone.uac, "INVITE", Duration::from_secs(1)).is_some(),
        "the agent's phone was rung:\n{}",
        node.log_text()
    );
    assert!(
        calm > 0.5 && default < 0.05,
        "the menu's class plays while the agent rings: 1100 Hz {calm:.2}, 1400 Hz {default:.2}"
    );
}
