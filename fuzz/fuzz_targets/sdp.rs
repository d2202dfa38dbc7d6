//! The SDP offer/answer parser on arbitrary bytes, and our answer to whatever it accepts.
//! It must never panic.
#![no_main]

use std::net::SocketAddr;

use callfleet::media::sdp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(offer) = sdp::parse_offer(data) {
        let local = SocketAddr::from(([127, 0, 0, 11], 16000));
        let _ = sdp::answer(local, &offer, 1, 1);
    }
});
