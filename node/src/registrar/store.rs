//! What the registrar needs from the cluster database ([`RegistrarStore`]: the `devices` and
//! `registrations` tables), implemented by `callfleet_store::Store` over SQL and by
//! [`MemoryStore`] for tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use callfleet_store::{Store, StoreError};

pub use callfleet_store::{Device, Registration};

/// The registrar's view of the database.
#[async_trait::async_trait]
pub trait RegistrarStore: Send + Sync + 'static {
    /// Inserts or replaces a device (keyed by extension).
    async fn upsert_device(&self, device: &Device) -> Result<(), StoreError>;
    async fn device(&self, extension: &str) -> Result<Option<Device>, StoreError>;
    /// Inserts or replaces a binding (keyed by aor and contact); false, writing nothing, when
    /// the stored one has the same Call-ID and a CSeq at least as high (RFC 3261 §10.3 step 7,
    /// checked again here because another node may have written since the registrar read).
    async fn upsert_registration(&self, reg: &Registration) -> Result<bool, StoreError>;
    /// Removes one binding; true if it existed.
    async fn delete_registration(&self, aor: &str, contact: &str) -> Result<bool, StoreError>;
    /// Removes every binding of an AOR; how many there were.
    async fn delete_registrations(&self, aor: &str) -> Result<u64, StoreError>;
    /// The bindings of an AOR that have not expired at `now_ms`, by contact.
    async fn registrations(&self, aor: &str, now_ms: i64) -> Result<Vec<Registration>, StoreError>;
    /// Deletes bindings expired at `now_ms`; how many.
    async fn purge_expired_registrations(&self, now_ms: i64) -> Result<u64, StoreError>;
}

/// Devices and bindings in memory (a std mutex: no lock is held across an await).
#[derive(Debug, Default)]
pub struct MemoryStore {
    devices: Mutex<BTreeMap<String, Device>>,
    bindings: Mutex<BTreeMap<(String, String), Registration>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Every binding, expired or not (tests look at what was written).
    pub fn all_registrations(&self) -> Vec<Registration> {
        lock(&self.bindings).values().cloned().collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait::async_trait]
impl RegistrarStore for MemoryStore {
    async fn upsert_device(&self, device: &Device) -> Result<(), StoreError> {
        lock(&self.devices).insert(device.extension.clone(), device.clone());
        Ok(())
    }

    async fn device(&self, extension: &str) -> Result<Option<Device>, StoreError> {
        Ok(lock(&self.devices).get(extension).cloned())
    }

    async fn upsert_registration(&self, reg: &Registration) -> Result<bool, StoreError> {
        let key = (reg.aor.clone(), reg.contact.clone());
        let mut map = lock(&self.bindings);
        if let Some(old) = map.get(&key) {
            if old.call_id == reg.call_id && old.cseq >= reg.cseq {
                return Ok(false);
            }
        }
        map.insert(key, reg.clone());
        Ok(true)
    }

    async fn delete_registration(&self, aor: &str, contact: &str) -> Result<bool, StoreError> {
        let key = (aor.to_string(), contact.to_string());
        Ok(lock(&self.bindings).remove(&key).is_some())
    }

    async fn delete_registrations(&self, aor: &str) -> Result<u64, StoreError> {
        let mut map = lock(&self.bindings);
        let before = map.len();
        map.retain(|(a, _), _| a != aor);
        Ok((before - map.len()) as u64)
    }

    async fn registrations(&self, aor: &str, now_ms: i64) -> Result<Vec<Registration>, StoreError> {
        let mut regs: Vec<Registration> = lock(&self.bindings)
            .values()
            .filter(|r| r.aor == aor && r.expires_at_ms > now_ms)
            .cloned()
            .collect();
        // As the SQL store orders them: the one that lasts longest first.
        regs.sort_by(|a, b| (b.expires_at_ms, &a.contact).cmp(&(a.expires_at_ms, &b.contact)));
        Ok(regs)
    }

    async fn purge_expired_registrations(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut map = lock(&self.bindings);
        let before = map.len();
        map.retain(|_, r| r.expires_at_ms > now_ms);
        Ok((before - map.len()) as u64)
    }
}

#[async_trait::async_trait]
impl RegistrarStore for Store {
    async fn upsert_device(&self, device: &Device) -> Result<(), StoreError> {
        Store::upsert_device(self, device).await
    }

    async fn device(&self, extension: &str) -> Result<Option<Device>, StoreError> {
        Store::device(self, extension).await
    }

    async fn upsert_registration(&self, reg: &Registration) -> Result<bool, StoreError> {
        Store::upsert_registration(self, reg).await
    }

    async fn delete_registration(&self, aor: &str, contact: &str) -> Result<bool, StoreError> {
        Store::delete_registration(self, aor, contact).await
    }

    async fn delete_registrations(&self, aor: &str) -> Result<u64, StoreError> {
        Store::delete_registrations(self, aor).await
    }

    async fn registrations(&self, aor: &str, now_ms: i64) -> Result<Vec<Registration>, StoreError> {
        Store::registrations(self, aor, now_ms).await
    }

    async fn purge_expired_registrations(&self, now_ms: i64) -> Result<u64, StoreError> {
        Store::purge_expired_registrations(self, now_ms).await
    }
}
