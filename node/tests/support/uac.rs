//! A raw SIP caller over UDP for tests that look at bytes: sends hand-written requests, reads
//! responses, and receives RTP on its own socket.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

pub struct Uac {
    pub sock: UdpSocket,
    pub local: SocketAddr,
    pub rtp: UdpSocket,
    pub target: SocketAddr,
    /// A Record-Route the INVITE carries, as a proxy in front of us would add.
    pub record_route: Option<String>,
    cseq: u32,
}

/// A parsed response: status and raw text.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        header(&self.text, name)
    }
    pub fn body(&self) -> &str {
        self.text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or("")
    }
}

/// First value of a header (case-insensitive name) in a SIP message.
/// Whether two CSeq values name the same request (number and method; spacing aside).
fn same_cseq(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

pub fn header(text: &str, name: &str) -> Option<String> {
    text.split("\r\n\r\n")
        .next()?
        .lines()
        .skip(1)
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
}

impl Uac {
    pub fn new(ip: &str, target: SocketAddr) -> Uac {
        let sock = UdpSocket::bind(format!("{ip}:0")).expect("bind uac");
        let rtp = UdpSocket::bind(format!("{ip}:0")).expect("bind rtp");
        let local = sock.local_addr().expect("addr");
        Uac {
            sock,
            local,
            rtp,
            target,
            record_route: None,
            cseq: 0,
        }
    }

    pub fn send(&self, text: &str) {
        self.sock
            .send_to(text.as_bytes(), self.target)
            .expect("send");
    }

    pub fn send_bytes(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.target).expect("send");
    }

    /// Next response within `limit`.
    pub fn recv(&self, limit: Duration) -> Option<Resp> {
        let until = Instant::now() + limit;
        let mut buf = [0u8; 65535];
        loop {
            let left = until.checked_duration_since(Instant::now())?;
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            let (n, _) = self.sock.recv_from(&mut buf).ok()?;
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if let Some(code) = text
                .strip_prefix("SIP/2.0 ")
                .and_then(|r| r.get(..3))
                .and_then(|c| c.parse().ok())
            {
                return Some(Resp { status: code, text });
            }
        }
    }

    /// Reads responses until one with a status >= `min` (skipping provisional ones).
    pub fn recv_final(&self, limit: Duration) -> Option<Resp> {
        let until = Instant::now() + limit;
        loop {
            let left = until.checked_duration_since(Instant::now())?;
            let r = self.recv(left)?;
            if r.status >= 200 {
                return Some(r);
            }
        }
    }

    /// The final response to our request with CSeq `cseq` (number and method); other
    /// responses (a 200 the peer retransmits for an earlier request whose ACK it has not
    /// seen yet) are skipped.
    pub fn recv_final_to(&self, cseq: &str, limit: Duration) -> Option<Resp> {
        let until = Instant::now() + limit;
        loop {
            let left = until.checked_duration_since(Instant::now())?;
            let r = self.recv_final(left)?;
            if r.header("CSeq").is_some_and(|c| same_cseq(&c, cseq)) {
                return Some(r);
            }
        }
    }

    pub fn sdp(&self, extra: &str) -> String {
        let rtp = self.rtp.local_addr().expect("rtp addr");
        format!(
            "v=0\r\no=test 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\n\
             a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n{extra}",
            ip = rtp.ip(),
            port = rtp.port()
        )
    }

    /// An INVITE (or re-INVITE when `to_tag` is set) with our SDP.
    pub fn invite(
        &mut self,
        user: &str,
        call_id: &str,
        to_tag: Option<&str>,
        sdp_extra: &str,
    ) -> (String, u32) {
        self.cseq += 1;
        let body = self.sdp(sdp_extra);
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let rr = self
            .record_route
            .as_ref()
            .map(|r| format!("Record-Route: {r}\r\n"))
            .unwrap_or_default();
        let text = format!(
            "INVITE sip:{user}@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-{call_id}-{c};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:caller@{l}>;tag=from-{call_id}\r\nTo: <sip:{user}@{t}>{to_tag}\r\n\
             Call-ID: {call_id}\r\nCSeq: {c} INVITE\r\nContact: <sip:caller@{l}>\r\n{rr}\
             Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{body}",
            t = self.target,
            l = self.local,
            c = self.cseq,
            len = body.len()
        );
        self.send(&text);
        (text, self.cseq)
    }

    /// ACKs `ok`, the 2xx to our INVITE with CSeq `cseq`.
    pub fn ack(&self, call_id: &str, ok: &Resp, cseq: u32) {
        let to = ok.header("To").expect("To in 2xx");
        self.send(&format!(
            "ACK sip:callfleet@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-ack-{call_id}-{cseq};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:caller@{l}>;tag=from-{call_id}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
            t = self.target,
            l = self.local
        ));
    }

    /// Calls `user` and ACKs the answer: the 200 OK, or `None` when none came within `limit`
    /// (any other final response panics with its text).
    pub fn answered(&mut self, user: &str, call_id: &str, limit: Duration) -> Option<Resp> {
        let (_, cseq) = self.invite(user, call_id, None, "");
        let ok = self.recv_final(limit)?;
        assert_eq!(ok.status, 200, "call to {user}: {}", ok.text);
        self.ack(call_id, &ok, cseq);
        Some(ok)
    }

    /// Where the 2xx's SDP asks us to send RTP.
    pub fn media_addr(ok: &Resp) -> SocketAddr {
        let body = ok.body();
        let ip = body
            .lines()
            .find_map(|l| l.strip_prefix("c=IN IP4 "))
            .expect("c= line")
            .trim();
        let port = body
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|m| m.split_whitespace().next())
            .expect("m= line");
        format!("{ip}:{port}").parse().expect("media address")
    }

    /// Sends a `freq` Hz tone as PCMU RTP every 20 ms for `dur` and returns what came back.
    pub fn talk(&self, to: SocketAddr, freq: f32, dur: Duration) -> Vec<i16> {
        let frames = super::audio::pcmu_tone(freq, (dur.as_millis() / 20) as usize);
        self.rtp
            .set_read_timeout(Some(Duration::from_millis(2)))
            .expect("set a read timeout");
        let mut heard = vec![];
        let mut buf = [0u8; 2048];
        let start = Instant::now();
        for (i, f) in frames.iter().enumerate() {
            let mut pkt = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0xca, 0xfe, 0xba, 0xbe];
            pkt[2..4].copy_from_slice(&(i as u16).to_be_bytes());
            pkt[4..8].copy_from_slice(&((i * 160) as u32).to_be_bytes());
            pkt.extend_from_slice(f);
            let _ = self.rtp.send_to(&pkt, to);
            while let Ok((n, _)) = self.rtp.recv_from(&mut buf) {
                if n > 12 && buf[1] & 0x7f == 0 {
                    heard.extend(super::audio::decode_pcmu(&buf[12..n]));
                }
            }
            let next = start + Duration::from_millis(20 * (i as u64 + 1));
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        heard
    }

    /// Listens to the node for up to `limit`: every PCMU frame received, decoded, in arrival
    /// order. With `send = Some((to, freq))` it also sends a `freq` Hz tone to `to` every 20 ms
    /// (so the node latches to us and can record us). Stops early once `done(frames)` is true
    /// (asked at most every 100 ms).
    pub fn listen(
        &self,
        send: Option<(SocketAddr, f32)>,
        limit: Duration,
        mut done: impl FnMut(&[Vec<i16>]) -> bool,
    ) -> Vec<Vec<i16>> {
        let tone = super::audio::pcmu_tone(send.map_or(1000.0, |(_, f)| f), 50);
        self.rtp
            .set_read_timeout(Some(Duration::from_millis(2)))
            .expect("set a read timeout");
        let mut heard = vec![];
        let mut buf = [0u8; 2048];
        let start = Instant::now();
        let mut asked = start;
        let mut i: usize = 0;
        while start.elapsed() < limit {
            if let Some((to, _)) = send {
                let mut pkt = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0xca, 0xfe, 0xba, 0xbf];
                pkt[2..4].copy_from_slice(&(i as u16).to_be_bytes());
                pkt[4..8].copy_from_slice(&((i * 160) as u32).to_be_bytes());
                pkt.extend_from_slice(&tone[i % tone.len()]);
                let _ = self.rtp.send_to(&pkt, to);
            }
            while let Ok((n, _)) = self.rtp.recv_from(&mut buf) {
                if n > 12 && buf[1] & 0x7f == 0 {
                    heard.push(super::audio::decode_pcmu(&buf[12..n]));
                }
            }
            if asked.elapsed() >= Duration::from_millis(100) {
                asked = Instant::now();
                if done(&heard) {
                    break;
                }
            }
            i += 1;
            let next = start + Duration::from_millis(20 * i as u64);
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        heard
    }

    /// Waits up to `limit` for a request from the node (e.g. its BYE), answers it `200 OK`,
    /// and returns its text.
    pub fn answer_request(&self, method: &str, limit: Duration) -> Option<String> {
        let start = format!("{method} ");
        self.answer_where(limit, |text| text.starts_with(&start))
    }

    /// Waits up to `limit` for any request from the node, answers it `200 OK`, and returns
    /// its text.
    pub fn answer_any(&self, limit: Duration) -> Option<String> {
        self.answer_where(limit, |text| !text.starts_with("SIP/2.0 "))
    }

    fn answer_where(&self, limit: Duration, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let until = Instant::now() + limit;
        let mut buf = [0u8; 65535];
        loop {
            let left = until.checked_duration_since(Instant::now())?;
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            let (n, from) = self.sock.recv_from(&mut buf).ok()?;
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if !wanted(&text) {
                continue;
            }
            let h = |name: &str| header(&text, name).unwrap_or_default();
            let reply = format!(
                "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
                 Content-Length: 0\r\n\r\n",
                h("Via"),
                h("From"),
                h("To"),
                h("Call-ID"),
                h("CSeq")
            );
            let _ = self.sock.send_to(reply.as_bytes(), from);
            return Some(text);
        }
    }

    /// A request `method` with `call_id` but tags of no dialog of the node (`To` tag made
    /// up), with `extra` header lines: the status of its final response (0: none).
    pub fn foreign(&self, method: &str, call_id: &str, extra: &str) -> u16 {
        let l = self.local;
        let text = format!(
            "{method} sip:callfleet@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-{method}-forged;rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:caller@{l}>;tag=not-the-caller\r\nTo: <sip:sales@{t}>;tag=not-ours\r\n\
             Call-ID: {call_id}\r\nCSeq: 7 {method}\r\nContact: <sip:x@{l}>\r\n{extra}Content-Length: 0\r\n\r\n",
            t = self.target,
        );
        self.send(&text);
        self.recv_final(Duration::from_secs(3))
            .map_or(0, |r| r.status)
    }

    /// A request inside the dialog established by `ok` (a 2xx to our INVITE).
    pub fn in_dialog(&mut self, method: &str, call_id: &str, ok: &Resp, cseq: Option<u32>) -> u32 {
        let cseq = cseq.unwrap_or_else(|| {
            self.cseq += 1;
            self.cseq
        });
        let to = ok.header("To").expect("To in 2xx");
        let text = format!(
            "{method} sip:callfleet@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-{method}-{call_id}-{cseq};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:caller@{l}>;tag=from-{call_id}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            t = self.target,
            l = self.local
        );
        self.send(&text);
        cseq
    }

    /// RTP packets received within `window`: (count, payload types, sequence numbers, timestamps).
    pub fn rtp_for(&self, window: Duration) -> Vec<(u8, u16, u32, usize)> {
        let until = Instant::now() + window;
        let mut out = vec![];
        let mut buf = [0u8; 2048];
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            self.rtp
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok();
            match self.rtp.recv_from(&mut buf) {
                Ok((n, _)) if n >= 12 => {
                    let seq = u16::from_be_bytes([buf[2], buf[3]]);
                    let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
                    out.push((buf[1] & 0x7f, seq, ts, n));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        out
    }
}
