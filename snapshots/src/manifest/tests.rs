use super::*;

#[test]
fn entry_paths_are_the_few_allowed_places() {
    let cases: &[(&str, Result<Kind, &str>)] = &[
        ("bin/callfleet", Ok(Kind::Binary)),
        ("config/cluster.toml", Ok(Kind::ClusterConfig)),
        ("sounds/moh/01-harbour.wav", Ok(Kind::Moh)),
        ("sounds/prompts/all-busy.wav", Ok(Kind::Prompt)),
        ("sounds/prompts/n20.wav", Ok(Kind::Prompt)),
        ("/bin/callfleet", Err("absolute")),
        ("/etc/passwd", Err("absolute")),
        ("../bin/callfleet", Err("climbs")),
        ("sounds/moh/../../../etc/passwd", Err("climbs")),
        ("sounds/moh/..", Err("climbs")),
        ("bin//callfleet", Err("clean")),
        ("./bin/callfleet", Err("clean")),
        ("bin/callfleet/", Err("clean")),
        ("", Err("clean")),
        ("sounds\\moh\\a.wav", Err("clean")),
        ("sounds/moh/a\n.wav", Err("clean")),
        ("bin/sh", Err("not one")),
        ("etc/callfleet/callfleet.toml", Err("not one")),
        ("sounds/moh/a.mp3", Err("not one")),
        ("sounds/moh/.hidden.wav", Err("not one")),
        ("sounds/moh/calm/a.wav", Ok(Kind::Moh)),
        ("sounds/moh/.calm/a.wav", Err("not one")),
        ("sounds/moh/calm/sub/a.wav", Err("not one")),
        ("sounds/moh/calm/", Err("clean")),
        ("sounds/moh/calm/.wav", Err("not one")),
        ("sounds/prompts/sub/a.wav", Err("not one")),
        ("sounds/moh/.wav", Err("not one")),
        ("sounds/prompts/a b.wav", Err("not one")),
    ];
    for (text, want) in cases {
        let got = EntryPath::parse(text);
        match (want, &got) {
            (Ok(kind), Ok(path)) => {
                assert_eq!(path.kind(), *kind, "{text}");
                assert_eq!(path.as_str(), *text);
            }
            (Err(words), Err(e)) => assert!(e.to_string().contains(words), "{text}: {e}"),
            _ => panic!("{text}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn sound_names_are_checked_when_packing_too() {
    assert_eq!(
        EntryPath::moh("01-harbour.wav").map(|p| p.as_str().to_owned()),
        Ok("sounds/moh/01-harbour.wav".to_owned())
    );
    assert_eq!(
        EntryPath::prompt("beep.wav").map(|p| p.kind()),
        Ok(Kind::Prompt)
    );
    for bad in [
        "../x.wav",
        "a/b.wav",
        ".x.wav",
        "-x.wav",
        "x.WAV",
        "x",
        &"a".repeat(120),
    ] {
        assert!(EntryPath::moh(bad).is_err(), "{bad}");
    }
    assert_eq!(
        EntryPath::moh("a.wav").map(|p| p.file_name().to_owned()),
        Ok("a.wav".into())
    );
}

fn digest(byte: u8) -> Digest {
    Digest([byte; 32])
}

fn entry(path: &str, size: u64) -> Entry {
    Entry {
        path: EntryPath::parse(path).expect("valid path"),
        size,
        sha256: digest(7),
    }
}

fn minimal() -> Vec<Entry> {
    vec![entry("bin/callfleet", 10), entry("config/cluster.toml", 5)]
}

#[test]
fn a_manifest_round_trips_through_json() {
    let mut entries = minimal();
    entries.push(entry("sounds/moh/a.wav", 44));
    let manifest = Manifest::new("0.1.0", 1_700_000_000_123, entries).expect("manifest");
    let back = Manifest::parse(&manifest.to_json()).expect("parse");
    assert_eq!(back, manifest);
    assert_eq!(back.format, FORMAT);
    assert_eq!(back.total_size(), 59);
    assert_eq!(back.get("sounds/moh/a.wav").map(|e| e.size), Some(44));
    let text = String::from_utf8(manifest.to_json()).expect("utf-8");
    assert!(
        text.contains(&format!("\"sha256\": \"{}\"", "07".repeat(32))),
        "{text}"
    );
}

#[test]
fn a_manifest_must_hold_the_binary_and_the_cluster_settings_once() {
    let only_bin = vec![entry("bin/callfleet", 1)];
    let err = Manifest::new("0.1.0", 0, only_bin).expect_err("no config");
    assert!(
        matches!(
            err,
            ManifestError::Required {
                path: "config/cluster.toml"
            }
        ),
        "{err}"
    );
    let mut twice = minimal();
    twice.push(entry("bin/callfleet", 3));
    let err = Manifest::new("0.1.0", 0, twice).expect_err("duplicate");
    assert!(matches!(err, ManifestError::Duplicate { .. }), "{err}");
    let mut big_config = minimal();
    big_config[1].size = MAX_CONFIG_BYTES + 1;
    assert!(matches!(
        Manifest::new("0.1.0", 0, big_config),
        Err(ManifestError::EntryTooLarge { .. })
    ));
    let mut huge = minimal();
    huge[0].size = MAX_TOTAL_BYTES;
    huge[1].size = 1;
    assert!(matches!(
        Manifest::new("0.1.0", 0, huge),
        Err(ManifestError::TooLarge)
    ));
    assert!(matches!(
        Manifest::new("", 0, minimal()),
        Err(ManifestError::BadVersion { .. })
    ));
}

#[test]
fn bad_manifests_are_refused_with_their_reason() {
    let hash = "ab".repeat(32);
    let with = |format: u32, path: &str, sha: &str, extra: &str| {
        format!(
            r#"{{"format": {format}, "callfleet_version": "0.1.0", "created_at_ms": 1{extra},
               "entries": [{{"path": "{path}", "size": 1, "sha256": "{sha}"}},
                           {{"path": "config/cluster.toml", "size": 1, "sha256": "{hash}"}}]}}"#
        )
    };
    let cases: Vec<(String, &str)> = vec![
        (with(2, "bin/callfleet", &hash, ""), "format 2"),
        (
            with(2, "bin/callfleet", &hash, r#", "new_field": 1"#),
            "format 2",
        ),
        (
            with(1, "bin/callfleet", &hash, r#", "surprise": 1"#),
            "unknown field",
        ),
        (with(1, "../bin/callfleet", &hash, ""), "climbs"),
        (with(1, "/usr/local/bin/callfleet", &hash, ""), "absolute"),
        (with(1, "bin/callfleet", "abc", ""), "64 hex"),
        (with(1, "bin/callfleet", &"zz".repeat(32), ""), "64 hex"),
        ("not json".to_owned(), "not valid JSON"),
        ("{}".to_owned(), "not valid JSON"),
    ];
    for (text, words) in cases {
        let err = Manifest::parse(text.as_bytes()).expect_err(&text);
        assert!(err.to_string().contains(words), "{text}: {err}");
    }
    let good = with(1, "bin/callfleet", &hash, "");
    assert!(Manifest::parse(good.as_bytes()).is_ok(), "{good}");
}

#[test]
fn music_classes_are_folders_under_the_music() {
    let p = EntryPath::moh_class("calm", "a.wav").expect("a class file");
    assert_eq!(
        (p.as_str(), p.moh_relative()),
        ("sounds/moh/calm/a.wav", Some("calm/a.wav"))
    );
    assert_eq!(
        EntryPath::moh("a.wav").expect("moh").moh_relative(),
        Some("a.wav")
    );
    assert_eq!(EntryPath::binary().moh_relative(), None);
    for (class, name) in [
        ("..", "a.wav"),
        (".x", "a.wav"),
        ("a/b", "a.wav"),
        ("", "a.wav"),
        ("calm", "../a.wav"),
    ] {
        assert!(EntryPath::moh_class(class, name).is_err(), "{class}/{name}");
    }
}
