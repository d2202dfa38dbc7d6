//! Recording a leg's received audio to a WAV file (8 kHz, mono, 16-bit): each G.711 packet is
//! decoded as it arrives. Written to disk first; the caller references the file from SQL after.
//! Recordings are private: the file is created with mode 0640 and missing directories with
//! 0750 (the process's umask may only take more away).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use audio_codec::{create_decoder, CodecType, Decoder};
use tracing::warn;

type Writer = hound::WavWriter<BufWriter<File>>;

/// One recording in progress.
pub struct Recording {
    pub path: PathBuf,
    /// A std mutex: writes are short and never cross an `.await`.
    inner: Mutex<Option<Inner>>,
    samples: AtomicU64,
}

struct Inner {
    writer: Writer,
    pcmu: Box<dyn Decoder>,
    pcma: Box<dyn Decoder>,
}

impl Recording {
    pub fn create(path: &Path) -> Result<Recording, hound::Error> {
        let file = private_file(path)?;
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::new(BufWriter::new(file), spec)?;
        Ok(Recording {
            path: path.to_path_buf(),
            inner: Mutex::new(Some(Inner {
                writer,
                pcmu: create_decoder(CodecType::PCMU),
                pcma: create_decoder(CodecType::PCMA),
            })),
            samples: AtomicU64::new(0),
        })
    }

    /// Decodes one G.711 payload (PT 0 or 8) into the file; other payload types are skipped.
    pub fn write_g711(&self, pt: u8, payload: &[u8]) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(inner) = guard.as_mut() else { return };
        let pcm = match pt {
            0 => inner.pcmu.decode(payload),
            8 => inner.pcma.decode(payload),
            _ => return,
        };
        for s in &pcm {
            if let Err(e) = inner.writer.write_sample(*s) {
                warn!(path = %self.path.display(), error = %e, "recording write failed; stopping it");
                *guard = None;
                return;
            }
        }
        self.samples.fetch_add(pcm.len() as u64, Ordering::Relaxed);
    }

    /// Length recorded so far.
    pub fn duration_ms(&self) -> i64 {
        (self.samples.load(Ordering::Relaxed) / 8) as i64
    }

    /// Closes the file (header sizes written); later writes are ignored.
    pub fn finish(&self) -> Result<i64, hound::Error> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(inner) = inner {
            inner.writer.finalize()?;
        }
        Ok(self.duration_ms())
    }
}

/// Creates `path` (mode 0640, never replacing a file) and its missing directories (0750).
pub(crate) fn private_file(path: &Path) -> std::io::Result<File> {
    #[cfg(unix)]
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        builder.mode(0o750);
        builder.create(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o640);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_payloads_become_pcm_samples() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vm/1.wav");
        let rec = Recording::create(&path).unwrap();
        let tone: Vec<i16> = (0..160)
            .map(|i| ((i as f32 / 8.0).sin() * 8000.0) as i16)
            .collect();
        let ulaw = audio_codec::create_encoder(CodecType::PCMU).encode(&tone);
        for _ in 0..50 {
            rec.write_g711(0, &ulaw);
        }
        rec.write_g711(101, &[1, 2, 3, 4]);
        assert_eq!(rec.finish().unwrap(), 1000);
        rec.write_g711(0, &ulaw);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path) & 0o600, 0o600, "the owner reads and writes");
            assert_eq!(
                mode(&path) & 0o037,
                0,
                "group at most reads, others nothing"
            );
            assert_eq!(mode(&dir.path().join("vm")) & 0o027, 0);
            assert!(
                Recording::create(&path).is_err(),
                "an existing file is never replaced"
            );
        }
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.spec().sample_rate, 8000);
        let samples: Vec<i16> = reader.into_samples().map(Result::unwrap).collect();
        assert_eq!(samples.len(), 8000);
        assert!(
            samples[..160]
                .iter()
                .zip(&tone)
                .all(|(a, b)| (a - b).abs() < 600),
            "decoded close to the tone"
        );
    }
}
