//! [`PasswordChecks`]: where login passwords are checked. A check needs argon2's memory (19 MiB
//! at the default cost); at most [`LOGIN_SLOTS`] run at once, each on one of as many threads
//! of their own, and each thread keeps its one buffer for every check it runs. Allocated per
//! check instead (as `Argon2::verify_password` does), the 64-byte-aligned 19 MiB blocks are
//! not reused by the allocator: measured on a node, every check left its 19 MiB resident.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::auth::constant_time_eq;

/// Password checks that may run at once on a node.
pub const LOGIN_SLOTS: usize = 4;

struct Job {
    password: String,
    hash: String,
    done: oneshot::Sender<bool>,
    /// Given back when the check ends, whether or not anyone still waits for it.
    _slot: OwnedSemaphorePermit,
}

/// The node's password checkers (threads started on the first login).
#[derive(Debug)]
pub struct PasswordChecks {
    slots: Arc<Semaphore>,
    jobs: OnceLock<Option<Mutex<mpsc::Sender<Job>>>>,
}

impl Default for PasswordChecks {
    fn default() -> Self {
        Self {
            slots: Arc::new(Semaphore::new(LOGIN_SLOTS)),
            jobs: OnceLock::new(),
        }
    }
}

/// A checker slot taken for one login ([`PasswordChecks::reserve`]).
#[derive(Debug)]
pub struct Reserved<'a> {
    checks: &'a PasswordChecks,
    slot: OwnedSemaphorePermit,
}

impl PasswordChecks {
    /// Takes a checker slot: `None` when every one is busy (the caller answers 503 without
    /// looking further).
    pub fn reserve(&self) -> Option<Reserved<'_>> {
        let slot = self.slots.clone().try_acquire_owned().ok()?;
        Some(Reserved { checks: self, slot })
    }
}

impl Reserved<'_> {
    /// Checks `password` against the PHC string `hash` on a checker thread: the outcome to
    /// wait for (a malformed hash, or a checker that failed, never matches). The slot is given
    /// back when the check ends, even if nobody waits for it any more.
    pub fn check(self, password: String, hash: String) -> oneshot::Receiver<bool> {
        let (done, outcome) = oneshot::channel();
        let job = Job {
            password,
            hash,
            done,
            _slot: self.slot,
        };
        if let Some(jobs) = self.checks.jobs.get_or_init(start_checkers) {
            // A send fails only without checkers: the job, and with it `done`, is dropped,
            // which reads as "no match".
            let _ = jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .send(job);
        }
        outcome
    }
}

/// The checker threads, sharing one queue; `None` when not one could start.
fn start_checkers() -> Option<Mutex<mpsc::Sender<Job>>> {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    let mut started = 0;
    for i in 0..LOGIN_SLOTS {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("password-check-{i}"))
            .spawn(move || check_loop(&rx));
        match spawned {
            Ok(_) => started += 1,
            Err(e) => tracing::error!(error = %e, "cannot start a password checker thread"),
        }
    }
    (started > 0).then(|| Mutex::new(tx))
}

/// Checks jobs until the node's state (every sender) is gone, in one buffer of its own.
fn check_loop(rx: &Mutex<mpsc::Receiver<Job>>) {
    let mut memory = Vec::new();
    loop {
        let job = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else { return };
        let ok = verify_in(&job.password, &job.hash, &mut memory);
        drop(job._slot);
        // The login may have been dropped meanwhile: nobody to tell then.
        let _ = job.done.send(ok);
    }
}

/// Most argon2 memory a stored hash may ask for (256 MiB): a hash asking more is refused,
/// not computed.
const MAX_BLOCKS: usize = 256 * 1024;

/// Whether `password` matches the PHC string `phc`, computed in `memory` (grown to what the
/// hash's cost needs, and kept). What `argon2::PasswordVerifier::verify_password` decides; a
/// malformed hash never matches.
pub fn verify_in(password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    let checked = (|| {
        let parsed = PasswordHash::new(phc).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).ok()?;
        let expected = parsed.hash?;
        let mut salt = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
        let blocks = params.block_count();
        if blocks > MAX_BLOCKS {
            return None;
        }
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        let mut out = vec![0u8; expected.len()];
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt,
                &mut out,
                memory.get_mut(..blocks)?,
            )
            .ok()?;
        Some(constant_time_eq(&out, expected.as_bytes()))
    })();
    checked.unwrap_or_else(|| {
        tracing::warn!("stored password hash is malformed or too costly");
        false
    })
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher as _, SaltString};

    use super::*;
    use crate::auth;

    #[tokio::test]
    async fn checks_run_on_a_few_threads_and_beyond_them_the_answer_is_busy() {
        let checks = PasswordChecks::default();
        let hash = auth::hash_password("right").expect("hash");
        let waiting: Vec<_> = (0..LOGIN_SLOTS)
            .map(|_| {
                let slot = checks.reserve().expect("a free slot");
                slot.check("wrong".into(), hash.clone())
            })
            .collect();
        assert!(checks.reserve().is_none(), "every slot is busy");
        for outcome in waiting {
            assert_eq!(outcome.await, Ok(false));
        }
        let slot = checks.reserve().expect("slots free again");
        assert_eq!(slot.check("right".into(), hash.clone()).await, Ok(true));
        let slot = checks.reserve().expect("a slot");
        assert_eq!(
            slot.check("right".into(), "not a hash".into()).await,
            Ok(false)
        );
        // A slot reserved and never used is given back.
        let slots: Vec<_> = (0..LOGIN_SLOTS).filter_map(|_| checks.reserve()).collect();
        assert_eq!(slots.len(), LOGIN_SLOTS);
        drop(slots);
        assert!(checks.reserve().is_some());
    }

    fn phc(algorithm: Algorithm, version: Version, params: Params, password: &str) -> String {
        let salt = SaltString::encode_b64(b"sixteen byte slt").expect("salt");
        Argon2::new(algorithm, version, params)
            .hash_password(password.as_bytes(), &salt)
            .expect("hash")
            .to_string()
    }

    #[test]
    fn one_buffer_decides_as_argon2_does() {
        let mut memory = Vec::new();
        let default = auth::hash_password("correct horse").expect("hash");
        let cheaper = phc(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 3, 1, Some(24)).expect("params"),
            "pw",
        );
        let argon2i = phc(Algorithm::Argon2i, Version::V0x10, Params::default(), "pw");
        // (password, stored hash, match?)
        let cases = [
            ("correct horse", default.as_str(), true),
            ("correct horsE", default.as_str(), false),
            ("", default.as_str(), false),
            ("pw", cheaper.as_str(), true),
            ("pX", cheaper.as_str(), false),
            ("pw", argon2i.as_str(), true),
            ("pw", "not a hash", false),
            ("pw", "", false),
        ];
        for (password, stored, want) in cases {
            assert_eq!(
                verify_in(password, stored, &mut memory),
                want,
                "{password} {stored}"
            );
            assert_eq!(
                auth::verify_password(password, stored),
                want,
                "{password} {stored}"
            );
        }
        assert_eq!(
            memory.len(),
            19456,
            "grown once, to the largest cost checked"
        );
        // A stored hash asking for 4 GiB is refused, not computed.
        let huge = "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$6kbfbLZPpkMqXLFCX3K4wMGD1n0nmuScaeEzbR0dYsk";
        assert!(!verify_in("pw", huge, &mut memory));
        assert_eq!(memory.len(), 19456);
    }
}
