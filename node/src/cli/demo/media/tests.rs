use super::*;

#[test]
fn a_voice_speaks_in_spurts_of_its_tone() {
    let v = Voice {
        freq: 440.0,
        on_ms: 200,
        off_ms: 100,
        offset_ms: 0,
    };
    // Frames 0..9 = 0..200 ms: tone; 10..14 = 200..300 ms: silence; then again.
    for n in 0..10 {
        assert!(tone_share(&v.frame(n), 440.0) > 0.8, "frame {n}");
    }
    for n in 10..15 {
        assert_eq!(v.frame(n), [0; FRAME], "frame {n}");
    }
    assert!(tone_share(&v.frame(15), 440.0) > 0.8);
    assert!(tone_share(&v.frame(3), 620.0) < 0.05);
    // An offset shifts the cycle: 100 ms in, frames 5..9 are silent.
    let shifted = Voice {
        offset_ms: 100,
        ..v
    };
    assert!(tone_share(&shifted.frame(0), 440.0) > 0.8);
    assert_eq!(shifted.frame(5), [0; FRAME]);
    assert_eq!(Voice::SILENT.frame(7), [0; FRAME]);
}

#[test]
fn heard_counts_frames_per_tone_through_g711() {
    let caller = Voice {
        freq: 440.0,
        on_ms: 1000,
        off_ms: 0,
        offset_ms: 0,
    };
    let agent = Voice {
        freq: 620.0,
        ..caller
    };
    let mut heard = Heard::new(&[440.0, 620.0, 1000.0]);
    for codec in [CodecType::PCMU, CodecType::PCMA] {
        let mut enc = create_encoder(codec);
        let mut dec = create_decoder(codec);
        for n in 0..5 {
            heard.add(&dec.decode(&enc.encode(&caller.frame(n))));
        }
        for n in 0..3 {
            // Both at once, as a listener's mix has them.
            let mix: Vec<i16> = caller
                .frame(n)
                .iter()
                .zip(agent.frame(n))
                .map(|(a, b)| a.saturating_add(b))
                .collect();
            heard.add(&dec.decode(&enc.encode(&mix)));
        }
        heard.add(&dec.decode(&enc.encode(&[0; FRAME])));
    }
    assert_eq!(heard.packets, 18);
    assert_eq!(heard.frames(440.0), 16);
    assert_eq!(heard.frames(620.0), 6);
    assert_eq!(heard.frames(1000.0), 0);
    assert_eq!(heard.frames(300.0), 0);
}
