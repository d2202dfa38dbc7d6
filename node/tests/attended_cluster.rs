//! Attended transfer across nodes (RFC 3891 Replaces, RFC 5589 §7): two main nodes on one
//! PostgreSQL and two lockd over memcached. A caller (our UAC, 1000 Hz) calls queue `sales` on
//! node B (.2); agent 1001 answers on a phone made of raw SIP (600 Hz), registered through
//! node B. That phone then registers through node A (.1) too and calls agent 1002 there (call
//! B; 1002 is a baresip phone on node A, 800 Hz). Before the transfer, an INVITE with Replaces
//! naming call B sent straight to node A without the cluster proof, or with a forged one, is
//! refused (403) and call B goes on; a REFER whose Refer-To names a host that is no live node
//! is refused (403) and nothing is dialled; a REFER naming a call node A does not have is
//! accepted and its NOTIFY reports node A's `481`, the caller still with agent 1001; so is one
//! naming such a call at the cluster's domain (`sip.domains`: node B looks at its own calls,
//! then asks node A, which answers 481). Then the phone REFERs call A with
//! `Refer-To: <sip:1002@pbx.example.com?Replaces=B;to-tag=..;from-tag=..>`, the domain a desk
//! phone is configured with: call B is not on node B, so node B sends node A (the other live
//! node) a signed INVITE with Replaces, node A hands agent 1002's leg over and BYEs the phone's call B, node
//! B bridges the caller to it, BYEs agent 1001's leg and NOTIFYs `200 OK`. The caller hears
//! agent 1002 through both nodes and agent 1002 the caller; call B's CDR ends `replaced`.
//!
//! A third node, `main-0`, is listed live (a fresh heartbeat, draining so that no call is sent
//! there) but its SIP address swallows everything. It comes first in the balancer's order, so a
//! cluster-wide search asks it too: the REFER naming no call of the domain ends `408` (a node
//! said nothing), and the good one is taken by node A while `main-0` is still silent; `main-0`
//! was sent the signed INVITE with Replaces of both searches.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use callfleet::now_ms;
use callfleet_store::AgentState;
use support::audio::{heard, share, tone_share, wav_samples, write_tone_wav};
use support::lockd::{memcached, Lockd};
use support::phone::{device_add, Phone};
use support::queue::{member, queue, with_domain, Db, DOMAIN};
use support::raw_agent::{Pickup, RawAgent};
use support::raw_phone::RawPhone;
use support::transfer::{
    assert_replaced, call_events, cdr, raw_transfer, refer_replacing, refer_to_replacing, to_tag,
    Caller, CALLER_TONE, MOH, TONE_1, TONE_2,
};
use support::uac::Uac;
use support::{serial, wait_alive, wait_until, workdir, NodeProc, NodeSpec, Pg};

const NET: &str = "127.0.85";

/// The SIP address of the node listed live that never answers.
const SILENT: &str = "127.0.90.5:5060";

fn ip(n: u8) -> String {
    format!("{NET}.{n}")
}

/// An INVITE with Replaces sent to `node` by `uac` itself (no node), with `extra` headers;
/// its final status (0: none).
fn invite_replacing(
    uac: &Uac,
    node: SocketAddr,
    call_id: &str,
    replaces: &str,
    extra: &str,
) -> u16 {
    let l = uac.local;
    let body = uac.sdp("");
    uac.send(&format!(
        "INVITE sip:1002@{node} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:2001@{l}>;tag=f{call_id}\r\nTo: <sip:1002@{node}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:2001@{l}>\r\nReplaces: {replaces}\r\n\
         {extra}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    let status = uac
        .recv_final(Duration::from_secs(5))
        .map_or(0, |r| r.status);
    uac.send(&format!(
        "ACK sip:1002@{node} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:2001@{l}>;tag=f{call_id}\r\nTo: <sip:1002@{node}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    ));
    status
}

/// Node `main-0` as the cluster sees it: a heartbeat fresh for the whole test (stamped ahead
/// of the clock), draining (no call is sent there), at [`SILENT`], where a socket takes every
/// datagram and answers none.
struct Silent {
    socket: std::net::UdpSocket,
}

impl Silent {
    fn start(db: &Db) -> Silent {
        let socket = std::net::UdpSocket::bind(SILENT).expect("bind the silent node's SIP port");
        let now = now_ms();
        let hb = callfleet_store::Heartbeat {
            name: "main-0".into(),
            role: "main".into(),
            sip_addr: SILENT.into(),
            http_addr: "127.0.90.5:8080".into(),
            generation: now,
            seq: 1,
            calls: 0,
            capacity: 20,
            cpu_milli: 0,
            load1_milli: 0,
            mem_used_kb: 0,
            mem_total_kb: 0,
            shed_level: 0,
            draining: true,
            refusing: false,
            services: "sip,media,lb,web".into(),
            version: "test".into(),
            updated_at_ms: now + 10 * 60_000,
        };
        db.block(db.store.upsert_heartbeat(&hb))
            .expect("write the silent node's heartbeat");
        Silent { socket }
    }

    /// What it was sent so far but OPTIONS probes (retransmissions included), one `request
    /// line | Call-ID | Replaces` per datagram.
    fn heard(&self) -> Vec<String> {
        self.socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        let mut buf = [0u8; 8192];
        let mut out = vec![];
        for _ in 0..1000 {
            let Ok(n) = self.socket.recv(&mut buf) else {
                break;
            };
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let header = |name: &str| {
                text.lines()
                    .find(|l| l.to_ascii_lowercase().starts_with(name))
                    .unwrap_or("")
                    .to_string()
            };
            let line = text.lines().next().unwrap_or("");
            if line.starts_with("OPTIONS ") {
                continue;
            }
            out.push(format!(
                "{line} | {} | {}",
                header("call-id:"),
                header("replaces:")
            ));
        }
        out
    }
}

struct Cluster {
    silent: Silent,
    phone: Phone,
    nodes: Vec<NodeProc>,
    _lockd: Vec<Lockd>,
    db: Db,
    pg: Pg,
}

/// Node A (.1) and node B (.2), both of the SIP domain [`DOMAIN`]; queue `sales` with agent 1001 (raw phone 2001, registered
/// through node B, returned); agent 1002 on baresip phone 2002 (.11) through node A.
fn cluster(dir: &Path) -> (Cluster, RawPhone) {
    let pg = Pg::fresh("attended_cluster");
    let backend = format!("memcached://{}", memcached());
    let lockd: Vec<Lockd> = [ip(21), ip(22)]
        .iter()
        .map(|l| Lockd::start(dir, &format!("{l}:7070"), &backend))
        .collect();
    let urls: Vec<String> = lockd.iter().map(|l| format!("\"{}\"", l.url)).collect();
    let extra = format!("[lock]\nurls = [{}]\n", urls.join(", "));
    write_tone_wav(&dir.join("moh").join("hold.wav"), MOH, 5.0);
    let nodes: Vec<NodeProc> = [("main-a", 1), ("main-b", 2)]
        .into_iter()
        .map(|(name, host)| {
            let spec = NodeSpec {
                name,
                role: "main",
                ip: &ip(host),
                db: &pg.url,
                capacity: 20,
                extra: &extra,
            };
            let mut node = NodeProc::configure(dir, spec);
            with_domain(&node.config);
            node.spawn();
            node
        })
        .collect();
    wait_alive(&nodes[0], 2);
    wait_alive(&nodes[1], 2);
    let db = Db::connect(&pg.url);
    let silent = Silent::start(&db);
    wait_alive(&nodes[0], 3);
    wait_alive(&nodes[1], 3);
    device_add(&nodes[0], "2001", "pw-agent", false);
    device_add(&nodes[0], "2002", "pw-agent", false);
    let mut raw = RawPhone::new(&ip(30), nodes[1].sip, "2001", "pw-agent");
    let r = raw.register().expect("an answer to the REGISTER");
    assert_eq!(r.status, 200, "{}", r.text);
    let phone = Phone::start_with_ctrl(dir, &ip(11), "2002", "pw-agent", &nodes[0], 4444);
    let wav = dir.join("tone-2.wav");
    write_tone_wav(&wav, TONE_2, 60.0);
    phone.play(&wav);
    for (agent, device) in [("1001", "2001"), ("1002", "2002")] {
        let ok = wait_until(Duration::from_secs(15), || db.registered(device));
        assert!(ok.is_some(), "phone {device} did not register");
        db.add_agent(agent, "1234");
        db.login(agent, device);
    }
    db.add_queue(&queue("sales", "ringall"));
    db.add_member(&member("sales", "1001", 0, 0));
    db.wait_reloaded(&nodes[0]);
    db.wait_reloaded(&nodes[1]);
    let c = Cluster {
        silent,
        phone,
        nodes,
        _lockd: lockd,
        db,
        pg,
    };
    (c, raw)
}

/// What the phone did and got before the good REFER.
#[derive(Default)]
struct Consulted {
    /// The final status of call B (phone 2001 → agent 1002 on node A).
    call_b: u16,
    /// Unsigned and forged INVITEs with Replaces to node A, a REFER naming no live node.
    hostile: Vec<u16>,
    /// A REFER naming no call of node A: its status, then the NOTIFY bodies.
    failed: Vec<String>,
    /// The same naming the cluster's domain.
    failed_domain: Vec<String>,
    /// The Refer-To line naming call B at the cluster's domain.
    good: String,
}

impl Consulted {
    fn check(&self) {
        assert_eq!(self.call_b, 200, "call B is answered on node A");
        assert_eq!(
            self.hostile,
            [403, 403, 403],
            "unsigned and forged INVITEs with Replaces, a Refer-To naming no live node"
        );
        let refused = [
            "202",
            "SIP/2.0 100 Trying",
            "SIP/2.0 481 Call/Transaction Does Not Exist",
        ];
        assert_eq!(
            self.failed, refused,
            "a REFER naming no call of node A: accepted, then NOTIFYed with node A's refusal"
        );
        let timed_out = [refused[0], refused[1], "SIP/2.0 408 Request Timeout"];
        assert_eq!(
            self.failed_domain, timed_out,
            "a REFER naming no call of the domain: accepted, then NOTIFYed with 408 (node A \
             answered 481, main-0 nothing)"
        );
    }
}

/// The phone registers through node A and calls agent 1002 there (call B); the hostile and
/// failing requests follow, the phone back on node B for its REFERs.
fn consult(agent: &mut RawAgent, c: &Cluster, attacker: &Uac) -> Consulted {
    let (a, b) = (c.nodes[0].sip, c.nodes[1].sip);
    let mut out = Consulted::default();
    agent.phone.uac.target = a;
    let r = agent.phone.register().map_or(0, |r| r.status);
    assert_eq!(r, 200, "the phone registers through node A");
    let answers = agent.phone.call("1002", "2001", "xatt-b", true);
    let last = answers.last().cloned();
    out.call_b = last.as_ref().map_or(0, |r| r.status);
    wait_until(Duration::from_secs(10), || {
        c.db.agent("1002").state == AgentState::InCall
    });
    let tb = to_tag(&last.map(|r| r.text).unwrap_or_default());
    let named = format!("xatt-b;to-tag={tb};from-tag=fxatt-b");
    // Straight to node A: unsigned, then with a made-up proof.
    let forged = "X-Callfleet-Replaces-Proof: 2001 cf1 1 0000000000000007 1 \
                  0000000000000000000000000000000000000000000000000000000000000000\r\n";
    out.hostile
        .push(invite_replacing(attacker, a, "xatt-x1", &named, ""));
    out.hostile
        .push(invite_replacing(attacker, a, "xatt-x2", &named, forged));
    // Back to node B: a Refer-To naming a host that is no live node.
    agent.phone.uac.target = b;
    let nowhere = refer_to_replacing(&format!("{}:5060", ip(99)), "xatt-b", &tb, "fxatt-b");
    let r = agent.request("REFER", &nowhere, false);
    out.hostile.push(r.map_or(0, |r| r.status));
    // Node A has no such call: accepted here, refused there, NOTIFYed with 481; the same
    // through the domain (no such call on node B, then node A asked).
    let wrong = refer_to_replacing(&a.to_string(), "xatt-zz", &tb, "fxatt-b");
    out.failed = refer_failing(agent, &wrong);
    let wrong = refer_to_replacing(DOMAIN, "xatt-zz", &tb, "fxatt-b");
    out.failed_domain = refer_failing(agent, &wrong);
    out.good = refer_to_replacing(DOMAIN, "xatt-b", &tb, "fxatt-b");
    out
}

/// A REFER that is accepted and then fails: its status, then the NOTIFY bodies up to the
/// final one (a silent node is waited for up to 8 s).
fn refer_failing(agent: &mut RawAgent, refer_to: &str) -> Vec<String> {
    let r = agent.request("REFER", refer_to, false);
    let mut out = vec![format!("{}", r.map_or(0, |r| r.status))];
    for _ in 0..6 {
        let Some(req) = agent.phone.uac.answer_any(Duration::from_secs(12)) else {
            break;
        };
        let body = req.split("\r\n\r\n").nth(1).unwrap_or("").trim();
        let done = body.starts_with("SIP/2.0") && !body.starts_with("SIP/2.0 1");
        out.push(body.to_string());
        if done {
            break;
        }
    }
    out
}

#[test]
fn the_agent_hands_its_caller_to_a_colleague_on_another_node() {
    let _serial = serial();
    let dir = workdir("attended-cluster");
    let (c, phone) = cluster(&dir);
    let since = now_ms();
    let mut caller = Caller::queued(&ip(20), c.nodes[1].sip, "xatt-a");
    let mut pickup = Pickup::ring(phone, &ip(30), TONE_1);
    let attacker = Uac::new(&ip(40), c.nodes[0].sip);
    let t = raw_transfer(
        &caller,
        &mut pickup,
        Duration::from_secs(60),
        |agent| consult(agent, &c, &attacker),
        |agent, consulted| refer_replacing(agent, &consulted.good),
    );
    let l = caller.hang_up(&t.frames);
    pickup.hang_up();
    t.before.check();
    let kept = &l[t.marks[0]..t.marks[1]];
    assert!(
        share(kept, TONE_1) > 0.95,
        "after the refusals and the failed transfer the caller keeps agent 1001: {}",
        heard(kept)
    );
    let (accepted, got) = &t.after;
    assert_eq!(*accepted, 202, "the attended transfer is accepted");
    assert_replaced(got, &pickup.call_id(), "xatt-b");
    assert!(
        t.reached,
        "the caller never heard agent 1002: {}",
        heard(&l)
    );
    records(&c, since);
    silent_node_asked(&c);
}

/// `main-0` was asked by both searches through the domain: signed INVITEs with Replaces naming
/// the missing call and call B. (It never answered, so it is sent no CANCEL: RFC 3261 §9.1.)
fn silent_node_asked(c: &Cluster) {
    let heard = c.silent.heard();
    // The Call-ID of the INVITE that asked main-0 for `call`.
    let asked = |call: &str| {
        heard.iter().find_map(|l| {
            let mut parts = l.split(" | ");
            let (line, call_id, replaces) = (parts.next()?, parts.next()?, parts.next()?);
            let invite = line.starts_with(&format!("INVITE sip:1002@{SILENT}"))
                && replaces.contains(&format!(": {call};"));
            invite.then(|| call_id.to_string())
        })
    };
    let (missing, good) = (asked("xatt-zz"), asked("xatt-b"));
    assert!(
        missing.is_some(),
        "main-0 is asked for the missing call: {heard:#?}"
    );
    assert!(good.is_some(), "main-0 is asked for call B: {heard:#?}");
    assert!(
        heard
            .iter()
            .all(|l| l.starts_with("INVITE sip:1002@") || l.starts_with("CANCEL ")),
        "main-0 is sent nothing else: {heard:#?}"
    );
}

/// After the call: both agents free, agent 1002 heard the caller, the CDRs and queue events.
fn records(c: &Cluster, since: i64) {
    assert!(
        c.db.wait_available(&["1001", "1002"], Duration::from_secs(15)),
        "both agents free again"
    );
    // Agent 1002's phone heard the caller through both nodes at the end of its call.
    let rec = c.phone.heard_files();
    let last = rec
        .last()
        .unwrap_or_else(|| panic!("no recording: {}", c.phone.log()));
    let (rate, samples) = wav_samples(last);
    let tail = samples.len().saturating_sub(rate as usize * 3 / 2);
    let heard_caller = tone_share(&samples[tail..], CALLER_TONE, rate);
    assert!(
        heard_caller > 0.3,
        "agent 1002's phone hears the caller: share {heard_caller:.3}"
    );
    let columns = "coalesce(agent, ''), coalesce(queue, ''), hangup_cause, node";
    assert_eq!(
        cdr(&c.pg, "xatt-a", columns),
        ["1001|sales|normal|main-b"],
        "the caller's CDR"
    );
    let b_cdr = cdr(&c.pg, "xatt-b", columns);
    assert_eq!(
        b_cdr.first().and_then(|r| r.split('|').nth(2)),
        Some("replaced"),
        "call B's CDR: {b_cdr:?}"
    );
    // The forged INVITEs were refused before they were calls: no call record (the real
    // calls' records, read above, were written after them).
    for forged in ["xatt-x1", "xatt-x2"] {
        let rows = c.pg.query(&format!(
            "SELECT hangup_cause FROM cdrs WHERE call_id = '{forged}'"
        ));
        assert!(rows.is_empty(), "{forged}: {rows:?}");
    }
    let events = call_events(&c.db, since, "xatt-a");
    assert!(
        events.contains(&"sales transfer 1001 agent:1002".to_string()),
        "{events:?}"
    );
}
