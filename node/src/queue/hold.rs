//! Hold and resume from the agent's phone. While a queued caller is bridged to an agent, the
//! phone's re-INVITE (or UPDATE) is a new SDP offer (RFC 3264 §8): `a=sendonly`,
//! `a=inactive` or `c=0.0.0.0` (RFC 2543 style) puts the call on hold, `a=sendrecv` resumes
//! it, and a new address or port in any of them moves where the agent's leg sends. Held, the
//! caller hears its queue's music on hold and nothing of the agent; resumed, the bridge is
//! back. The answer's direction is [`decide`]'s, a pure function.

use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::sip::{Header, Request, StatusCode};
use tracing::{debug, info};

use crate::media::moh::{Library, Playlist};
use crate::media::sdp::{self, Direction, Offer};
use crate::media::session::{bridge, Mode, Session, Target};
use crate::realtime::Realtime;
use crate::sip::ctx::CallCtx;

/// What a re-offer from the agent's phone means for the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Our direction in the answer (RFC 3264 §6.1: the reverse of the offer's).
    pub answer: Direction,
    /// Whether the call is on hold after it: the phone no longer takes the caller's audio.
    pub held: bool,
}

/// The answer to an offer with `direction` to an address (`None`: `c=0.0.0.0` or port 0,
/// the phone wants nothing sent). On hold when the phone stops receiving: `sendonly`,
/// `inactive`, or no address; a phone that only receives (`recvonly`, a mute) is not holding.
pub fn decide(direction: Direction, has_address: bool) -> Decision {
    let answer = match (direction, has_address) {
        // Nowhere to send: we only receive, or nothing at all.
        (Direction::SendRecv | Direction::SendOnly, false) => Direction::RecvOnly,
        (Direction::RecvOnly | Direction::Inactive, false) => Direction::Inactive,
        (d, true) => d.answer(),
    };
    let held = !has_address || matches!(direction, Direction::SendOnly | Direction::Inactive);
    Decision { answer, held }
}

/// The SDP state of our side of the agent's dialog: the `o=` line's session id stays, its
/// version goes up with each answer (RFC 3264 §8).
#[derive(Debug, Clone, Copy)]
pub struct AgentSdp {
    pub session_id: u64,
    pub version: u64,
}

/// The music on hold of `queue` (the default class for a direct call or a queue gone).
pub fn playlist(realtime: &Realtime, moh: &Library, queue: Option<&str>) -> Playlist {
    let class = queue.and_then(|q| realtime.get().queues.get(q).map(|q| q.moh_class.clone()));
    match class {
        Some(class) => moh.class(&class),
        None => moh.default_class(),
    }
}

/// Answers the agent phone's re-offer `req` through `handle`, steers the agent's leg to it,
/// and puts the caller on music on hold or back on the bridge. Returns whether the call is
/// held afterwards (`held`: before). An offer we cannot take is refused (488) and changes
/// nothing. `music` gives what a held caller hears (its queue's [`playlist`]).
pub async fn reoffer(
    ctx: &CallCtx<'_>,
    leg: &Session,
    music: impl FnOnce() -> Playlist,
    agent_sdp: &mut AgentSdp,
    held: bool,
    req: &Request,
    handle: TransactionHandle,
) -> bool {
    let cur = leg.target();
    if req.body().iter().all(u8::is_ascii_whitespace) {
        // No offer (the phone wants ours): the session as it stands; the answer in its ACK
        // is not read, so the hold state stays.
        let ours = if held {
            Direction::RecvOnly
        } else {
            Direction::SendRecv
        };
        let offer = Offer {
            remote: cur.remote,
            codec: cur.codec,
            dtmf_pt: cur.dtmf_pt,
            direction: ours.answer(),
            rtcp: cur.rtcp,
            ptime: Some(cur.packet_ms),
        };
        respond(leg, agent_sdp, &offer, handle).await;
        return held;
    }
    let offer = match sdp::parse_offer_keeping(req.body(), Some(cur.codec)) {
        Ok(o) if o.codec == cur.codec => o,
        other => {
            debug!(?other, "agent's re-offer not acceptable");
            if let Err(e) = handle.reply(StatusCode::NotAcceptableHere).await {
                debug!(error = %e, "cannot refuse the agent's re-INVITE");
            }
            return held;
        }
    };
    let d = decide(offer.direction, offer.remote.is_some());
    leg.retarget(Target {
        // Held with c=0.0.0.0, the leg keeps the address it had (it sends nothing anyway).
        remote: offer.remote.or(cur.remote),
        codec: cur.codec,
        send: d.answer.we_send(),
        dtmf_pt: offer.dtmf_pt,
        signal_ip: cur.signal_ip,
        rtcp: offer.rtcp,
        packet_ms: offer.packet_ms(),
    });
    let answered = Offer {
        // `sdp::answer` writes the reverse of the direction it is given.
        direction: d.answer.answer(),
        ..offer
    };
    respond(leg, agent_sdp, &answered, handle).await;
    match (held, d.held) {
        (false, true) => {
            info!(call_id = ctx.call_id, "the agent put the call on hold");
            // Nothing of the agent reaches the caller while held, whatever its phone sends.
            leg.set_mode(Mode::Silence);
            ctx.media.set_mode(Mode::Moh(music()));
        }
        (true, false) => {
            info!(call_id = ctx.call_id, "the agent resumed the call");
            bridge(ctx.media, leg);
        }
        _ => {}
    }
    d.held
}

/// Answers the re-INVITE with our SDP for `offer` (its direction reversed by
/// `sdp::answer`), a new version of the agent dialog's session.
async fn respond(
    leg: &Session,
    agent_sdp: &mut AgentSdp,
    offer: &Offer,
    handle: TransactionHandle,
) {
    agent_sdp.version += 1;
    let body = sdp::answer(leg.local, offer, agent_sdp.session_id, agent_sdp.version);
    let content_type = Some(vec![Header::ContentType("application/sdp".into())]);
    if let Err(e) = handle
        .respond(StatusCode::OK, content_type, Some(body))
        .await
    {
        debug!(error = %e, "cannot answer the agent's re-INVITE");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::*;

    /// RFC 3264 §8.4 (hold), §6.1 (answer directions) and RFC 2543's `c=0.0.0.0`.
    #[test]
    fn answers_to_the_phones_reoffers() {
        for (offer, address, answer, held) in [
            (SendRecv, true, SendRecv, false),
            (SendOnly, true, RecvOnly, true),
            (Inactive, true, Inactive, true),
            (RecvOnly, true, SendOnly, false),
            (SendRecv, false, RecvOnly, true),
            (SendOnly, false, RecvOnly, true),
            (RecvOnly, false, Inactive, true),
            (Inactive, false, Inactive, true),
        ] {
            assert_eq!(
                decide(offer, address),
                Decision { answer, held },
                "{offer:?} with address {address}"
            );
        }
    }

    /// An offer parsed from the wire reaches the same decision (c=0.0.0.0 reads as sendonly).
    #[test]
    fn hold_offers_from_the_wire() {
        let sdp = |c: &str, dir: &str| {
            format!(
                "v=0\r\no=p 1 2 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 {c}\r\nt=0 0\r\n\
                 m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n{dir}"
            )
        };
        for (c, dir, held, answer) in [
            ("10.0.0.9", "a=sendonly\r\n", true, "a=recvonly"),
            ("10.0.0.9", "a=inactive\r\n", true, "a=inactive"),
            ("0.0.0.0", "", true, "a=recvonly"),
            ("10.0.0.9", "a=sendrecv\r\n", false, "a=sendrecv"),
            ("10.0.0.9", "", false, "a=sendrecv"),
        ] {
            let body = sdp(c, dir);
            // The call is on PCMU: the phone's first choice (PCMA) does not win.
            let o = sdp::parse_offer_keeping(body.as_bytes(), Some(sdp::Codec::Pcmu)).unwrap();
            assert_eq!(o.codec, sdp::Codec::Pcmu);
            let d = decide(o.direction, o.remote.is_some());
            assert_eq!(d.held, held, "{c} {dir}");
            let written = sdp::answer(
                "127.0.0.1:5000".parse().unwrap(),
                &Offer {
                    direction: d.answer.answer(),
                    ..o
                },
                1,
                2,
            );
            let text = String::from_utf8(written).unwrap();
            assert!(text.contains(answer), "{c} {dir}: {text}");
        }
        // Without the call's codec in it, the phone's first choice is what parses.
        let o = sdp::parse_offer_keeping(sdp("10.0.0.9", "").as_bytes(), None).unwrap();
        assert_eq!(o.codec, sdp::Codec::Pcma);
    }
}
