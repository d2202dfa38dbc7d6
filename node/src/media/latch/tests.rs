use super::*;

fn a(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test ip")
}

#[test]
fn packets_are_taken_from_the_party_only() {
    // (SDP address, signalling IP, packets in order, expected verdicts)
    type Case = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        &'static [(&'static str, Seen)],
    );
    use Seen::{Party, Stranger};
    let cases: &[Case] = &[
        (
            "a third host first: ignored, the party latches",
            Some("10.0.0.5:4000"),
            Some("10.0.0.5"),
            &[
                ("192.0.2.66:4000", Stranger),
                ("10.0.0.5:4000", Party { moved: false }),
                ("192.0.2.66:4000", Stranger),
                ("10.0.0.5:4000", Party { moved: false }),
            ],
        ),
        (
            "behind NAT: the SDP says a private address, media comes from the signalling IP",
            Some("192.168.1.20:4000"),
            Some("203.0.113.7"),
            &[
                ("198.51.100.9:4000", Stranger),
                ("203.0.113.7:61000", Party { moved: true }),
                ("203.0.113.7:61000", Party { moved: false }),
                // Latched: another port of the same NAT is someone else.
                ("203.0.113.7:61002", Stranger),
                ("192.168.1.20:4000", Stranger),
            ],
        ),
        (
            "the SDP's host on another port (media server, asymmetric port)",
            Some("10.0.0.5:4000"),
            Some("10.0.0.9"),
            &[
                ("10.0.0.5:4002", Party { moved: true }),
                ("10.0.0.5:4000", Stranger),
            ],
        ),
        (
            "a carrier's proxy signals, its media server sends from the SDP address",
            Some("10.0.0.5:4000"),
            Some("10.0.0.1"),
            &[("10.0.0.5:4000", Party { moved: false })],
        ),
        (
            "no SDP address (on hold): only the signalling IP",
            None,
            Some("10.0.0.5"),
            &[
                ("10.0.0.6:4000", Stranger),
                ("10.0.0.5:4000", Party { moved: true }),
            ],
        ),
        (
            "a phone on this host sends from an unbound socket: 127.0.0.1",
            Some("127.0.7.41:44392"),
            Some("127.0.7.41"),
            &[
                ("127.0.33.201:4000", Stranger),
                ("127.0.0.1:44392", Party { moved: true }),
                ("127.0.0.1:50000", Stranger),
            ],
        ),
        (
            "the alias is for parties on this host only",
            Some("10.0.0.5:4000"),
            Some("10.0.0.5"),
            &[("127.0.0.1:4000", Stranger)],
        ),
        (
            "nothing known: nobody",
            None,
            None,
            &[("10.0.0.5:4000", Stranger)],
        ),
    ];
    for (name, sdp, sig, packets) in cases {
        let mut latch = Latch::new(sdp.map(a), sig.map(ip));
        for (i, (from, want)) in packets.iter().enumerate() {
            assert_eq!(
                latch.packet(a(from)),
                *want,
                "{name}: packet {i} from {from}"
            );
        }
    }
}

#[test]
fn latched_reports_where() {
    let mut latch = Latch::new(Some(a("10.0.0.5:4000")), None);
    assert_eq!(latch.latched(), None);
    latch.packet(a("10.0.0.5:4000"));
    assert_eq!(latch.latched(), Some(a("10.0.0.5:4000")));
}
