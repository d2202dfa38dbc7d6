//! What the transfer tests (blind and attended) share: one node with agents on baresip phones
//! (or one raw phone), their tones, and what a listener heard of them.

use std::time::Duration;

use super::audio::{dominant, write_tone_wav};
use super::phone::{device_add, Phone};
use super::queue::{member, moh_node, queue, Db};
use super::raw_phone::RawPhone;
use super::{wait_until, NodeProc, Pg};

/// The tones: agents 1001, 1002 and 1003, the caller, the music on hold.
pub const TONE_1: f32 = 600.0;
pub const TONE_2: f32 = 800.0;
pub const TONE_3: f32 = 1200.0;
pub const CALLER_TONE: f32 = 1000.0;
pub const MOH: f32 = 1400.0;

/// The tone of each 20 ms frame, if one of ours dominates it.
pub fn labels(frames: &[Vec<i16>]) -> Vec<Option<f32>> {
    frames
        .iter()
        .map(|f| dominant(f, &[TONE_1, TONE_2, TONE_3, CALLER_TONE, MOH]))
        .collect()
}

/// Whether the last second of `frames` is all `tone`.
pub fn hears(frames: &[Vec<i16>], tone: f32) -> bool {
    frames.len() >= 50
        && labels(&frames[frames.len() - 50..])
            .iter()
            .all(|l| *l == Some(tone))
}

/// One node (`net`.1) on a fresh database: queue `sales` with agent 1001 on phone 2001, queue
/// `support` with agent 1003 (baresip phone 2003, .12); agent 1002 (baresip phone 2002, .11)
/// is in no queue. Phone 2001 is a baresip phone (.10, with a control port), or with `raw` a
/// phone made of raw SIP (.30), registered and returned.
pub struct Setup {
    pub db: Db,
    pub node: NodeProc,
    pub pg: Pg,
    /// The baresip phones, 2001 first unless it is raw.
    pub phones: Vec<Phone>,
}

pub fn setup(net: &str, tag: &str, raw: bool) -> (Setup, Option<RawPhone>) {
    let ip = |n: u8| format!("{net}.{n}");
    let (dir, pg, node, db) = moh_node(tag, &ip(1), MOH);
    let (mut phones, mut raw_phone) = (vec![], None);
    for (n, tone) in [(1u8, TONE_1), (2, TONE_2), (3, TONE_3)] {
        let device = format!("200{n}");
        device_add(&node, &device, "pw-agent", false);
        if n == 1 && raw {
            let mut phone = RawPhone::new(&ip(30), node.sip, &device, "pw-agent");
            let r = phone.register().expect("an answer to the REGISTER");
            assert_eq!(r.status, 200, "{}", r.text);
            raw_phone = Some(phone);
            continue;
        }
        let phone = Phone::start_with_ctrl(&dir, &ip(9 + n), &device, "pw-agent", &node, 4444);
        let wav = dir.join(format!("tone-{n}.wav"));
        write_tone_wav(&wav, tone, 60.0);
        phone.play(&wav);
        phones.push(phone);
    }
    for n in 1..=3 {
        let (agent, device) = (format!("100{n}"), format!("200{n}"));
        let ok = wait_until(Duration::from_secs(15), || db.registered(&device));
        assert!(ok.is_some(), "phone {device} did not register");
        db.add_agent(&agent, "1234");
        db.login(&agent, &device);
    }
    db.add_queue(&queue("sales", "ringall"));
    db.add_member(&member("sales", "1001", 0, 0));
    db.add_queue(&queue("support", "ringall"));
    db.add_member(&member("support", "1003", 0, 0));
    db.wait_reloaded(&node);
    let s = Setup {
        db,
        node,
        pg,
        phones,
    };
    (s, raw_phone)
}
