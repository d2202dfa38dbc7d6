use super::*;

fn write_wav(path: &Path, rate: u32, channels: u16, samples: usize) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for i in 0..samples {
        w.write_sample(((i % 100) as i16) * 100)
            .expect("write sample");
    }
    w.finalize().expect("finalize");
}

#[test]
fn loads_good_files_and_skips_bad_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_wav(&dir.path().join("a.wav"), 8000, 1, 8000);
    write_wav(&dir.path().join("b.wav"), 16000, 1, 8000);
    write_wav(&dir.path().join("c.wav"), 8000, 2, 8000);
    std::fs::write(dir.path().join("d.wav"), b"not a wav").expect("write");
    let lib = Library::load(dir.path()).default_class();
    assert_eq!(lib.len(), 1);
    assert_eq!(lib.track(0).name, "a");
    assert_eq!(lib.track(0).frames(), 50);
}

#[test]
fn sub_directories_are_classes_and_unknown_ones_play_the_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_wav(&root.join("main.wav"), 8000, 1, 8000);
    for (class, files) in [
        ("calm", &["b.wav", "a.wav"][..]),
        ("broken", &["x.wav"][..]),
        ("bad name", &["a.wav"][..]),
        ("default", &["a.wav"][..]),
        ("empty", &[][..]),
    ] {
        std::fs::create_dir(root.join(class)).expect("class dir");
        for f in files {
            let rate = if class == "broken" { 16000 } else { 8000 };
            write_wav(&root.join(class).join(f), rate, 1, 8000);
        }
    }
    let lib = Library::load(root);
    assert_eq!(lib.class_names().collect::<Vec<_>>(), ["calm"]);
    let calm = lib.class("calm");
    assert_eq!((calm.len(), calm.track(0).name.as_str()), (2, "a"));
    assert_eq!(calm.track(3).name, "b");
    for name in [
        "default", "broken", "empty", "bad name", "nope", "", "../calm",
    ] {
        let p = lib.class(name);
        assert_eq!((p.len(), p.track(0).name.as_str()), (1, "main"), "{name:?}");
    }
}

#[test]
fn empty_dir_falls_back_to_builtin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = Library::load(dir.path()).default_class();
    assert_eq!(lib.track(3).name, "built-in");
    assert!(lib.track(0).frames() > 500);
}

#[test]
fn frames_wrap_and_laws_differ() {
    let t = Track::from_samples("t".into(), builtin_tune());
    let n = t.frames();
    assert_eq!(t.frame(Codec::Pcmu, 3), t.frame(Codec::Pcmu, n + 3));
    assert_eq!(t.frame(Codec::Pcma, 0).len(), FRAME);
    assert_ne!(t.frame(Codec::Pcmu, 10), t.frame(Codec::Pcma, 10));
}
