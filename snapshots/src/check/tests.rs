use super::*;

fn manifest() -> Manifest {
    let entry = |path: &str, size: u64, byte: u8| Entry {
        path: EntryPath::parse(path).expect("path"),
        size,
        sha256: Digest([byte; 32]),
    };
    Manifest::new(
        "0.1.0",
        0,
        vec![
            entry("bin/callfleet", 100, 1),
            entry("config/cluster.toml", 10, 2),
            entry("sounds/moh/a.wav", 44, 3),
        ],
    )
    .expect("manifest")
}

#[test]
fn entries_are_admitted_once_each_as_listed() {
    let manifest = manifest();
    let mut checker = Checker::new(&manifest);
    // (name, type, size announced, expected error words or None)
    let steps: &[(&str, EntryType, u64, Option<&str>)] = &[
        ("sounds/moh/a.wav", EntryType::Regular, 44, None),
        (
            "sounds/moh/a.wav",
            EntryType::Regular,
            44,
            Some("appears twice"),
        ),
        (
            "sounds/moh/b.wav",
            EntryType::Regular,
            44,
            Some("not listed"),
        ),
        (
            "bin/callfleet",
            EntryType::Symlink,
            0,
            Some("symbolic link"),
        ),
        ("bin/callfleet", EntryType::Regular, 100, None),
        (
            "config/cluster.toml",
            EntryType::Regular,
            11,
            Some("holds 11 bytes"),
        ),
        (
            "../config/cluster.toml",
            EntryType::Regular,
            10,
            Some("climbs out"),
        ),
        (
            "sounds/prompts",
            EntryType::Directory,
            0,
            Some("not one a snapshot holds"),
        ),
    ];
    for (name, kind, size, want) in steps {
        let got = checker.admit(name, *kind, *size);
        match (want, got) {
            (None, Ok(entry)) => assert_eq!(entry.path.as_str(), *name),
            (Some(words), Err(e)) => assert!(e.to_string().contains(words), "{name}: {e}"),
            (want, got) => panic!("{name}: want {want:?}, got {got:?}"),
        }
    }
    // A refused entry is not counted as delivered (a reader stops at the first refusal
    // anyway); the config was never admitted.
    let err = checker.finish().expect_err("config missing");
    assert_eq!(
        err.to_string(),
        "entries listed in the manifest are missing from the archive: config/cluster.toml"
    );
}

#[test]
fn content_must_be_whole_and_match_its_digest() {
    let manifest = manifest();
    let entry = manifest.get("sounds/moh/a.wav").expect("entry");
    assert!(Checker::content(entry, 44, Digest([3; 32])).is_ok());
    let short = Checker::content(entry, 20, Digest([3; 32])).expect_err("short");
    assert!(
        short
            .to_string()
            .contains("truncated: entry sounds/moh/a.wav ends after 20 of its 44 bytes"),
        "{short}"
    );
    let wrong = Checker::content(entry, 44, Digest([9; 32])).expect_err("digest");
    assert!(
        wrong.to_string().contains("does not match its checksum"),
        "{wrong}"
    );
}
