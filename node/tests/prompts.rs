//! Prompts uploaded on the admin pages, end to end: an admin uploads a 44.1 kHz stereo WAV as
//! `welcome` through the upload form (multipart, the CSRF token in the action's query), an IVR
//! menu names it, and a caller dialling the menu's number hears its tone (900 Hz) at 8 kHz; an
//! MP3 (made by sox, 22.05 kHz) uploaded under the same name replaces it on the node's next
//! call (500 Hz). Refusals: a file that is not audio, a bad name, an upload without the CSRF
//! token, deleting a prompt a menu uses. One node on SQLite; addresses in 127.0.83.0/24.

mod support;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use callfleet_store::{DestKind, Destination, IvrMenu, Number};
use support::audio::tone_share;
use support::http::exchange_bytes;
use support::queue::Db;
use support::session::Session;
use support::uac::Uac;
use support::{serial, workdir, NodeProc, NodeSpec};

const NODE_IP: &str = "127.0.83.1";
const CALLER_IP: &str = "127.0.83.20";

/// A WAV of a `freq` Hz tone, `secs` long, at `rate` in `channels`.
fn tone_wav(rate: u32, channels: u16, freq: f32, secs: f32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).expect("WAV header");
    for i in 0..(rate as f32 * secs) as u32 {
        let s = (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 10_000.0;
        for _ in 0..channels {
            w.write_sample(s as i16).expect("sample");
        }
    }
    w.finalize().expect("WAV end");
    out.into_inner()
}

/// An MP3 of a `freq` Hz tone made by sox (libsox-fmt-mp3, installed by scripts/test.sh).
fn tone_mp3(dir: &Path, freq: u32) -> Vec<u8> {
    let path = dir.join(format!("tone-{freq}.mp3"));
    let status = Command::new("sox")
        .args(["-n", "-r", "22050", "-c", "1"])
        .arg(&path)
        .args(["synth", "2", "sine", &freq.to_string(), "vol", "0.3"])
        .status()
        .expect("sox is installed (scripts/test.sh installs it)");
    assert!(status.success(), "sox could not write an MP3");
    std::fs::read(&path).expect("read the MP3")
}

/// Calls the menu's number; what the caller heard in the prompt's first 1.5 s.
fn heard(node: &NodeProc, call_id: &str) -> Vec<i16> {
    let mut uac = Uac::new(CALLER_IP, node.sip);
    let ok = uac
        .answered("0800", call_id, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("the number answers:\n{}", node.log_text()));
    let heard = uac.talk(Uac::media_addr(&ok), 1800.0, Duration::from_millis(1_600));
    uac.in_dialog("BYE", call_id, &ok, None);
    heard
}

#[test]
fn an_uploaded_wav_or_mp3_is_what_the_menu_plays() {
    let _serial = serial();
    let dir = workdir("prompts");
    let db_url = format!("sqlite://{}", dir.join("cluster.db").display());
    let node = NodeProc::start(
        &dir,
        NodeSpec {
            name: "prompts",
            role: "main",
            ip: NODE_IP,
            db: &db_url,
            capacity: 20,
            extra: "",
        },
    );
    let db = Db::connect(&db_url);
    support::user_add(&node, "ada", "admin", "ada-password", None);
    let mut ada = Session::login(node.http, "ada", "ada-password").expect("admin login");
    ada.fetch_csrf();

    // Refusals first: nothing is stored by them.
    let (status, _, body) = ada.upload(
        "/admin/prompts",
        &[("name", "welcome")],
        "notes.wav",
        b"not audio",
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("not a WAV or MP3"), "{body}");
    let wav = tone_wav(44_100, 2, 900.0, 2.0);
    let (status, _, body) = ada.upload("/admin/prompts", &[("name", "../x")], "a.wav", &wav);
    assert_eq!(status, 422, "{body}");
    let (status, _, _) = exchange_bytes(
        node.http,
        &format!(
            "POST /admin/prompts HTTP/1.0\r\nCookie: {}\r\nContent-Type: multipart/form-data; boundary=b",
            ada.cookie
        ),
        b"--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nwelcome\r\n--b--\r\n",
    );
    assert_eq!(status, 403, "an upload without the CSRF token");
    assert_eq!(db.block(db.store.prompts()).expect("prompts"), vec![]);

    // The WAV: stored as 8 kHz mono, listed with a player.
    let (status, location, body) = ada.upload(
        "/admin/prompts",
        &[("name", "welcome")],
        "welcome.wav",
        &wav,
    );
    assert_eq!(
        (status, location.as_str()),
        (303, "/admin/prompts"),
        "{body}"
    );
    let (status, page) = ada.get("/admin/prompts");
    assert_eq!(status, 200);
    assert!(page.contains("data-testid=\"prompt-welcome\""), "{page}");
    assert!(page.contains("2.0 s"), "{page}");
    let (status, stored) = ada.get_bytes("/admin/prompts/welcome/audio");
    assert_eq!(status, 200);
    let spec = hound::WavReader::new(Cursor::new(&stored))
        .expect("a WAV")
        .spec();
    assert_eq!((spec.sample_rate, spec.channels), (8_000, 1));

    let menu = |prompt: &str| IvrMenu {
        name: "main".into(),
        prompt: prompt.into(),
        timeout_ms: 3_000,
        repeats: 2,
        invalid: Destination::new(DestKind::Message, "goodbye"),
        choices: BTreeMap::new(),
        moh_class: "default".into(),
        created_at_ms: 0,
    };
    db.block(db.store.upsert_menu(&menu("welcome")))
        .expect("menu");
    db.block(db.store.upsert_number(&Number {
        number: "0800".into(),
        open: Destination::new(DestKind::Menu, "main"),
        closed: Destination::new(DestKind::Menu, "main"),
        time_zone: "UTC".into(),
        open_hours: String::new(),
        holidays: String::new(),
        created_at_ms: 0,
    }))
    .expect("number");
    db.wait_reloaded(&node);
    let first = heard(&node, "prompt-1");
    let (w900, w500) = (
        tone_share(&first, 900.0, 8000),
        tone_share(&first, 500.0, 8000),
    );
    eprintln!("WAV upload: 900 Hz {w900:.2}, 500 Hz {w500:.2}");
    assert!(
        w900 > 0.5 && w500 < 0.05,
        "the caller hears the uploaded WAV: {w900:.2} {w500:.2}"
    );

    // The MP3 under the same name replaces it from the next call on.
    let mp3 = tone_mp3(&dir, 500);
    let (status, _, body) = ada.upload(
        "/admin/prompts",
        &[("name", "welcome")],
        "welcome.mp3",
        &mp3,
    );
    assert_eq!(status, 303, "{body}");
    db.wait_reloaded(&node);
    let second = heard(&node, "prompt-2");
    let (m900, m500) = (
        tone_share(&second, 900.0, 8000),
        tone_share(&second, 500.0, 8000),
    );
    eprintln!("MP3 upload: 900 Hz {m900:.2}, 500 Hz {m500:.2}");
    assert!(
        m500 > 0.5 && m900 < 0.05,
        "the caller hears the new MP3: {m900:.2} {m500:.2}"
    );

    // A prompt a menu uses cannot be deleted; once the menu names another, it can.
    let (status, _, body) = ada.post("/admin/prompts/welcome/delete", "");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("menu main"), "{body}");
    db.block(db.store.upsert_menu(&menu("goodbye")))
        .expect("menu");
    let (status, _, body) = ada.post("/admin/prompts/welcome/delete", "");
    assert_eq!(status, 303, "{body}");
    assert_eq!(db.block(db.store.prompts()).expect("prompts"), vec![]);
}
