//! The reference: rtpengine relaying the same bridged streams, driven through its ng control
//! protocol (a cookie, a space and a bencoded dictionary over UDP): `offer` with the caller's
//! SDP gives the address the agent sends to, `answer` with the agent's SDP the address the
//! caller sends to, `delete` ends the call. No SIP: what is compared is the media relay.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio::net::UdpSocket;

use crate::media::{self, Expect, Media, Side};
use crate::run::{measure, own_cores, rss_kb, Report};
use crate::sip;

/// A bencode value (only what ng uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bytes(Vec<u8>),
    Int(i64),
    List(Vec<Value>),
    Dict(BTreeMap<Vec<u8>, Value>),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Value::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Value::List(l) => {
                out.push(b'l');
                for v in l {
                    v.encode(out);
                }
                out.push(b'e');
            }
            Value::Dict(d) => {
                // Keys in sorted order (BTreeMap), as bencode requires.
                out.push(b'd');
                for (k, v) in d {
                    Value::Bytes(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// Decodes one value from the start of `input`; returns it and the bytes left.
    pub fn decode(input: &[u8]) -> Option<(Value, &[u8])> {
        Value::decode_depth(input, 0)
    }

    fn decode_depth(input: &[u8], depth: u32) -> Option<(Value, &[u8])> {
        if depth > 32 {
            return None;
        }
        match *input.first()? {
            b'i' => {
                let end = input.iter().position(|&c| c == b'e')?;
                let n = std::str::from_utf8(&input[1..end]).ok()?.parse().ok()?;
                Some((Value::Int(n), &input[end + 1..]))
            }
            b'l' => {
                let mut rest = &input[1..];
                let mut items = Vec::new();
                while *rest.first()? != b'e' {
                    let (v, r) = Value::decode_depth(rest, depth + 1)?;
                    items.push(v);
                    rest = r;
                }
                Some((Value::List(items), &rest[1..]))
            }
            b'd' => {
                let mut rest = &input[1..];
                let mut map = BTreeMap::new();
                while *rest.first()? != b'e' {
                    let (Value::Bytes(k), r) = Value::decode_depth(rest, depth + 1)? else {
                        return None;
                    };
                    let (v, r) = Value::decode_depth(r, depth + 1)?;
                    map.insert(k, v);
                    rest = r;
                }
                Some((Value::Dict(map), &rest[1..]))
            }
            b'0'..=b'9' => {
                let colon = input.iter().position(|&c| c == b':')?;
                let len: usize = std::str::from_utf8(&input[..colon]).ok()?.parse().ok()?;
                let start = colon + 1;
                let bytes = input.get(start..start.checked_add(len)?)?;
                Some((Value::Bytes(bytes.to_vec()), &input[start + len..]))
            }
            _ => None,
        }
    }

    /// The byte string under `key` of a dictionary.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        match self {
            Value::Dict(d) => match d.get(key.as_bytes())? {
                Value::Bytes(b) => Some(b),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A dictionary of `(key, value)` pairs.
pub fn dict(pairs: Vec<(&str, Value)>) -> Value {
    Value::Dict(
        pairs
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect(),
    )
}

/// An ng client on one UDP socket, one request at a time.
pub struct Ng {
    socket: UdpSocket,
    server: SocketAddr,
    cookie: u64,
}

impl Ng {
    pub async fn connect(local_ip: IpAddr, server: SocketAddr) -> anyhow::Result<Ng> {
        let socket = UdpSocket::bind(SocketAddr::new(local_ip, 0))
            .await
            .context("bind the ng socket")?;
        Ok(Ng {
            socket,
            server,
            cookie: 0,
        })
    }

    /// Sends `msg` and waits for its answer (retried twice); fails on `result` other than ok.
    pub async fn request(&mut self, msg: &Value) -> anyhow::Result<Value> {
        self.cookie += 1;
        let cookie = format!("ml{}", self.cookie);
        let mut out = format!("{cookie} ").into_bytes();
        msg.encode(&mut out);
        let mut buf = vec![0u8; 65536];
        for _ in 0..3 {
            self.socket
                .send_to(&out, self.server)
                .await
                .context("send to rtpengine")?;
            let until = Instant::now() + Duration::from_secs(2);
            while let Some(left) = until.checked_duration_since(Instant::now()) {
                let Ok(got) = tokio::time::timeout(left, self.socket.recv_from(&mut buf)).await
                else {
                    break;
                };
                let (n, _) = got.context("receive from rtpengine")?;
                let Some(body) = buf[..n].strip_prefix(format!("{cookie} ").as_bytes()) else {
                    continue;
                };
                let (v, _) = Value::decode(body).context("rtpengine's answer is not bencode")?;
                return match v.get("result") {
                    Some(b"ok") => Ok(v),
                    other => bail!(
                        "rtpengine: result {:?}, {:?}",
                        other.map(String::from_utf8_lossy),
                        v.get("error-reason").map(String::from_utf8_lossy)
                    ),
                };
            }
        }
        bail!("rtpengine did not answer at {}", self.server)
    }
}

/// What to run through rtpengine.
#[derive(Debug, Clone)]
pub struct RtpenginePlan {
    pub ng: SocketAddr,
    pub caller_ip: IpAddr,
    pub agent_ip: IpAddr,
    pub calls: usize,
    pub warm: Duration,
    pub window: Duration,
    pub sockets_per_side: usize,
    pub pid: Option<u32>,
}

/// `calls` bridged calls through rtpengine, measured as [`crate::run::run`] measures a node.
pub async fn run(plan: &RtpenginePlan) -> anyhow::Result<Report> {
    let rss_before = plan.pid.and_then(rss_kb);
    let media = Media::start(plan.caller_ip, plan.agent_ip, plan.sockets_per_side, None)?;
    let drops_before = media::socket_drops(&media.local_addrs());
    let mut ng = Ng::connect(plan.caller_ip, plan.ng).await?;
    let mut ids = Vec::new();
    let started = Instant::now();
    let mut setups = Vec::new();
    for i in 0..plan.calls {
        let t = Instant::now();
        ids.push(set_up(&mut ng, &media, i).await?);
        setups.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "{} calls set up in rtpengine in {:.1} s",
        plan.calls,
        started.elapsed().as_secs_f64()
    );
    let window = measure(plan.pid, plan.warm, plan.window, &media).await?;
    let drops_after = media::socket_drops(&media.local_addrs());
    for id in &ids {
        let del = dict(vec![
            ("command", Value::str("delete")),
            ("call-id", Value::str(id)),
            ("from-tag", Value::str("caller")),
        ]);
        if let Err(e) = ng.request(&del).await {
            eprintln!("delete {id}: {e:#}");
        }
    }
    Ok(Report {
        target: "rtpengine".into(),
        bridged: plan.calls,
        moh: 0,
        answered: ids.len() as u64,
        bridged_up: ids.len() as u64,
        failed: (plan.calls - ids.len()) as u64,
        dropped_by_node: 0,
        phones_hung_up: 0,
        setup_p50_ms: crate::stats::quantile(&setups, 0.5),
        setup_p99_ms: crate::stats::quantile(&setups, 0.99),
        // No SIP through rtpengine: the call path's probes are the node's.
        probes: Default::default(),
        generator_socket_drops: drops_after.saturating_sub(drops_before),
        generator_cores: own_cores(window.own_cpu.0, window.own_cpu.1, window.wall),
        process: window.process(rss_before),
        media: window.report,
    })
}

/// Call `i` through rtpengine: the offer with the caller's SDP, the answer with the agent's,
/// and both streams started towards the addresses rtpengine gave. Returns the call's Call-ID.
async fn set_up(ng: &mut Ng, media: &Arc<Media>, i: usize) -> anyhow::Result<String> {
    let call_id = format!("mediaload-{i}-{}", rand::random::<u32>());
    let (cs, caller) = media.local(Side::Caller, i);
    let (asock, agent) = media.local(Side::Agent, i);
    let common = |cmd: &str, sdp: Vec<u8>| {
        dict(vec![
            ("command", Value::str(cmd)),
            ("call-id", Value::str(&call_id)),
            ("from-tag", Value::str("caller")),
            ("sdp", Value::Bytes(sdp)),
            (
                "replace",
                Value::List(vec![Value::str("origin"), Value::str("session-connection")]),
            ),
            ("ICE", Value::str("remove")),
        ])
    };
    let offer = ng
        .request(&common("offer", sip::sdp(caller, 1)))
        .await
        .with_context(|| format!("offer of call {i}"))?;
    let to_agent = sip::media_addr(offer.get("sdp").context("offer without sdp")?)?;
    let mut answer = common("answer", sip::sdp(agent, 2));
    if let Value::Dict(d) = &mut answer {
        d.insert(b"to-tag".to_vec(), Value::str("agent"));
    }
    let answered = ng
        .request(&answer)
        .await
        .with_context(|| format!("answer of call {i}"))?;
    let to_caller = sip::media_addr(answered.get("sdp").context("answer without sdp")?)?;
    media.expect(cs, to_caller, Expect::Relay);
    media.expect(asock, to_agent, Expect::Relay);
    media.add_stream(Side::Caller, cs, to_caller, true);
    media.add_stream(Side::Agent, asock, to_agent, true);
    Ok(call_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bencode_round_trip() {
        let v = dict(vec![
            ("command", Value::str("offer")),
            ("flags", Value::List(vec![Value::str("a"), Value::Int(-3)])),
            ("call-id", Value::str("x")),
        ]);
        let mut out = Vec::new();
        v.encode(&mut out);
        assert_eq!(
            out,
            b"d7:call-id1:x7:command5:offer5:flagsl1:ai-3eee".to_vec()
        );
        let (back, rest) = Value::decode(&out).expect("decodes");
        assert!(rest.is_empty());
        assert_eq!(back, v);
        assert_eq!(back.get("command"), Some(&b"offer"[..]));
        assert_eq!(back.get("flags"), None);
    }

    #[test]
    fn bencode_rejects_what_does_not_hold_together() {
        for bad in [
            &b"d3:abc"[..],
            b"5:ab",
            b"i12",
            b"l",
            b"x",
            b"d1:ai1ei2ei3ee",
            b"99999999999999999999:a",
        ] {
            assert_eq!(Value::decode(bad).map(|(v, _)| v), None, "{bad:?}");
        }
        // Nesting past 32 levels is refused rather than followed.
        let deep = [vec![b'l'; 100], vec![b'e'; 100]].concat();
        assert_eq!(Value::decode(&deep), None);
    }
}
