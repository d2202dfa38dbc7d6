//! What the transfer tests (blind and attended) share: one node with agents on baresip phones
//! (or one raw phone), their tones, and what a listener heard of them; the queued caller, the
//! transfer from a raw agent's phone (its REFERs and the NOTIFYs and BYEs that follow), and
//! the call's records.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::audio::{dominant, heard, write_tone_wav};
use super::phone::{device_add, Phone};
use super::queue::{member, moh_node, queue, Db};
use super::raw_agent::{Pickup, RawAgent};
use super::raw_phone::RawPhone;
use super::uac::{header, Resp, Uac};
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

/// A caller (our UAC) answered in queue `sales`; it sends [`CALLER_TONE`] while it listens.
pub struct Caller {
    pub uac: Uac,
    /// The node's 200 OK.
    pub ok: Resp,
    pub call_id: String,
    /// Where the node takes the caller's media.
    pub media: SocketAddr,
}

impl Caller {
    /// Calls queue `sales` of the node at `node` from `ip`; the node must answer within 5 s.
    pub fn queued(ip: &str, node: SocketAddr, call_id: &str) -> Caller {
        let mut uac = Uac::new(ip, node);
        let ok = uac
            .answered("sales", call_id, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("the node answers the queue call {call_id}"));
        let media = Uac::media_addr(&ok);
        Caller {
            uac,
            ok,
            call_id: call_id.to_string(),
            media,
        }
    }

    /// What the caller hears, sending its tone, for up to `limit` or until `done` (see
    /// [`Uac::listen`]).
    pub fn listen(&self, limit: Duration, done: impl FnMut(&[Vec<i16>]) -> bool) -> Vec<Vec<i16>> {
        self.uac
            .listen(Some((self.media, CALLER_TONE)), limit, done)
    }

    /// Hangs up (BYE); the tones of `frames` it heard, also printed.
    pub fn hang_up(&mut self, frames: &[Vec<i16>]) -> Vec<Option<f32>> {
        self.uac.in_dialog("BYE", &self.call_id, &self.ok, None);
        let l = labels(frames);
        eprintln!("caller heard: {}", heard(&l));
        l
    }
}

/// A transfer from a raw agent's phone, as its caller heard it (see [`raw_transfer`]).
pub struct RawTransfer<T, U> {
    pub frames: Vec<Vec<i16>>,
    /// The frames the caller had heard when `before` ran, and when `transfer` ran.
    pub marks: Vec<usize>,
    /// Whether the caller then heard agent 1002 ([`TONE_2`]) for a second.
    pub reached: bool,
    /// What `before` and `transfer` returned (defaults if they never ran).
    pub before: T,
    pub after: U,
}

/// Drives a queued call that `pickup`'s raw agent answers: once the caller hears the agent
/// ([`TONE_1`]), `before` runs with the agent (requests to refuse, a consultation call); 2 s on,
/// `transfer` runs with it and what `before` returned; then the caller must hear agent 1002
/// for a second, all within `limit`.
pub fn raw_transfer<T: Default, U: Default>(
    caller: &Caller,
    pickup: &mut Pickup,
    limit: Duration,
    before: impl FnOnce(&mut RawAgent) -> T,
    transfer: impl FnOnce(&mut RawAgent, &T) -> U,
) -> RawTransfer<T, U> {
    let (mut before, mut transfer) = (Some(before), Some(transfer));
    let (mut done, mut after) = (T::default(), U::default());
    let (mut phase, mut at, mut marks) = (0, Instant::now(), vec![]);
    let frames = caller.listen(limit, |f| {
        if phase == 0 {
            phase = u8::from(pickup.answered());
            return false;
        }
        let Some(agent) = pickup.agent.as_mut() else {
            return true;
        };
        match phase {
            1 if hears(f, TONE_1) => {
                done = before.take().map_or_else(T::default, |b| b(agent));
                (phase, at) = (2, Instant::now());
                marks.push(f.len());
            }
            2 if at.elapsed() >= Duration::from_secs(2) => {
                after = transfer.take().map_or_else(U::default, |t| t(agent, &done));
                (phase, at) = (3, Instant::now());
                marks.push(f.len());
            }
            3 if hears(f, TONE_2) => (phase, at) = (4, Instant::now()),
            4 => return at.elapsed() >= Duration::from_secs(1),
            _ => {}
        }
        false
    });
    RawTransfer {
        frames,
        marks,
        reached: phase == 4,
        before: done,
        after,
    }
}

/// The node's tag in the To header of a 200 OK.
pub fn to_tag(text: &str) -> String {
    header(text, "To")
        .and_then(|to| to.split(";tag=").nth(1).map(str::to_string))
        .unwrap_or_default()
}

/// A REFER's Refer-To line naming agent 1002 at `host` and Replaces `call_id;to-tag;from-tag`.
pub fn refer_to_replacing(host: &str, call_id: &str, to: &str, from: &str) -> String {
    format!(
        "Refer-To: <sip:1002@{host}?Replaces={call_id}%3Bto-tag%3D{to}%3Bfrom-tag%3D{from}>\r\n"
    )
}

/// An attended transfer's REFER (Refer-To line `refer_to`): its status, and the requests the
/// phone got after it (`METHOD CALL-ID BODY`, each once, all answered 200) until the second
/// BYE (those of calls A and B) or 3 s without one.
pub fn refer_replacing(agent: &mut RawAgent, refer_to: &str) -> (u16, Vec<String>) {
    let accepted = agent
        .request("REFER", refer_to, false)
        .map_or(0, |r| r.status);
    let mut got: Vec<String> = vec![];
    for _ in 0..12 {
        let Some(req) = agent.phone.uac.answer_any(Duration::from_secs(3)) else {
            break;
        };
        let method = req.split(' ').next().unwrap_or_default().to_string();
        let line = format!(
            "{method} {} {}",
            header(&req, "Call-ID").unwrap_or_default(),
            req.split("\r\n\r\n").nth(1).unwrap_or("").trim()
        );
        if !got.contains(&line) {
            got.push(line);
        }
        if got.iter().filter(|l| l.starts_with("BYE ")).count() == 2 {
            break;
        }
    }
    (accepted, got)
}

/// Checks what the phone got after a good attended transfer's REFER in call `a`, replacing
/// call `b`: the NOTIFYs `100 Trying` and `200 OK` of call A, the BYEs of both.
pub fn assert_replaced(got: &[String], a: &str, b: &str) {
    for want in [
        format!("NOTIFY {a} SIP/2.0 100 Trying"),
        format!("NOTIFY {a} SIP/2.0 200 OK"),
        format!("BYE {a} "),
        format!("BYE {b} "),
    ] {
        assert!(
            got.iter().any(|g| format!("{g} ").starts_with(&want)),
            "{want:?} not in {got:?}"
        );
    }
}

/// The CDR of `call_id` (`columns`, `|`-separated), once written (within 10 s).
pub fn cdr(pg: &Pg, call_id: &str, columns: &str) -> Vec<String> {
    let sql = format!("SELECT {columns} FROM cdrs WHERE call_id = '{call_id}'");
    let mut rows = vec![];
    wait_until(Duration::from_secs(10), || {
        rows = pg.query(&sql);
        !rows.is_empty()
    });
    rows
}

/// The queue events of `call_id` since `since` (ms): `QUEUE KIND AGENT DETAIL` each.
pub fn call_events(db: &Db, since: i64, call_id: &str) -> Vec<String> {
    db.events(since)
        .into_iter()
        .filter(|e| e.call_id == call_id)
        .map(|e| {
            format!(
                "{} {} {} {}",
                e.queue,
                e.event.as_str(),
                e.agent.unwrap_or_default(),
                e.detail.unwrap_or_default()
            )
        })
        .collect()
}
