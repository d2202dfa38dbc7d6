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

use callfleet_store::{DestKind, Destination, IvrMenu, Number, QueueEventKind};
use jiff::tz::TimeZone;
use support::audio::write_tone_wav;
use support::dtmf::{event_pcap, key, FLASH};
use support::queue::{queue, Db};
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
