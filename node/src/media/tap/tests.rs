use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::*;
use crate::media::session::{bridge, Mode, Session, Target};
use prometheus_client::metrics::counter::Counter;

/// `frames` 20 ms frames of a `freq` Hz sine at `amp`, as PCM.
pub(crate) fn sine(freq: f32, amp: f32, frames: usize) -> Vec<i16> {
    (0..frames * FRAME)
        .map(|i| ((2.0 * std::f32::consts::PI * freq * i as f32 / 8000.0).sin() * amp) as i16)
        .collect()
}

pub(crate) fn pcmu(samples: &[i16]) -> Vec<u8> {
    let mut out = vec![0u8; samples.len()];
    let n = encode(Codec::Pcmu, samples, &mut out);
    out.truncate(n);
    out
}

fn pcm_of(pt: u8, payload: &[u8]) -> Vec<i16> {
    let mut out = vec![0i16; payload.len()];
    let n = decode(pt, payload, &mut out);
    out.truncate(n);
    out
}

/// Goertzel power of `freq` over total energy (as the integration tests measure it).
pub(crate) fn share(samples: &[i16], freq: f32) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * f64::from(freq) / 8000.0).cos();
    let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
    for &x in samples {
        let x = f64::from(x);
        let s = x + k * s1 - s2;
        s2 = s1;
        s1 = s;
        energy += x * x;
    }
    if energy == 0.0 {
        return 0.0;
    }
    2.0 * (s1 * s1 + s2 * s2 - k * s1 * s2) / (energy * samples.len() as f64)
}

#[test]
fn a_fifo_plays_once_primed_and_saturates_when_summing() {
    let mut f = Fifo::default();
    f.push(0, &pcmu(&[30_000; FRAME]));
    let mut out = [0i16; FRAME];
    f.add_into(&mut out);
    assert!(
        out.iter().all(|&s| s == 0),
        "silence until 40 ms are buffered"
    );
    f.push(0, &pcmu(&[30_000; FRAME]));
    let mut out = [20_000i16; FRAME];
    f.add_into(&mut out);
    assert!(out.iter().all(|&s| s == i16::MAX), "{:?}", &out[..4]);
    f.add_into(&mut out);
    assert!(f.is_empty());
    // Ran dry: silence again until primed anew.
    f.push(0, &pcmu(&[1000; FRAME]));
    let mut out = [0i16; FRAME];
    f.add_into(&mut out);
    assert!(out.iter().all(|&s| s == 0));
    // Bounded: a source far ahead loses its oldest samples.
    for _ in 0..100 {
        f.push(8, &[0xd5; FRAME]);
    }
    assert_eq!(f.len(), FIFO_MAX);
    f.push(101, &[1, 2, 3, 4]);
    assert_eq!(f.len(), FIFO_MAX, "not G.711: ignored");
}

/// Samples come out in the order they went in, also across the end of the deque's ring
/// (taken in 100s, put in 160s), and a FIFO keeps at most its own bound.
#[test]
fn a_fifo_gives_its_samples_in_order_and_keeps_its_bound() {
    let mut f = Fifo::with_max(4000);
    let mut expected = std::collections::VecDeque::new();
    let mut pcm = [0i16; FRAME];
    for round in 0..40u8 {
        let payload: Vec<u8> = (0..FRAME as u8)
            .map(|i| i.wrapping_mul(7) ^ round)
            .collect();
        assert_eq!(decode(0, &payload, &mut pcm), FRAME);
        expected.extend(pcm);
        f.push(0, &payload);
        if round < 2 {
            continue;
        }
        let mut out = [5i16; 100];
        f.add_into(&mut out);
        let want: Vec<i16> = expected.drain(..100).map(|s| s.saturating_add(5)).collect();
        assert_eq!(out.to_vec(), want, "round {round}");
        assert_eq!(f.len(), expected.len());
    }
    for _ in 0..40 {
        f.push(8, &[0xd5; FRAME]);
    }
    assert_eq!(f.len(), 4000);
    assert_eq!(
        Fifo::with_max(10).max,
        FIFO_PRIME,
        "never below what primes it"
    );
}

#[test]
fn the_mix_holds_both_sides_and_a_slow_listener_only_loses_frames() {
    let tap = Tap::new();
    tap.publish(Side::Caller, 0, &[0xff; FRAME]);
    let caller = sine(1000.0, 6000.0, 60);
    let agent = sine(600.0, 6000.0, 60);
    let mix = tap.mix(vec![]);
    assert_eq!(tap.listeners(), 1);
    let mut heard = vec![];
    let mut out = [0u8; FRAME];
    for i in 0..60 {
        let frame = i * FRAME..(i + 1) * FRAME;
        tap.publish(Side::Caller, 0, &pcmu(&caller[frame.clone()]));
        tap.publish(Side::Agent, 0, &pcmu(&agent[frame]));
        tap.publish(Side::Agent, 101, &[1, 2, 3, 4]);
        let n = mix.next_frame(Codec::Pcma, &mut out);
        heard.extend(pcm_of(8, &out[..n]));
    }
    let tail = &heard[heard.len() / 2..];
    let (a, b) = (share(tail, 1000.0), share(tail, 600.0));
    assert!(a > 0.3 && b > 0.3, "both tones in the mix: {a:.3} {b:.3}");
    assert_eq!(mix.dropped.load(Ordering::Relaxed), 0);
    // Nobody reads for a while: publishing never blocks, the listener loses the oldest.
    for _ in 0..200 {
        tap.publish(Side::Caller, 0, &[0xff; FRAME]);
    }
    mix.next_frame(Codec::Pcmu, &mut out);
    assert!(mix.dropped.load(Ordering::Relaxed) >= 200 - TAP_DEPTH as u64);
    drop(mix);
    assert_eq!(tap.listeners(), 0);
}

#[test]
fn a_whisper_is_mixed_into_g711_payloads_only() {
    let mut f = Fifo::default();
    f.push(0, &pcmu(&[4000; 2 * FRAME]));
    let mut payload = pcmu(&[1000; FRAME]);
    assert!(mix_into_payload(&mut f, 0, &mut payload));
    let got = pcm_of(0, &payload);
    assert!(
        got.iter().all(|&s| (4700..5300).contains(&s)),
        "{:?}",
        &got[..4]
    );
    let mut event = vec![1, 2, 3, 4];
    assert!(!mix_into_payload(&mut f, 101, &mut event));
    assert_eq!(event, vec![1, 2, 3, 4]);
}

async fn leg(mode: Mode, remote: SocketAddr) -> Session {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind node");
    let local = sock.local_addr().expect("addr");
    let target = Target {
        remote: Some(remote),
        codec: Codec::Pcmu,
        send: true,
        dtmf_pt: Some(101),
        signal_ip: None,
        rtcp: crate::media::sdp::Rtcp::NextPort,
        packet_ms: 20,
    };
    Session::start(sock, local, target, mode, 0, Counter::default())
}

fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Drains what `sock` received so far, decoded.
fn drain(sock: &UdpSocket, into: &mut Vec<i16>) {
    let mut buf = [0u8; 2048];
    while let Ok((n, _)) = sock.try_recv_from(&mut buf) {
        if n > 12 {
            into.extend(pcm_of(buf[1] & 0x7f, &buf[12..n]));
        }
    }
}

/// The three parties of a supervised bridge: sockets of the caller, agent and supervisor, and
/// the legs facing them.
struct Supervised {
    caller: UdpSocket,
    agent: UdpSocket,
    sup: UdpSocket,
    c: Session,
    a: Session,
    s: Session,
    tap: Tap,
}

/// Shares of 1000 Hz (caller), 600 Hz (agent) and 1400 Hz (supervisor) in what each party
/// heard, in that order.
type Heard = [(f64, f64, f64); 3];

/// Bridges a caller (1000 Hz) and an agent (600 Hz) with a supervisor (1400 Hz) speaking to
/// the agent's leg, and the caller's too when `barge`; 1.5 s of audio from all three.
async fn supervised(barge: bool) -> (Supervised, Heard) {
    let party = || async { UdpSocket::bind("127.0.0.1:0").await.expect("bind party") };
    let (caller, agent, sup) = (party().await, party().await, party().await);
    let c = leg(Mode::Silence, caller.local_addr().unwrap()).await;
    let a = leg(Mode::Silence, agent.local_addr().unwrap()).await;
    bridge(&c, &a);
    let tap = Tap::new();
    c.set_tap(Some((tap.clone(), Side::Caller)));
    a.set_tap(Some((tap.clone(), Side::Agent)));
    assert!(a.leg().start_whisper());
    assert!(!a.leg().start_whisper(), "one whisper at a time");
    let mut speak_to = vec![a.leg()];
    if barge {
        assert!(c.leg().start_whisper());
        speak_to.push(c.leg());
    }
    let s = leg(
        Mode::Listen(Arc::new(tap.mix(speak_to))),
        sup.local_addr().unwrap(),
    )
    .await;
    let frames = 75;
    let (tc, ta, ts) = (
        sine(1000.0, 5000.0, frames),
        sine(600.0, 5000.0, frames),
        sine(1400.0, 5000.0, frames),
    );
    let (mut at_caller, mut at_agent, mut at_sup) = (vec![], vec![], vec![]);
    for i in 0..frames {
        let f = i * FRAME..(i + 1) * FRAME;
        let seq = i as u16;
        caller
            .send_to(&rtp(seq, &pcmu(&tc[f.clone()])), c.local)
            .await
            .unwrap();
        agent
            .send_to(&rtp(seq, &pcmu(&ta[f.clone()])), a.local)
            .await
            .unwrap();
        sup.send_to(&rtp(seq, &pcmu(&ts[f])), s.local)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        drain(&caller, &mut at_caller);
        drain(&agent, &mut at_agent);
        drain(&sup, &mut at_sup);
    }
    let heard = |v: &Vec<i16>| {
        let v = &v[v.len() / 3..];
        (share(v, 1000.0), share(v, 600.0), share(v, 1400.0))
    };
    let shares = [heard(&at_caller), heard(&at_agent), heard(&at_sup)];
    assert_eq!(
        c.leg().stats.relayed.load(Ordering::Relaxed),
        frames as u64,
        "every agent packet reached the caller"
    );
    assert_eq!(a.leg().stats.relayed.load(Ordering::Relaxed), frames as u64);
    let parties = Supervised {
        caller,
        agent,
        sup,
        c,
        a,
        s,
        tap,
    };
    (parties, shares)
}

/// A bridge with a supervisor: listening hears both parties; whispering reaches the agent and
/// never the caller; the bridge relays every packet throughout.
#[tokio::test]
async fn a_supervisor_hears_both_parties_and_whispers_to_the_agent_only() {
    let (p, [at_caller, at_agent, at_sup]) = supervised(false).await;
    let (s1000, s600, _) = at_sup;
    assert!(s1000 > 0.2 && s600 > 0.2, "supervisor: {at_sup:?}");
    let (a1000, _, a1400) = at_agent;
    assert!(a1000 > 0.2 && a1400 > 0.2, "agent: {at_agent:?}");
    let (_, c600, c1400) = at_caller;
    assert!(c600 > 0.5 && c1400 < 0.01, "caller: {at_caller:?}");
    let Supervised {
        caller,
        agent,
        c,
        a,
        s,
        tap,
        ..
    } = p;
    let tc = sine(1000.0, 5000.0, 1);
    // The supervisor leaves: the whisper stops, the bridge relays unchanged again.
    s.set_mode(Mode::Silence);
    drop(s);
    let stopped = async {
        while a.leg().whispering() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(2), stopped)
        .await
        .expect("whisper stops with the supervisor's leg");
    assert_eq!(tap.listeners(), 0);
    let pkt = rtp(999, &pcmu(&tc[..FRAME]));
    caller.send_to(&pkt, c.local).await.unwrap();
    let mut buf = [0u8; 400];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let (n, from) = agent.recv_from(&mut buf).await.expect("recv");
            if buf[2..4] == 999u16.to_be_bytes() {
                return (n, from);
            }
        }
    })
    .await
    .expect("relayed");
    assert_eq!(
        &buf[..n],
        &pkt[..],
        "relayed as it came once nobody whispers"
    );
}

/// Barging in, the supervisor is heard by both parties, each of whom still hears the other
/// and never itself; the supervisor hears both; leaving stops both legs' mixing.
#[tokio::test]
async fn a_barging_supervisor_is_heard_by_both_parties() {
    let (p, [at_caller, at_agent, at_sup]) = supervised(true).await;
    let (s1000, s600, _) = at_sup;
    assert!(s1000 > 0.2 && s600 > 0.2, "supervisor: {at_sup:?}");
    let (a1000, a600, a1400) = at_agent;
    assert!(
        a1000 > 0.2 && a1400 > 0.2 && a600 < 0.01,
        "agent: {at_agent:?}"
    );
    let (c1000, c600, c1400) = at_caller;
    assert!(
        c600 > 0.2 && c1400 > 0.2 && c1000 < 0.01,
        "caller: {at_caller:?}"
    );
    assert!(p.c.leg().whispering() && p.a.leg().whispering());
    let (c, a) = (p.c, p.a);
    drop(p.s);
    let stopped = async {
        while a.leg().whispering() || c.leg().whispering() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(2), stopped)
        .await
        .expect("both legs stop mixing with the supervisor's leg");
    drop((p.caller, p.agent, p.sup));
}
