//! Media for calls the node answers: SDP offer/answer, RTP ports, RTP packets, music on hold.

pub mod moh;
pub mod ports;
pub mod rtp;
pub mod sdp;
pub mod session;
