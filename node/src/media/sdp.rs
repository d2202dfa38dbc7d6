//! SDP offer/answer for audio calls (RFC 3264): reads the caller's address, port, codecs and
//! direction and packet time, and writes our answer with PCMU/PCMA and telephone-event/8000 at
//! the packet time we send with.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// The G.711 variant a call uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
}

/// Media direction (RFC 3264 §5.1) from the offerer's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// Our direction in the answer.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }
    /// Whether we may send media when this is our direction.
    pub fn we_send(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// Where the party takes RTCP: on the port above its RTP port (RFC 3550 §11), on a port of
/// its own (`a=rtcp:`, RFC 3605), or on its RTP port (`a=rtcp-mux`, RFC 5761).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rtcp {
    #[default]
    NextPort,
    Port(u16),
    Mux,
}

impl Rtcp {
    /// Where to send the party's RTCP, given its RTP address (`None`: on the RTP socket).
    pub fn address(self, rtp: SocketAddr) -> Option<SocketAddr> {
        match self {
            Rtcp::NextPort => Some(SocketAddr::new(rtp.ip(), rtp.port().checked_add(1)?)),
            Rtcp::Port(p) => Some(SocketAddr::new(rtp.ip(), p)),
            Rtcp::Mux => None,
        }
    }
}

/// What we take from an audio offer.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// Where the caller wants RTP; `None` when it holds the call with `c=0.0.0.0`.
    pub remote: Option<SocketAddr>,
    pub codec: Codec,
    /// Payload type of telephone-event/8000, if offered.
    pub dtmf_pt: Option<u8>,
    pub direction: Direction,
    /// Where the party wants RTCP; an offer of `a=rtcp-mux` is accepted in our answer.
    pub rtcp: Rtcp,
    /// The packet time asked for with `a=ptime` (milliseconds), at media or session level.
    pub ptime: Option<u32>,
}

impl Offer {
    /// The packet time to send this party and to write in our answer (see [`packet_ms`]).
    pub fn packet_ms(&self) -> u32 {
        packet_ms(self.ptime)
    }
}

/// Packet time when none is asked for, and the most and least G.711 is sent with.
pub const DEFAULT_PTIME: u32 = 20;
pub const MIN_PTIME: u32 = 10;
pub const MAX_PTIME: u32 = 60;

/// The packet time to send G.711 with when the party asked for `asked` ms: what it asked,
/// within 10–60 ms and in steps of 10 ms (frames are 10 ms), rounded down to a step and held
/// within the range; 20 ms when it asked for nothing (or for 0).
pub fn packet_ms(asked: Option<u32>) -> u32 {
    match asked {
        None | Some(0) => DEFAULT_PTIME,
        Some(ms) => (ms - ms % MIN_PTIME).clamp(MIN_PTIME, MAX_PTIME),
    }
}

/// Why an offer cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("no SDP body")]
    Empty,
    #[error("SDP is not UTF-8")]
    NotText,
    #[error("no audio stream in SDP")]
    NoAudio,
    #[error("no connection address for the audio stream")]
    NoAddress,
    #[error("no common codec (we take PCMU or PCMA)")]
    NoCodec,
}

/// Parses an SDP offer and picks the first codec of the caller's that we support.
pub fn parse_offer(body: &[u8]) -> Result<Offer, SdpError> {
    parse_offer_keeping(body, None)
}

/// [`parse_offer`], but `keep` wins when the offer lists it: a re-offer inside a call whose
/// packets are relayed untouched must stay on the codec the call already uses.
pub fn parse_offer_keeping(body: &[u8], keep: Option<Codec>) -> Result<Offer, SdpError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(SdpError::Empty);
    }
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
    let mut scan = Scan::default();
    for line in text.lines().map(str::trim) {
        if let Some((kind, value)) = line.split_once('=') {
            scan.line(kind, value);
        }
    }
    scan.offer(keep)
}

/// What the lines read so far say: the session-level connection address, direction and
/// packet time, and the first audio stream (later streams are passed over).
struct Scan {
    session_addr: Option<IpAddr>,
    session_dir: Direction,
    session_ptime: Option<u32>,
    audio: Option<AudioDesc>,
    /// A media section (`m=`) has begun: later lines are no longer session-level.
    in_media: bool,
    /// The lines belong to the first audio stream.
    in_audio: bool,
}

impl Default for Scan {
    fn default() -> Self {
        Scan {
            session_addr: None,
            session_dir: Direction::SendRecv,
            session_ptime: None,
            audio: None,
            in_media: false,
            in_audio: false,
        }
    }
}

impl Scan {
    /// Takes one `kind=value` line, at session level or for the audio stream it belongs to.
    fn line(&mut self, kind: &str, value: &str) {
        match kind {
            "m" => {
                self.in_media = true;
                self.in_audio = value.starts_with("audio ") && self.audio.is_none();
                if self.in_audio {
                    self.audio = Some(AudioDesc::from_m_line(value));
                }
            }
            "c" => {
                let addr = parse_c_line(value);
                if !self.in_media {
                    self.session_addr = addr;
                } else if let Some(a) = self.audio_line() {
                    a.addr = addr;
                }
            }
            "a" if value.starts_with("ptime:") => {
                let ms = value.strip_prefix("ptime:").and_then(parse_ptime);
                if !self.in_media {
                    self.session_ptime = ms;
                } else if let Some(a) = self.audio_line() {
                    a.ptime = ms;
                }
            }
            "a" => match parse_direction(value) {
                Some(dir) if !self.in_media => self.session_dir = dir,
                Some(dir) => {
                    if let Some(a) = self.audio_line() {
                        a.direction = Some(dir);
                    }
                }
                None => {
                    if let Some(a) = self.audio_line() {
                        a.rtpmap(value);
                        a.rtcp(value);
                    }
                }
            },
            _ => {}
        }
    }

    /// The audio stream, when the current line belongs to it.
    fn audio_line(&mut self) -> Option<&mut AudioDesc> {
        if self.in_audio {
            self.audio.as_mut()
        } else {
            None
        }
    }

    /// The offer the lines make: the audio stream's values, else the session's; its codec is
    /// `keep` when listed, else the first we take; a stream without an address or port holds
    /// the call (its `sendrecv` counts as `sendonly`).
    fn offer(self, keep: Option<Codec>) -> Result<Offer, SdpError> {
        let audio = self.audio.ok_or(SdpError::NoAudio)?;
        let addr = audio
            .addr
            .or(self.session_addr)
            .ok_or(SdpError::NoAddress)?;
        let kept = keep.filter(|c| audio.payloads.contains(&c.payload_type()));
        let codec = kept
            .or_else(|| {
                audio.payloads.iter().find_map(|pt| match pt {
                    0 => Some(Codec::Pcmu),
                    8 => Some(Codec::Pcma),
                    _ => None,
                })
            })
            .ok_or(SdpError::NoCodec)?;
        let remote =
            (!addr.is_unspecified() && audio.port != 0).then(|| SocketAddr::new(addr, audio.port));
        let mut direction = audio.direction.unwrap_or(self.session_dir);
        if remote.is_none() && direction == Direction::SendRecv {
            direction = Direction::SendOnly;
        }
        Ok(Offer {
            remote,
            codec,
            dtmf_pt: audio.dtmf_pt,
            direction,
            rtcp: audio.rtcp,
            ptime: audio.ptime.or(self.session_ptime),
        })
    }
}

/// `a=ptime` is a decimal number of milliseconds (RFC 4566 §6; a fraction is cut).
fn parse_ptime(value: &str) -> Option<u32> {
    let whole = value.trim().split('.').next()?;
    (!whole.is_empty() && whole.len() <= 6 && whole.bytes().all(|b| b.is_ascii_digit()))
        .then(|| whole.parse().ok())
        .flatten()
}

struct AudioDesc {
    port: u16,
    payloads: Vec<u8>,
    addr: Option<IpAddr>,
    dtmf_pt: Option<u8>,
    direction: Option<Direction>,
    rtcp: Rtcp,
    ptime: Option<u32>,
}

impl AudioDesc {
    fn from_m_line(value: &str) -> AudioDesc {
        let mut words = value.split_whitespace().skip(1);
        let port = words
            .next()
            .and_then(|p| p.split('/').next()?.parse().ok())
            .unwrap_or(0);
        let payloads = words.skip(1).filter_map(|p| p.parse().ok()).collect();
        AudioDesc {
            port,
            payloads,
            addr: None,
            dtmf_pt: None,
            direction: None,
            rtcp: Rtcp::NextPort,
            ptime: None,
        }
    }

    /// `a=rtcp-mux` (which wins) and `a=rtcp:PORT [address]` (the address is not taken: RTCP
    /// goes to the RTP host, as the latch only trusts that host).
    fn rtcp(&mut self, value: &str) {
        if value == "rtcp-mux" {
            self.rtcp = Rtcp::Mux;
        } else if let Some(rest) = value.strip_prefix("rtcp:") {
            let port = rest.split_whitespace().next().and_then(|p| p.parse().ok());
            if let (Some(port), false) = (port, self.rtcp == Rtcp::Mux) {
                self.rtcp = Rtcp::Port(port);
            }
        }
    }

    fn rtpmap(&mut self, value: &str) {
        let Some(rest) = value.strip_prefix("rtpmap:") else {
            return;
        };
        let mut words = rest.split_whitespace();
        let pt: Option<u8> = words.next().and_then(|p| p.parse().ok());
        let enc = words.next().unwrap_or("");
        if enc.eq_ignore_ascii_case("telephone-event/8000") {
            self.dtmf_pt = pt.filter(|p| self.payloads.contains(p));
        }
    }
}

fn parse_c_line(value: &str) -> Option<IpAddr> {
    let mut words = value.split_whitespace();
    let (_net, _kind, addr) = (words.next()?, words.next()?, words.next()?);
    addr.split('/').next()?.parse().ok()
}

fn parse_direction(value: &str) -> Option<Direction> {
    match value {
        "sendrecv" => Some(Direction::SendRecv),
        "sendonly" => Some(Direction::SendOnly),
        "recvonly" => Some(Direction::RecvOnly),
        "inactive" => Some(Direction::Inactive),
        _ => None,
    }
}

/// Writes our SDP answer.
pub fn answer(local: SocketAddr, offer: &Offer, session_id: u64, version: u64) -> Vec<u8> {
    let ip = local.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let dir = offer.direction.answer();
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "v=0\r\no=callfleet {session_id} {version} IN {family} {ip}\r\ns=callfleet\r\n"
    );
    let _ = write!(s, "c=IN {family} {ip}\r\nt=0 0\r\n");
    let pt = offer.codec.payload_type();
    match offer.dtmf_pt {
        Some(ev) => {
            let _ = write!(s, "m=audio {} RTP/AVP {pt} {ev}\r\n", local.port());
            let _ = write!(s, "a=rtpmap:{pt} {}/8000\r\n", offer.codec.name());
            let _ = write!(
                s,
                "a=rtpmap:{ev} telephone-event/8000\r\na=fmtp:{ev} 0-16\r\n"
            );
        }
        None => {
            let _ = write!(s, "m=audio {} RTP/AVP {pt}\r\n", local.port());
            let _ = write!(s, "a=rtpmap:{pt} {}/8000\r\n", offer.codec.name());
        }
    }
    let _ = write!(s, "a=ptime:{}\r\na={}\r\n", offer.packet_ms(), dir.attr());
    if offer.rtcp == Rtcp::Mux {
        s.push_str("a=rtcp-mux\r\n");
    }
    s.into_bytes()
}

/// Writes our SDP offer, for an INVITE that came without one (delayed offer, RFC 3261
/// §13.2.1): PCMU and PCMA, telephone-event/8000 as payload type 101, sendrecv. The answer comes
/// in the ACK and is read with [`parse_offer`] (its first codec we take wins).
pub fn offer(local: SocketAddr, session_id: u64, version: u64) -> Vec<u8> {
    let ip = local.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "v=0\r\no=callfleet {session_id} {version} IN {family} {ip}\r\ns=callfleet\r\n"
    );
    let _ = write!(s, "c=IN {family} {ip}\r\nt=0 0\r\n");
    let _ = write!(s, "m=audio {} RTP/AVP 0 8 101\r\n", local.port());
    s.push_str("a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n");
    s.push_str("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n");
    s.push_str("a=ptime:20\r\na=sendrecv\r\n");
    s.into_bytes()
}

#[cfg(test)]
mod tests;
