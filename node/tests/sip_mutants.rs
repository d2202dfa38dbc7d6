//! Seeded mutants of an INVITE and a REGISTER sent to a live node: whatever comes back, every
//! INVITE the node admitted (answered `100 Trying`) gets a final answer, the node keeps
//! answering, and its call table is empty once the calls nobody acknowledged reached Timer H.

mod support;

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use support::uac::header;
use support::{workdir, NodeProc, NodeSpec};

const INVITES: usize = 2000;
const REGISTERS: usize = 1000;

fn base_invite(local: SocketAddr, target: SocketAddr, i: usize) -> String {
    let sdp = format!(
        "v=0\r\no=m 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
        ip = local.ip()
    );
    format!(
        "INVITE sip:100@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-m{i};rport\r\n\
         Max-Forwards: 70\r\nFrom: \"Mutant\" <sip:m@{local}>;tag=m{i}\r\nTo: <sip:100@{target}>\r\n\
         Call-ID: mutant-{i}\r\nCSeq: 1 INVITE\r\nContact: <sip:m@{local}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

fn base_register(local: SocketAddr, target: SocketAddr, i: usize) -> String {
    format!(
        "REGISTER sip:{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-r{i};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:2001@{target}>;tag=r{i}\r\nTo: <sip:2001@{target}>\r\n\
         Call-ID: mutant-reg-{i}\r\nCSeq: 1 REGISTER\r\nContact: <sip:2001@{local}>\r\n\
         Expires: 60\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Flips, cuts, inserts or repeats bytes (1 to 5 changes).
fn mutate(rng: &mut rand::rngs::StdRng, text: &str) -> Vec<u8> {
    let alphabet: &[u8] = b"\r\n:;,<>=@ \t\"\xc3\xa9\xff\x00abcSIP/2.0%";
    let mut b = text.as_bytes().to_vec();
    for _ in 0..rng.random_range(1..6) {
        let i = rng.random_range(0..b.len());
        match rng.random_range(0..4) {
            0 => b[i] = alphabet[rng.random_range(0..alphabet.len())],
            1 => b.truncate(i.max(1)),
            2 => b.insert(i, alphabet[rng.random_range(0..alphabet.len())]),
            _ => {
                let j = rng.random_range(i..b.len());
                let chunk = b[i..j].to_vec();
                b.splice(i..i, chunk);
            }
        }
    }
    b
}

/// Per Call-ID: the statuses received.
fn collect(sock: &UdpSocket, quiet: Duration) -> HashMap<String, Vec<u16>> {
    let mut out: HashMap<String, Vec<u16>> = HashMap::new();
    let mut buf = vec![0u8; 65_535];
    sock.set_read_timeout(Some(quiet)).ok();
    let until = Instant::now() + Duration::from_secs(90);
    while Instant::now() < until {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            break;
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let Some(status) = text.get(8..11).and_then(|c| c.parse().ok()) else {
            continue; // a request from the node (BYE after Timer H)
        };
        if let Some(cid) = header(&text, "Call-ID") {
            out.entry(cid).or_default().push(status);
        }
    }
    out
}

fn live_calls(n: &NodeProc) -> usize {
    let (_, body) = support::http_get(n.http, "/api/v1/calls").expect("GET /api/v1/calls");
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(usize::MAX)
}

#[test]
fn every_admitted_mutant_invite_gets_a_final_answer_and_the_table_empties() {
    let dir = workdir("edge-mutants");
    let db = format!("sqlite://{}", dir.join("cluster.db").display());
    let n = NodeProc::start(
        &dir,
        NodeSpec {
            name: "mutants",
            role: "main",
            ip: "127.0.40.6",
            db: &db,
            capacity: 500,
            extra: "",
        },
    );
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).expect("socket");
    sock.set_recv_buffer_size(8 << 20).ok();
    let local: SocketAddr = "127.0.40.110:0".parse().expect("addr");
    sock.bind(&local.into()).expect("bind");
    let sock: UdpSocket = sock.into();
    let local = sock.local_addr().expect("local");
    let reader = sock.try_clone().expect("clone");
    // Responses stop once the last unacknowledged 200 stopped being retransmitted.
    let answers = std::thread::spawn(move || collect(&reader, Duration::from_secs(8)));
    let mut rng = rand::rngs::StdRng::seed_from_u64(4475);
    for i in 0..INVITES + REGISTERS {
        let text = if i < INVITES {
            base_invite(local, n.sip, i)
        } else {
            base_register(local, n.sip, i)
        };
        let bytes = mutate(&mut rng, &text);
        sock.send_to(&bytes, n.sip).expect("send");
        if i % 50 == 49 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // The node still answers a plain request.
    let probe = format!(
        "OPTIONS sip:{t} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-probe\r\n\
         From: <sip:p@{local}>;tag=p\r\nTo: <sip:{t}>\r\nCall-ID: mutant-probe\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        t = n.sip
    );
    sock.send_to(probe.as_bytes(), n.sip).expect("send probe");
    let answers = answers.join().expect("reader");
    assert_eq!(
        answers.get("mutant-probe").map(|s| s.as_slice()),
        Some(&[200][..]),
        "the node answers after the mutants"
    );
    let admitted: HashSet<&String> = answers
        .iter()
        .filter(|(_, s)| s.iter().any(|c| (100..200).contains(c)))
        .map(|(c, _)| c)
        .collect();
    let unanswered: Vec<&&String> = admitted
        .iter()
        .filter(|c| !answers[**c].iter().any(|s| *s >= 200))
        .collect();
    assert!(admitted.len() > 100, "mutants admitted: {}", admitted.len());
    assert!(
        unanswered.is_empty(),
        "{} admitted INVITEs without a final answer, e.g. {:?}",
        unanswered.len(),
        unanswered.iter().take(5).collect::<Vec<_>>()
    );
    assert!(
        support::wait_until(Duration::from_secs(60), || live_calls(&n) == 0).is_some(),
        "the call table empties: {} left",
        live_calls(&n)
    );
}
