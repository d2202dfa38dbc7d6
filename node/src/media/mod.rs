//! Media for calls the node answers: SDP offer/answer, RTP ports, RTP packets, music on hold,
//! DTMF detection, recording, the per-leg session that also bridges two legs (taking only its
//! party's packets, see `latch`), and the tap through which a supervisor listens to (or
//! whispers into) a bridge.

pub mod clock;
pub mod dtmf;
pub mod latch;
pub mod moh;
pub mod ports;
pub mod prompts;
pub mod quality;
pub mod record;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod session;
pub mod stereo;
pub mod tap;
pub mod uploaded;
