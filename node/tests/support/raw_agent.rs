//! An agent's phone made of raw SIP and RTP that the node rings: it answers the node's INVITE,
//! then sends in-dialog requests of the test's choosing (re-INVITEs, REFERs), with its own
//! dialog's tags or forged ones; its media (a [`Pump`] the test starts, or [`Pickup`] does)
//! sends a tone whatever the SDP says.

use std::net::{SocketAddr, UdpSocket};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::pump::Pump;
use super::raw_phone::RawPhone;
use super::uac::{header, Resp, Uac};

pub struct RawAgent {
    pub phone: RawPhone,
    /// The node's INVITE: its From (our To), To with our tag (our From), Call-ID, Contact.
    pub call_id: String,
    ours: String,
    theirs: String,
    target: String,
    cseq: u32,
    version: u32,
    /// Where the node takes the agent's media.
    pub node_media: SocketAddr,
}

/// The text of the next request `method` that reaches `uac` within `limit`.
pub fn next_request(uac: &Uac, method: &str, limit: Duration) -> Option<String> {
    let until = Instant::now() + limit;
    let mut buf = [0u8; 65535];
    loop {
        let left = until.checked_duration_since(Instant::now())?;
        uac.sock
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        let (n, _) = uac.sock.recv_from(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with(&format!("{method} ")) {
            return Some(text);
        }
    }
}

impl RawAgent {
    /// The SDP of the phone (at its own IP) with media at `c`:`port`.
    fn sdp(&self, c: &str, port: u16, direction: &str) -> String {
        sdp(
            &self.phone.uac.local.ip().to_string(),
            c,
            port,
            self.version,
            direction,
        )
    }

    /// Takes the node's INVITE and answers it with media at `rtp`.
    pub fn answer(phone: RawPhone, rtp: SocketAddr) -> RawAgent {
        let invite = next_request(&phone.uac, "INVITE", Duration::from_secs(10))
            .expect("the node rings the raw agent");
        let h = |name: &str| header(&invite, name).unwrap_or_default();
        let vias: String = invite
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("via:"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        let ours = format!("{};tag=raw-agent", h("To"));
        let ip = phone.uac.local.ip().to_string();
        let body = sdp(&ip, &ip, rtp.port(), 1, "a=sendrecv\r\n");
        phone.uac.send(&format!(
            "SIP/2.0 200 OK\r\n{vias}From: {}\r\nTo: {ours}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
             Contact: <sip:{}@{}>\r\nContent-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{body}",
            h("From"),
            h("Call-ID"),
            h("CSeq"),
            phone.user,
            phone.uac.local,
            body.len()
        ));
        next_request(&phone.uac, "ACK", Duration::from_secs(5)).expect("the node ACKs");
        let node_media = Uac::media_addr(&Resp {
            status: 200,
            text: invite.clone(),
        });
        let target = h("Contact");
        let target = target
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string();
        RawAgent {
            node_media,
            call_id: h("Call-ID"),
            ours,
            theirs: h("From"),
            target,
            cseq: 0,
            version: 1,
            phone,
        }
    }

    /// The start of an in-dialog request `method` (its headers up to `Contact`), with our
    /// dialog's From tag or, `forged`, another dialog's.
    fn head(&self, method: &str, branch: &str, forged: bool) -> String {
        let from = if forged {
            format!(
                "<sip:{}@{}>;tag=someone-else",
                self.phone.user, self.phone.uac.local
            )
        } else {
            self.ours.clone()
        };
        let (l, cseq) = (self.phone.uac.local, self.cseq);
        format!(
            "{method} {} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-{branch}-{cseq};rport\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
             Contact: <sip:{}@{l}>\r\n",
            self.target, self.theirs, self.call_id, self.phone.user
        )
    }

    /// A re-INVITE with media at `c`:`port` and `direction` (`forged`: another dialog's
    /// tag); the final response, ACKed when 2xx.
    pub fn reinvite(&mut self, c: &str, port: u16, direction: &str, forged: bool) -> Resp {
        self.cseq += 1;
        self.version += 1;
        let body = self.sdp(c, port, direction);
        self.phone.uac.send(&format!(
            "{}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            self.head("INVITE", "reinv", forged),
            body.len()
        ));
        let resp = self
            .phone
            .uac
            .recv_final_to(&format!("{} INVITE", self.cseq), Duration::from_secs(5))
            .expect("an answer to the re-INVITE");
        if resp.status == 200 {
            self.phone.uac.send(&format!(
                "{}Content-Length: 0\r\n\r\n",
                self.head("ACK", "ack", forged)
            ));
        }
        resp
    }

    /// A bodiless in-dialog request `method` with `extra` header lines; its final response.
    pub fn request(&mut self, method: &str, extra: &str, forged: bool) -> Option<Resp> {
        self.cseq += 1;
        let branch = method.to_ascii_lowercase();
        self.phone.uac.send(&format!(
            "{}{extra}Content-Length: 0\r\n\r\n",
            self.head(method, &branch, forged)
        ));
        let cseq = format!("{} {method}", self.cseq);
        self.phone.uac.recv_final_to(&cseq, Duration::from_secs(5))
    }
}

fn sdp(origin: &str, c: &str, port: u16, version: u32, direction: &str) -> String {
    format!(
        "v=0\r\no=agent 7 {version} IN IP4 {origin}\r\ns=-\r\nc=IN IP4 {c}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n{direction}"
    )
}

/// A raw agent the node rings: its phone answers in a thread of its own (the node's INVITE
/// comes once the caller is queued, while the test listens to the caller), then its media
/// sends `tone` from a [`Pump`] until [`Pickup::hang_up`].
pub struct Pickup {
    rtp: UdpSocket,
    tone: f32,
    ringing: Option<JoinHandle<RawAgent>>,
    /// The agent, once it answered.
    pub agent: Option<RawAgent>,
    pump: Option<Pump>,
}

impl Pickup {
    /// Waits for the node to ring `phone`, to answer with media on a port of `rtp_ip`.
    pub fn ring(phone: RawPhone, rtp_ip: &str, tone: f32) -> Pickup {
        let rtp = UdpSocket::bind(format!("{rtp_ip}:0")).expect("bind RTP");
        let rtp_addr = rtp.local_addr().expect("addr");
        let ringing = std::thread::spawn(move || RawAgent::answer(phone, rtp_addr));
        Pickup {
            rtp,
            tone,
            ringing: Some(ringing),
            agent: None,
            pump: None,
        }
    }

    /// True once, when the agent has answered: its media starts then. False while it rings
    /// and after.
    pub fn answered(&mut self) -> bool {
        if !self.ringing.as_ref().is_some_and(|t| t.is_finished()) {
            return false;
        }
        let agent = self
            .ringing
            .take()
            .map(|t| t.join().expect("the raw agent answers"))
            .expect("ringing");
        let sock = self.rtp.try_clone().expect("clone the RTP socket");
        self.pump = Some(Pump::start(sock, Some(agent.node_media), self.tone));
        self.agent = Some(agent);
        true
    }

    /// The port the agent's media is sent from (and answered at).
    pub fn rtp_port(&self) -> u16 {
        self.rtp.local_addr().map_or(0, |a| a.port())
    }

    /// The Call-ID of the node's call to the agent (empty if it never answered).
    pub fn call_id(&self) -> String {
        self.agent
            .as_ref()
            .map(|a| a.call_id.clone())
            .unwrap_or_default()
    }

    /// Stops the agent's media.
    pub fn hang_up(&mut self) {
        if let Some(p) = self.pump.take() {
            p.stop();
        }
    }
}
