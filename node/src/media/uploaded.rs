//! Prompts uploaded on the admin pages (table `prompts`, already 8 kHz mono 16-bit WAV): the
//! configuration cache lists their names and upload times; the audio is read from the database
//! the first time a call plays an upload, and kept in memory until a newer upload of that name
//! replaces it or the name leaves the list.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex};

use callfleet_store::{Store, StoreError};

use super::moh::Track;

/// Why an uploaded prompt cannot be played.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("reading the prompt from the database failed: {0}")]
    Store(#[from] StoreError),
    #[error("the prompt is no longer in the database")]
    Gone,
    #[error("the stored prompt is not an 8 kHz mono 16-bit WAV: {0}")]
    Format(String),
}

/// Uploaded prompts' audio by name, with the upload each is from.
#[derive(Debug, Default)]
pub struct Uploaded {
    /// A std mutex: map operations only, never held across an `.await`.
    clips: Mutex<HashMap<String, (i64, Arc<Track>)>>,
}

impl Uploaded {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, Arc<Track>)>> {
        self.clips.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Prompt `name` as uploaded at `version` (the configuration cache's upload time): from
    /// memory, or read once from the database. `listed` is every uploaded name now; clips of
    /// names no longer listed are dropped.
    pub async fn get(
        &self,
        store: &Store,
        name: &str,
        version: i64,
        listed: impl Fn(&str) -> bool,
    ) -> Result<Arc<Track>, UploadError> {
        if let Some((v, clip)) = self.lock().get(name) {
            if *v >= version {
                return Ok(clip.clone());
            }
        }
        let (wav, uploaded) = store.prompt_wav(name).await?.ok_or(UploadError::Gone)?;
        let clip = Arc::new(track(name, &wav)?);
        let mut clips = self.lock();
        clips.retain(|n, _| listed(n));
        clips.insert(name.to_owned(), (uploaded, clip.clone()));
        Ok(clip)
    }
}

/// The track of a stored prompt.
pub fn track(name: &str, wav: &[u8]) -> Result<Track, UploadError> {
    let format = |e: hound::Error| UploadError::Format(e.to_string());
    let reader = hound::WavReader::new(Cursor::new(wav)).map_err(format)?;
    let spec = reader.spec();
    if (spec.sample_rate, spec.channels, spec.bits_per_sample) != (8000, 1, 16)
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(UploadError::Format(format!(
            "{} Hz, {} channels, {} bits",
            spec.sample_rate, spec.channels, spec.bits_per_sample
        )));
    }
    let samples: Vec<i16> = reader
        .into_samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(format)?;
    Ok(Track::from_samples(name.to_owned(), samples))
}
