//! The SIP edge's parse path on arbitrary bytes: stream framing, the byte checks, the one
//! parse, every check and the transaction layer's preconditions, and the stateless answers
//! built from what was read. It must never panic.
#![no_main]

use std::net::SocketAddr;

use callfleet::sip::inbound::{self, Checked};
use callfleet::sip::malformed;
use callfleet::sip::reply::Stateless;
use callfleet::sip::stream;
use libfuzzer_sys::fuzz_target;
use rsipstack::sip::Transport;

fuzz_target!(|data: &[u8]| {
    let src: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 5070));
    let _ = stream::frame(data);
    for transport in [Transport::Udp, Transport::Tcp] {
        match inbound::check(data, transport) {
            Checked::Raw(defect) => {
                let _ = malformed::reply_for_raw(data, src, defect.status(), &defect.to_string(), None);
            }
            Checked::Unparseable => {
                let _ = malformed::bad_request_for_raw(data, src, "Bad Request");
            }
            Checked::Refused(req, refusal) => {
                let _ = Stateless::new(&req, src, refusal.status, refusal.reason, Some("t")).finish();
            }
            Checked::Request(req, key) => {
                let _ = key.to_string();
                let _ = callfleet::sip::front::has_to_tag(&req);
                let _ = callfleet::sip::admission::marker(&req.uri);
                let _ = Stateless::new(&req, src, 100, "Trying", None).finish();
                let _ = Stateless::new(&req, src, 302, "Moved", Some("t")).finish();
            }
            Checked::Response(_) | Checked::Unmatchable => {}
        }
    }
});
