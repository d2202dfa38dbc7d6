use super::*;

const SIPP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

#[test]
fn offers_parse() {
    let cases: Vec<(String, Result<Offer, SdpError>)> = vec![
        (
            SIPP.to_string(),
            Ok(Offer {
                remote: Some("127.0.0.1:6000".parse().unwrap()),
                codec: Codec::Pcmu,
                dtmf_pt: None,
                direction: Direction::SendRecv,
                rtcp: Rtcp::NextPort,
                ptime: None,
            }),
        ),
        (
            SIPP.replace("RTP/AVP 0", "RTP/AVP 9 8 0 101")
                + "a=rtpmap:101 telephone-event/8000\r\na=sendonly\r\na=rtcp:6003 IN IP4 127.0.0.1\r\n",
            Ok(Offer {
                remote: Some("127.0.0.1:6000".parse().unwrap()),
                codec: Codec::Pcma,
                dtmf_pt: Some(101),
                direction: Direction::SendOnly,
                rtcp: Rtcp::Port(6003),
                ptime: None,
            }),
        ),
        (
            SIPP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0") + "a=rtcp:6001\r\na=rtcp-mux\r\n",
            Ok(Offer {
                remote: None,
                codec: Codec::Pcmu,
                dtmf_pt: None,
                direction: Direction::SendOnly,
                rtcp: Rtcp::Mux,
                ptime: None,
            }),
        ),
        (
            SIPP.replace("RTP/AVP 0", "RTP/AVP 18"),
            Err(SdpError::NoCodec),
        ),
        (SIPP.replace("m=audio", "m=video"), Err(SdpError::NoAudio)),
        (
            SIPP.replace("c=IN IP4 127.0.0.1\r\n", ""),
            Err(SdpError::NoAddress),
        ),
        (String::new(), Err(SdpError::Empty)),
    ];
    for (text, want) in cases {
        assert_eq!(parse_offer(text.as_bytes()), want, "{text}");
    }
    assert_eq!(parse_offer(&[0xff, 0xfe]), Err(SdpError::NotText));
}

#[test]
fn media_level_connection_wins() {
    let text = SIPP.replace(
        "a=rtpmap:0 PCMU/8000",
        "c=IN IP4 127.0.0.5\r\na=rtpmap:0 PCMU/8000",
    );
    let offer = parse_offer(text.as_bytes()).expect("parses");
    assert_eq!(offer.remote, Some("127.0.0.5:6000".parse().unwrap()));
}

#[test]
fn answer_mirrors_codec_and_direction() {
    let offer = Offer {
        remote: None,
        codec: Codec::Pcma,
        dtmf_pt: Some(101),
        direction: Direction::SendOnly,
        rtcp: Rtcp::Mux,
        ptime: None,
    };
    let sdp = String::from_utf8(answer("127.0.0.11:20000".parse().unwrap(), &offer, 1, 2)).unwrap();
    assert!(sdp.contains("m=audio 20000 RTP/AVP 8 101\r\n"), "{sdp}");
    assert!(
        sdp.contains("a=rtpmap:101 telephone-event/8000\r\n"),
        "{sdp}"
    );
    assert!(sdp.contains("a=recvonly\r\n"), "{sdp}");
    assert!(sdp.contains("c=IN IP4 127.0.0.11\r\n"), "{sdp}");
    assert!(
        sdp.contains("a=rtcp-mux\r\n"),
        "an offered rtcp-mux is accepted: {sdp}"
    );
    let again = parse_offer(sdp.as_bytes()).expect("our answer parses as SDP");
    assert_eq!(again.codec, Codec::Pcma);
    let plain = Offer {
        rtcp: Rtcp::NextPort,
        ..offer
    };
    let sdp = String::from_utf8(answer("127.0.0.11:20000".parse().unwrap(), &plain, 1, 2)).unwrap();
    assert!(!sdp.contains("rtcp-mux"), "{sdp}");
}

#[test]
fn rtcp_addresses() {
    let rtp: SocketAddr = "10.0.0.1:4000".parse().unwrap();
    assert_eq!(
        Rtcp::NextPort.address(rtp),
        Some("10.0.0.1:4001".parse().unwrap())
    );
    assert_eq!(
        Rtcp::Port(5000).address(rtp),
        Some("10.0.0.1:5000".parse().unwrap())
    );
    assert_eq!(Rtcp::Mux.address(rtp), None);
    assert_eq!(
        Rtcp::NextPort.address("10.0.0.1:65535".parse().unwrap()),
        None
    );
}

#[test]
fn our_offer_lists_both_codecs_and_an_answer_to_it_parses() {
    let local: SocketAddr = "127.0.0.11:16000".parse().unwrap();
    let ours = String::from_utf8(offer(local, 7, 1)).unwrap();
    assert!(ours.contains("m=audio 16000 RTP/AVP 0 8 101\r\n"), "{ours}");
    let parsed = parse_offer(ours.as_bytes()).expect("our offer parses");
    assert_eq!(parsed.codec, Codec::Pcmu);
    assert_eq!(parsed.dtmf_pt, Some(101));
    // A peer that answers with PCMA only.
    let answer = "v=0\r\no=- 1 1 IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\n\
                  m=audio 4000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    let taken = parse_offer(answer.as_bytes()).expect("answer parses");
    assert_eq!(taken.codec, Codec::Pcma);
    assert_eq!(taken.remote, Some("127.0.0.9:4000".parse().unwrap()));
}

#[test]
fn ptime_is_read_and_held_to_what_g711_allows() {
    for (asked, sent) in [
        (None, 20),
        (Some(0), 20),
        (Some(5), 10),
        (Some(10), 10),
        (Some(20), 20),
        (Some(25), 20),
        (Some(30), 30),
        (Some(40), 40),
        (Some(60), 60),
        (Some(90), 60),
        (Some(1000), 60),
    ] {
        assert_eq!(packet_ms(asked), sent, "{asked:?}");
    }
    let media = format!("{SIPP}a=ptime:30\r\n");
    assert_eq!(parse_offer(media.as_bytes()).unwrap().ptime, Some(30));
    let session = SIPP.replace("t=0 0\r\n", "t=0 0\r\na=ptime:40\r\n");
    assert_eq!(parse_offer(session.as_bytes()).unwrap().ptime, Some(40));
    let both = format!("{session}a=ptime:10\r\n");
    assert_eq!(
        parse_offer(both.as_bytes()).unwrap().ptime,
        Some(10),
        "the media line's wins"
    );
    for bad in [
        "a=ptime:",
        "a=ptime:x",
        "a=ptime:-20",
        "a=ptime:99999999999",
    ] {
        let text = format!("{SIPP}{bad}\r\n");
        assert_eq!(parse_offer(text.as_bytes()).unwrap().ptime, None, "{bad}");
    }
    assert_eq!(
        parse_offer(format!("{SIPP}a=ptime:20.5\r\n").as_bytes())
            .unwrap()
            .ptime,
        Some(20)
    );
    let offer = parse_offer(media.as_bytes()).unwrap();
    let ours =
        String::from_utf8(answer("127.0.0.11:20000".parse().unwrap(), &offer, 1, 2)).unwrap();
    assert!(ours.contains("a=ptime:30\r\n"), "{ours}");
    let video = SIPP.replace(
        "a=rtpmap:0 PCMU/8000\r\n",
        "a=rtpmap:0 PCMU/8000\r\nm=video 6002 RTP/AVP 31\r\na=ptime:50\r\n",
    );
    assert_eq!(
        parse_offer(video.as_bytes()).unwrap().ptime,
        None,
        "another stream's"
    );
}
