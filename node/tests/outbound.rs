//! Outbound calls: a registered phone (raw SIP, device 2001, agent 1001 logged in on it)
//! dials +4930123456; the node calls the outbound trunk, a SIPp UAS that challenges the
//! INVITE with 401 and checks the credentials (`verifyauth`), the number and the caller ID.
//! The trunk's media gateway is a socket of the test at the trunk's address: the phone sends
//! 1000 Hz and hears the trunk's 600 Hz, the trunk hears the phone's 1000 Hz. The trunk hangs
//! up; the phone gets the node's BYE. On a second call the phone hangs up; the trunk gets
//! the node's BYE. The CDR says outbound, the destination, the agent;
//! the call-quality record of the far leg is filed under the destination's prefix.
//! Refusals: an unregistered source and a registered phone with a wrong password cannot dial
//! out (and nothing reaches the trunk); a busy trunk gives the phone 486; the trunk's
//! ringing reaches the phone as 180, and the phone's CANCEL cancels the trunk's INVITE.

mod support;

use std::net::UdpSocket;
use std::time::Duration;

use support::audio::dominant;
use support::phone::device_add;
use support::pump::Pump;
use support::queue::Db;
use support::raw_phone::{challenge, RawPhone};
use support::uac::{Resp, Uac};
use support::{peers, serial, sipp, wait_until, workdir, NodeProc, NodeSpec, Pg, SippStats};

const NET: &str = "127.0.80";
const DEVICE: &str = "2001";
const PASSWORD: &str = "pw-2001";
const AGENT: &str = "1001";
const NUMBER: &str = "+4930123456";
const PHONE_TONE: f32 = 1000.0;
const TRUNK_TONE: f32 = 600.0;

fn ip(n: u8) -> String {
    format!("{NET}.{n}")
}

/// A node at `.node` whose outbound trunk is `trunk` (a SIPp UAS on port 5060).
fn node(dir: &std::path::Path, pg: &Pg, n: u8, trunk: &str) -> NodeProc {
    let extra = format!(
        "[outbound]\ntrunk = \"{trunk}:5060\"\nusername = \"trunk-user\"\n\
         password = \"trunk-pass\"\ncaller_id = \"+4930555000\"\nring_timeout = \"10s\"\n"
    );
    let node = NodeProc::start(
        dir,
        NodeSpec {
            name: "main-a",
            role: "main",
            ip: &ip(n),
            db: &pg.url,
            capacity: 20,
            extra: &extra,
        },
    );
    support::wait_alive(&node, 1);
    node
}

/// A phone registered as device 2001 from `.at`.
fn phone(node: &NodeProc, at: u8, password: &str) -> RawPhone {
    let mut phone = RawPhone::new(&ip(at), node.sip, DEVICE, password);
    let reg = phone.register().expect("an answer to REGISTER");
    assert_eq!(reg.status, 200, "{}", reg.text);
    phone
}

/// SIPp as the trunk at `at`, running `scenario` for `calls` calls in a thread of its own.
fn trunk(
    dir: &std::path::Path,
    at: &str,
    scenario: &str,
    keys: &[(&str, String)],
    calls: u32,
) -> std::thread::JoinHandle<SippStats> {
    let dir = dir.to_path_buf();
    let scenario = peers().join("sipp").join(scenario);
    let mut args: Vec<String> = vec![
        "-sf".into(),
        scenario.to_string_lossy().into_owned(),
        "-i".into(),
        at.into(),
        "-p".into(),
        "5060".into(),
        "-m".into(),
        calls.to_string(),
        "-timeout".into(),
        "40".into(),
    ];
    for (k, v) in keys {
        args.extend(["-key".into(), (*k).into(), v.clone()]);
    }
    let tag = format!("trunk-{}", at.replace('.', "-"));
    std::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sipp(&dir, &tag, &args)
    })
}

fn count(frames: &[Vec<i16>], tone: f32) -> usize {
    frames
        .iter()
        .filter(|f| dominant(f, &[PHONE_TONE, TRUNK_TONE]) == Some(tone))
        .count()
}

/// The CDR of `call_id`: its columns as `direction|destination|agent|cause|side|status`.
fn cdr(pg: &Pg, call_id: &str) -> Vec<String> {
    let sql = format!(
        "SELECT direction, destination, coalesce(agent, '-'), hangup_cause, hangup_side, \
         sip_status FROM cdrs WHERE call_id = '{call_id}'"
    );
    let mut rows = vec![];
    wait_until(Duration::from_secs(10), || {
        rows = pg.query(&sql);
        !rows.is_empty()
    });
    rows
}

#[test]
fn an_agents_phone_dials_out_through_the_trunk_with_digest_and_both_hear_each_other() {
    let _serial = serial();
    let dir = workdir("outbound");
    let pg = Pg::fresh("outbound");
    let node = node(&dir, &pg, 1, &ip(30));
    let db = Db::connect(&pg.url);
    device_add(&node, DEVICE, PASSWORD, false);
    let mut phone = phone(&node, 10, PASSWORD);
    db.add_agent(AGENT, "1234");
    db.login(AGENT, DEVICE);

    let media = UdpSocket::bind(format!("{}:0", ip(30))).expect("bind the trunk's media");
    let rtp_port = media.local_addr().expect("addr").port().to_string();
    let sipp = trunk(
        &dir,
        &ip(30),
        "outbound-trunk.xml",
        &[("rtp_port", rtp_port)],
        2,
    );
    // The trunk's media gateway answers the node's stream with 600 Hz.
    let gateway = Pump::start(media, None, TRUNK_TONE);
    let answers = phone.call(NUMBER, DEVICE, "out-1", true);
    let ok = answers.last().expect("answers to the phone's INVITE");
    assert_eq!(
        answers.iter().map(|r| r.status).collect::<Vec<_>>(),
        [407, 200],
        "challenged, then connected: {}",
        ok.text
    );
    let to = Uac::media_addr(ok);
    // The phone talks until it heard the trunk for a second (bounded by 15 s).
    let heard = phone
        .uac
        .listen(Some((to, PHONE_TONE)), Duration::from_secs(15), |f| {
            count(f, TRUNK_TONE) >= 50
        });
    let bye = phone.bye_from_node(Duration::from_secs(15));
    let at_trunk = gateway.stop();
    // A second call, which the phone hangs up at once: the trunk gets the node's BYE.
    let answers = phone.call(NUMBER, DEVICE, "out-2", true);
    let ok = answers.last().expect("answers to the second INVITE");
    assert_eq!(ok.status, 200, "{}", ok.text);
    let contact = ok.header("Contact").expect("Contact in the 200");
    let (t, l) = (phone.uac.target, phone.uac.local);
    phone.uac.send(&format!(
        "BYE {} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-bye-out-2;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{DEVICE}@{t}>;tag=fout-2\r\nTo: {}\r\n\
         Call-ID: out-2\r\nCSeq: 99 BYE\r\nContent-Length: 0\r\n\r\n",
        contact.trim_start_matches('<').trim_end_matches('>'),
        ok.header("To").unwrap_or_default(),
    ));
    let bye_ok = phone.uac.recv_final(Duration::from_secs(5));
    assert_eq!(
        bye_ok.map(|r| r.status),
        Some(200),
        "the node takes the phone's BYE"
    );
    let stats = sipp.join().expect("the SIPp trunk ran");
    let log = std::fs::read_to_string(dir.join("main-a.log")).unwrap_or_default();
    assert_eq!(
        (stats.successful, stats.failed),
        (2, 0),
        "the trunk saw the number, the caller ID and good credentials, and the BYEs \
         (see sipp-trunk-*.out)\n{log}"
    );
    let (phone_heard, trunk_heard) = (count(&heard, TRUNK_TONE), count(&at_trunk, PHONE_TONE));
    eprintln!("the phone heard {phone_heard} trunk frames, the trunk {trunk_heard} phone frames");
    assert!(phone_heard >= 50, "the phone hears the trunk");
    assert!(trunk_heard >= 25, "the trunk hears the phone");
    assert!(bye.is_some(), "the trunk's BYE ends the phone's call");
    assert_eq!(
        cdr(&pg, "out-1"),
        [format!("outbound|{NUMBER}|{AGENT}|normal|callee|200")]
    );
    assert_eq!(
        cdr(&pg, "out-2"),
        [format!("outbound|{NUMBER}|{AGENT}|normal|caller|200")],
        "the phone hung up the second call"
    );
    // The far leg's quality counts under the number dialled (the report by country).
    let mut prefix = vec![];
    wait_until(Duration::from_secs(10), || {
        prefix = pg.query(
            "SELECT caller_prefix FROM call_quality WHERE call_id = 'out-1' AND leg = 'caller'",
        );
        !prefix.is_empty()
    });
    assert_eq!(prefix, ["sip:+49301"]);
}

#[test]
fn only_authenticated_phones_dial_out_and_a_busy_trunk_is_busy() {
    let _serial = serial();
    let dir = workdir("outbound-refused");
    let pg = Pg::fresh("outbound_refused");
    let node = node(&dir, &pg, 2, &ip(31));
    device_add(&node, DEVICE, PASSWORD, false);
    // Nothing may reach the trunk while the refused calls are tried.
    let watch = UdpSocket::bind(format!("{}:5060", ip(31))).expect("bind the trunk address");

    // A source that never registered: no device, refused.
    let mut stranger = RawPhone::new(&ip(20), node.sip, "9999", "x");
    let refused = stranger.call(NUMBER, "9999", "out-stranger", true);
    assert_eq!(
        refused.iter().map(|r| r.status).collect::<Vec<_>>(),
        [403],
        "an unregistered source cannot dial out"
    );
    // A registered phone whose INVITE carries a wrong password.
    let mut wrong = phone(&node, 11, PASSWORD);
    wrong.password = "not-the-password".into();
    let refused = wrong.call(NUMBER, DEVICE, "out-wrong", true);
    let last = refused.last().map_or(0, |r| r.status);
    assert!(
        refused.first().map(|r| r.status) == Some(407) && matches!(last, 403 | 407),
        "a wrong digest cannot dial out: {:?}",
        refused.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    // The right password, but no agent logged in on the phone: nobody sits at it.
    let mut idle = phone(&node, 13, PASSWORD);
    let refused = idle.call(NUMBER, DEVICE, "out-idle", true);
    assert_eq!(
        refused.iter().map(|r| r.status).collect::<Vec<_>>(),
        [407, 403],
        "a phone with no agent logged in cannot dial out"
    );
    watch
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    assert!(
        watch.recv_from(&mut buf).is_err(),
        "no INVITE went to the trunk"
    );
    drop(watch);
    assert_eq!(
        cdr(&pg, "out-stranger"),
        [format!("outbound|{NUMBER}|-|outbound_refused|node|403")]
    );

    assert_eq!(
        cdr(&pg, "out-idle"),
        [format!("outbound|{NUMBER}|-|outbound_refused|node|403")]
    );

    // The trunk is busy: the phone hears 486, the CDR says busy.
    let db = Db::connect(&pg.url);
    db.add_agent(AGENT, "1234");
    db.login(AGENT, DEVICE);
    let sipp = trunk(&dir, &ip(31), "outbound-busy.xml", &[], 1);
    let mut phone = phone(&node, 12, PASSWORD);
    let busy = phone.call(NUMBER, DEVICE, "out-busy", true);
    assert_eq!(
        busy.iter().map(|r| r.status).collect::<Vec<_>>(),
        [407, 486],
        "a busy trunk is busy on the phone"
    );
    let stats = sipp.join().expect("the SIPp trunk ran");
    assert_eq!(stats.successful, 1, "the trunk got the INVITE");
    assert_eq!(
        cdr(&pg, "out-busy"),
        [format!("outbound|{NUMBER}|{AGENT}|busy|callee|486")]
    );
}

/// Sends the phone's second INVITE, answering the challenge in `first` (CSeq one above it);
/// its Via branch and CSeq number, for its CANCEL.
fn invite_with_credentials(phone: &mut RawPhone, call_id: &str, first: &Resp) -> (String, u32) {
    let (nonce, alg) = challenge(first, "Proxy-Authenticate").expect("a challenge");
    let (t, l) = (phone.uac.target, phone.uac.local);
    let uri = format!("sip:{NUMBER}@{t}");
    let auth = phone.credentials("Proxy-Authorization", "INVITE", &uri, &nonce, alg);
    let cseq: u32 = first
        .header("CSeq")
        .and_then(|c| {
            c.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u32>().ok())
        })
        .expect("CSeq")
        + 1;
    let branch = format!("z9hG4bK-c{call_id}-{cseq}");
    let body = phone.uac.sdp("");
    phone.uac.send(&format!(
        "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch={branch};rport\r\nMax-Forwards: 70\r\n\
         From: <sip:{DEVICE}@{t}>;tag=f{call_id}\r\nTo: <{uri}>\r\nCall-ID: {call_id}\r\n\
         CSeq: {cseq} INVITE\r\nContact: <sip:{DEVICE}@{l}>\r\n{auth}\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    (branch, cseq)
}

#[test]
fn the_trunks_ringing_reaches_the_phone_and_the_phones_cancel_cancels_the_trunk() {
    let _serial = serial();
    let dir = workdir("outbound-cancel");
    let pg = Pg::fresh("outbound_cancel");
    let node = node(&dir, &pg, 3, &ip(32));
    device_add(&node, DEVICE, PASSWORD, false);
    let db = Db::connect(&pg.url);
    db.add_agent(AGENT, "1234");
    db.login(AGENT, DEVICE);
    let sipp = trunk(&dir, &ip(32), "outbound-ringing.xml", &[], 1);
    let mut phone = phone(&node, 13, PASSWORD);
    let call_id = "out-cancel";
    let first = phone.call(NUMBER, DEVICE, call_id, false);
    assert_eq!(first.iter().map(|r| r.status).collect::<Vec<_>>(), [407]);
    let (branch, cseq) = invite_with_credentials(&mut phone, call_id, &first[0]);
    let ringing = (0..5)
        .map_while(|_| phone.uac.recv(Duration::from_secs(5)))
        .find(|r| r.status != 100);
    assert_eq!(
        ringing.as_ref().map(|r| r.status),
        Some(180),
        "the trunk's ringing reaches the phone"
    );
    let (t, l) = (phone.uac.target, phone.uac.local);
    phone.uac.send(&format!(
        "CANCEL sip:{NUMBER}@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch={branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{DEVICE}@{t}>;tag=f{call_id}\r\nTo: <sip:{NUMBER}@{t}>\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} CANCEL\r\nContent-Length: 0\r\n\r\n"
    ));
    let finals: Vec<Resp> = (0..2)
        .map_while(|_| phone.uac.recv_final(Duration::from_secs(5)))
        .collect();
    let mut statuses: Vec<u16> = finals.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 487], "CANCEL answered, INVITE terminated");
    if let Some(terminated) = finals.iter().find(|r| r.status == 487) {
        let to = terminated.header("To").unwrap_or_default();
        phone.uac.send(&format!(
            "ACK sip:{NUMBER}@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{DEVICE}@{t}>;tag=f{call_id}\r\nTo: {to}\r\n\
             Call-ID: {call_id}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n"
        ));
    }
    let stats = sipp.join().expect("the SIPp trunk ran");
    assert_eq!(
        (stats.successful, stats.failed),
        (1, 0),
        "the trunk's INVITE was cancelled"
    );
    assert_eq!(
        cdr(&pg, call_id),
        [format!("outbound|{NUMBER}|{AGENT}|cancelled|caller|487")]
    );
}
