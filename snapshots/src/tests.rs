//! Round trips, and every way a snapshot file can be wrong: tampered, truncated, with entries
//! missing, extra, doubled, escaping or not regular files, with data after its end.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::*;

/// A binary of a few hundred KiB that compresses (repeated text with a counter).
fn fake_binary() -> Vec<u8> {
    (0..40_000u32)
        .flat_map(|i| format!("ELF{i:08}").into_bytes())
        .collect()
}

fn inputs(dir: &Path) -> Vec<Input> {
    let bin = dir.join("callfleet");
    std::fs::write(&bin, fake_binary()).expect("write binary");
    vec![
        Input {
            path: EntryPath::binary(),
            source: Source::File(bin),
        },
        Input {
            path: EntryPath::cluster_config(),
            source: Source::Bytes(b"[database]\nurl = \"postgres://db/cf\"\n".to_vec()),
        },
        Input {
            path: EntryPath::moh("01-harbour.wav").expect("name"),
            source: Source::Bytes(vec![1u8; 3000]),
        },
        Input {
            path: EntryPath::prompt("all-busy.wav").expect("name"),
            source: Source::Bytes(vec![2u8; 700]),
        },
    ]
}

fn snapshot(dir: &Path) -> (Manifest, Vec<u8>) {
    let mut progressed = 0u64;
    let (manifest, bytes) = pack(
        &inputs(dir),
        "0.1.0",
        1_700_000_000_000,
        Vec::new(),
        DEFAULT_LEVEL,
        |n| progressed += n,
    )
    .expect("pack");
    assert_eq!(
        progressed,
        2 * manifest.total_size(),
        "both passes report progress"
    );
    (manifest, bytes)
}

fn decompress(bytes: &[u8]) -> Vec<u8> {
    zstd::decode_all(bytes).expect("decompress")
}

fn compress(tar: &[u8]) -> Vec<u8> {
    let mut encoder = zstd::Encoder::new(Vec::new(), 3).expect("encoder");
    encoder.include_checksum(true).expect("checksum flag");
    encoder.write_all(tar).expect("compress");
    encoder.finish().expect("finish")
}

fn verify_bytes(bytes: &[u8]) -> Result<Verified, SnapshotError> {
    verify(bytes, |_| {})
}

#[test]
fn a_snapshot_round_trips_and_unpacks_where_it_is_placed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (manifest, bytes) = snapshot(dir.path());
    assert!(
        bytes.len() < fake_binary().len() / 4,
        "compressed: {}",
        bytes.len()
    );
    let mut read = 0u64;
    let verified = verify(bytes.as_slice(), |n| read += n).expect("verify");
    assert_eq!(read, bytes.len() as u64);
    assert_eq!(verified.manifest, manifest);
    assert!(verified.cluster_config.contains("postgres://db/cf"));

    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let placed = unpack(
        bytes.as_slice(),
        |_| {},
        |e| (e.path.kind() != Kind::ClusterConfig).then(|| out.join(e.path.file_name())),
    )
    .expect("unpack");
    let names: Vec<&str> = placed.iter().map(|p| p.entry.as_str()).collect();
    assert_eq!(
        names,
        [
            "bin/callfleet",
            "sounds/moh/01-harbour.wav",
            "sounds/prompts/all-busy.wav"
        ]
    );
    assert_eq!(
        std::fs::read(out.join("callfleet")).expect("bin"),
        fake_binary()
    );
    assert_eq!(
        std::fs::read(out.join("all-busy.wav")).expect("wav"),
        vec![2u8; 700]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: PathBuf| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(out.join("callfleet")), 0o755);
        assert_eq!(mode(out.join("01-harbour.wav")), 0o644);
    }
}

/// The offset of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

#[test]
fn one_byte_flipped_in_the_binary_is_refused_by_its_checksum() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, bytes) = snapshot(dir.path());
    let mut tar = decompress(&bytes);
    let at = find(&tar, b"ELF00012345");
    tar[at + 3] ^= 0x01;
    let err = verify_bytes(&compress(&tar)).expect_err("tampered");
    assert!(
        matches!(&err, SnapshotError::Checksum { path, .. } if path == "bin/callfleet"),
        "{err}"
    );
    assert!(
        err.to_string().contains("does not match its checksum"),
        "{err}"
    );
}

#[test]
fn a_flipped_byte_in_the_compressed_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, bytes) = snapshot(dir.path());
    for at in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 6] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x40;
        assert!(
            verify_bytes(&bad).is_err(),
            "flipped byte {at} of {}",
            bytes.len()
        );
    }
}

#[test]
fn a_truncated_snapshot_is_refused_wherever_it_is_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, bytes) = snapshot(dir.path());
    let step = (bytes.len() / 40).max(1);
    let cuts = (0..bytes.len())
        .step_by(step)
        .chain([bytes.len() - 1, bytes.len() - 4]);
    for cut in cuts {
        let err = verify_bytes(&bytes[..cut]).expect_err("truncated");
        let text = err.to_string();
        assert!(
            text.contains("truncated") || text.contains("missing") || text.contains("manifest"),
            "cut at {cut}: {text}"
        );
    }
    // Cut at a tar block boundary inside an intact zstd stream: entries go missing.
    let tar = decompress(&bytes);
    let at = find(&tar, b"ELF00000000") + 512 * 4;
    let err = verify_bytes(&compress(&tar[..at - at % 512])).expect_err("short tar");
    assert!(
        err.to_string().contains("truncated") || err.to_string().contains("missing"),
        "{err}"
    );
}

#[test]
fn unpack_removes_what_it_wrote_when_the_file_is_bad() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, bytes) = snapshot(dir.path());
    let mut tar = decompress(&bytes);
    // Damage the last entry, so the binary and the music are written before it fails.
    let pos = find(&tar, &[2u8; 700]) + 350;
    tar[pos] = 3;
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let err = unpack(
        compress(&tar).as_slice(),
        |_| {},
        |e| Some(out.join(e.path.file_name())),
    )
    .expect_err("damaged");
    assert!(matches!(err, SnapshotError::Checksum { .. }), "{err}");
    let left: Vec<_> = std::fs::read_dir(&out).expect("ls").collect();
    assert!(left.is_empty(), "nothing left behind: {left:?}");
}

/// A raw tar entry with any name and type, which `tar::Builder` would refuse to write.
fn raw_entry(name: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    {
        let gnu = header.as_gnu_mut().expect("gnu header");
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
    }
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// A tar of the manifest for `entries` followed by `raw` entries, then the end blocks.
fn archive(manifest: &Manifest, raw: &[Vec<u8>]) -> Vec<u8> {
    let json = manifest.to_json();
    let mut tar = raw_entry(MANIFEST_PATH, tar::EntryType::Regular, &json, None);
    for entry in raw {
        tar.extend_from_slice(entry);
    }
    tar.extend_from_slice(&[0u8; 1024]);
    compress(&tar)
}

fn sha(data: &[u8]) -> Digest {
    use sha2::Digest as _;
    Digest(sha2::Sha256::digest(data).into())
}

fn listed(path: &str, data: &[u8]) -> Entry {
    Entry {
        path: EntryPath::parse(path).expect("path"),
        size: data.len() as u64,
        sha256: sha(data),
    }
}

#[test]
fn archives_that_do_not_match_their_manifest_are_refused() {
    let (bin, conf, wav) = (
        b"binary".as_slice(),
        b"[x]\n".as_slice(),
        b"RIFF".as_slice(),
    );
    let manifest = Manifest::new(
        "0.1.0",
        0,
        vec![
            listed("bin/callfleet", bin),
            listed("config/cluster.toml", conf),
        ],
    )
    .expect("manifest");
    let file = |name: &str, data: &[u8]| raw_entry(name, tar::EntryType::Regular, data, None);
    let good = [
        file("bin/callfleet", bin),
        file("config/cluster.toml", conf),
    ];
    assert!(verify_bytes(&archive(&manifest, &good)).is_ok());
    let cases: Vec<(Vec<Vec<u8>>, &str)> = vec![
        (
            vec![file("bin/callfleet", bin)],
            "missing from the archive: config/cluster.toml",
        ),
        (
            vec![
                good[0].clone(),
                good[1].clone(),
                file("sounds/moh/x.wav", wav),
            ],
            "not listed in the manifest",
        ),
        (
            vec![good[0].clone(), good[0].clone(), good[1].clone()],
            "appears twice",
        ),
        (
            vec![
                good[0].clone(),
                good[1].clone(),
                file("../../etc/cron.d/x", wav),
            ],
            "climbs out",
        ),
        (
            vec![good[0].clone(), good[1].clone(), file("/etc/passwd", wav)],
            "absolute",
        ),
        (
            vec![
                raw_entry(
                    "bin/callfleet",
                    tar::EntryType::Symlink,
                    b"",
                    Some("/bin/sh"),
                ),
                good[1].clone(),
            ],
            "symbolic link",
        ),
        (
            vec![
                raw_entry(
                    "bin/callfleet",
                    tar::EntryType::Link,
                    b"",
                    Some("config/cluster.toml"),
                ),
                good[1].clone(),
            ],
            "hard link",
        ),
        (
            vec![
                raw_entry("bin", tar::EntryType::Directory, b"", None),
                good[0].clone(),
            ],
            "not one a snapshot holds",
        ),
        (
            vec![file("bin/callfleet", b"binar"), good[1].clone()],
            "holds 5 bytes",
        ),
        (
            vec![file("bin/callfleet", b"BINARY"), good[1].clone()],
            "checksum",
        ),
    ];
    for (entries, words) in cases {
        let err = verify_bytes(&archive(&manifest, &entries)).expect_err(words);
        assert!(err.to_string().contains(words), "want {words:?}: {err}");
    }
}

#[test]
fn the_manifest_must_come_first_and_nothing_may_follow_the_archive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, bytes) = snapshot(dir.path());
    let tar = decompress(&bytes);
    // Data after the end-of-archive blocks, inside the zstd frame.
    let mut trailing = tar.clone();
    trailing.extend_from_slice(b"surprise");
    let err = verify_bytes(&compress(&trailing)).expect_err("trailing");
    assert!(matches!(err, SnapshotError::TrailingData), "{err}");
    // Garbage after the zstd frame.
    let mut after = bytes.clone();
    after.extend_from_slice(b"garbage after the frame");
    assert!(verify_bytes(&after).is_err());
    // A tar without the manifest first.
    let wav = raw_entry("sounds/moh/a.wav", tar::EntryType::Regular, b"x", None);
    let err = verify_bytes(&compress(&[wav, tar].concat())).expect_err("no manifest first");
    assert!(matches!(err, SnapshotError::NoManifest), "{err}");
    // Not zstd at all, and empty.
    assert!(matches!(
        verify_bytes(b"hello"),
        Err(SnapshotError::Unreadable { .. })
    ));
    assert!(verify_bytes(b"").is_err());
}

#[test]
fn an_input_that_changes_while_packing_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs = inputs(dir.path());
    let manifest = manifest_for(&inputs, "0.1.0", 0, |_| {}).expect("manifest");
    let bin = dir.path().join("callfleet");
    let mut changed = fake_binary();
    changed[100] ^= 1;
    std::fs::write(&bin, &changed).expect("rewrite");
    let err = write(&manifest, &inputs, Vec::new(), 1, |_| {}).expect_err("changed");
    assert!(matches!(err, SnapshotError::InputChanged { .. }), "{err}");
    for len in [changed.len() - 10, changed.len() + 10] {
        std::fs::write(&bin, vec![0u8; len]).expect("resize");
        let err = write(&manifest, &inputs, Vec::new(), 1, |_| {}).expect_err("resized");
        assert!(
            matches!(err, SnapshotError::InputChanged { .. }),
            "{len}: {err}"
        );
    }
}

#[test]
fn the_layout_mirrors_install_sh() {
    let layout = Layout::new("/tmp/r");
    assert_eq!(layout.binary(), Path::new("/tmp/r/usr/local/bin/callfleet"));
    assert_eq!(
        layout.config(),
        Path::new("/tmp/r/etc/callfleet/callfleet.toml")
    );
    let moh = EntryPath::moh("a.wav").expect("name");
    assert_eq!(
        layout.place(&moh),
        Some(PathBuf::from("/tmp/r/usr/share/callfleet/moh/a.wav"))
    );
    let prompt = EntryPath::prompt("beep.wav").expect("name");
    assert_eq!(
        layout.place(&prompt),
        Some(PathBuf::from("/tmp/r/usr/share/callfleet/prompts/beep.wav"))
    );
    assert_eq!(layout.place(&EntryPath::cluster_config()), None);
    assert_eq!(
        layout.pid_file(),
        Path::new("/tmp/r/var/lib/callfleet/callfleet.pid")
    );
    assert_eq!(
        Layout::new("/").binary(),
        Path::new("/usr/local/bin/callfleet")
    );
}
