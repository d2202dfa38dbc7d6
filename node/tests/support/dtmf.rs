//! RFC 4733 key presses for SIPp callers: a pcap of one telephone-event that
//! `tests/peers/sipp/dtmf-call.xml` plays after the answer (`play_pcap_audio` of `keys.pcap`).

/// RFC 4733 payload type offered by dtmf-call.xml.
pub const EVENT_PT: u8 = 101;

/// A pcap (Ethernet, IPv4, UDP) of one RFC 4733 key press: five packets 20 ms apart with a
/// growing duration (the first with the marker bit), then three end packets, all with one
/// RTP timestamp. SIPp rewrites addresses and ports when it plays it.
pub fn event_pcap(event: u8) -> Vec<u8> {
    let mut out = Vec::new();
    // Global header: magic, version 2.4, zone, accuracy, snaplen, Ethernet.
    out.extend(0xa1b2_c3d4u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend(0i32.to_le_bytes());
    out.extend(0u32.to_le_bytes());
    out.extend(65_535u32.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    let steps: Vec<(bool, u16)> = (1..=5u16)
        .map(|i| (false, i * 160))
        .chain((0..3).map(|_| (true, 960)))
        .collect();
    for (i, (end, duration)) in steps.into_iter().enumerate() {
        let i = u16::try_from(i).expect("few packets");
        let mut rtp = vec![0x80, if i == 0 { 0x80 | EVENT_PT } else { EVENT_PT }];
        rtp.extend((1000 + i).to_be_bytes()); // sequence number
        rtp.extend(8_000u32.to_be_bytes()); // one timestamp for the whole event
        rtp.extend(0x1234_5678u32.to_be_bytes()); // SSRC
        rtp.push(event);
        rtp.push(if end { 0x80 | 10 } else { 10 }); // E bit, volume -10 dBm0
        rtp.extend(duration.to_be_bytes());
        let udp_len = u16::try_from(8 + rtp.len()).expect("small");
        let mut frame = vec![0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00];
        frame.extend([0x45, 0]);
        frame.extend((20 + udp_len).to_be_bytes());
        frame.extend([0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2]);
        frame.extend(6000u16.to_be_bytes());
        frame.extend(6002u16.to_be_bytes());
        frame.extend(udp_len.to_be_bytes());
        frame.extend([0, 0]);
        frame.extend(rtp);
        let usec = u32::from(i) * 20_000;
        out.extend((usec / 1_000_000).to_le_bytes());
        out.extend((usec % 1_000_000).to_le_bytes());
        let len = u32::try_from(frame.len()).expect("small");
        out.extend(len.to_le_bytes());
        out.extend(len.to_le_bytes());
        out.extend(frame);
    }
    out
}

/// The RFC 4733 event code of a key.
pub fn key(key: char) -> u8 {
    match key {
        '0'..='9' => key as u8 - b'0',
        '*' => 10,
        '#' => 11,
        _ => panic!("not a key: {key}"),
    }
}

/// RFC 4733 event 16 (flash): a telephone-event that is no key.
pub const FLASH: u8 = 16;
