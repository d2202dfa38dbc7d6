//! Connections to memcached: a small pool that reconnects after errors, and the handful of
//! commands lockd sends, each with a typed reply and a deadline. Every write waits for
//! memcached's answer (no `noreply`, no quiet mode).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_memcached::{AsciiProtocol, Client, Error, MetaProtocol, MetaValue, Status};
use tokio::sync::Semaphore;
use tokio::time::timeout;

use crate::backend::BackendError;

/// Connections kept open between requests.
const MAX_IDLE: usize = 64;
/// Commands in flight at once, each on its own connection; more wait (within their deadline).
const MAX_IN_FLIGHT: usize = 256;
/// Deadline for connecting, and for each command.
const DEADLINE: Duration = Duration::from_secs(1);

/// A pool of connections to one memcached; clones share it.
#[derive(Clone, Debug)]
pub(crate) struct Memcached {
    inner: Arc<Inner>,
}

struct Inner {
    addr: String,
    // A std mutex: it only guards push/pop of idle connections, never across an `.await`.
    idle: Mutex<Vec<Client>>,
    in_flight: Semaphore,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memcached")
            .field("addr", &self.addr)
            .finish()
    }
}

/// Outcome of a compare-and-swap or compare-and-delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cas {
    /// Done; for a store, the item's new CAS value.
    Done(u64),
    /// The item changed since its CAS value was read.
    Changed,
    /// The item is gone.
    Gone,
}

enum Cmd<'a> {
    /// `ms <key> ME T<exptime> c`: store only if absent.
    Add {
        key: &'a str,
        value: &'a [u8],
        exptime: u32,
    },
    /// `mg <key> v c`.
    Get {
        key: &'a str,
    },
    /// `ms <key> C<cas> T<exptime> c`: store only if unchanged.
    SetCas {
        key: &'a str,
        value: &'a [u8],
        exptime: u32,
        cas: u64,
    },
    /// `md <key> C<cas>`: delete only if unchanged.
    DeleteCas {
        key: &'a str,
        cas: u64,
    },
    /// `incr <key> 1`.
    Incr {
        key: &'a str,
    },
    /// `add <key> 0 0 <seed>`: create a counter that never expires.
    AddCounter {
        key: &'a str,
        seed: u64,
    },
    Version,
}

impl Cmd<'_> {
    fn name(&self) -> &'static str {
        match self {
            Cmd::Add { .. } => "ms ME",
            Cmd::Get { .. } => "mg",
            Cmd::SetCas { .. } => "ms C",
            Cmd::DeleteCas { .. } => "md C",
            Cmd::Incr { .. } => "incr",
            Cmd::AddCounter { .. } => "add",
            Cmd::Version => "version",
        }
    }
}

#[derive(Debug)]
enum Reply {
    Stored(Option<u64>),
    NotStored,
    Value(Option<Vec<u8>>, Option<u64>),
    Miss,
    Deleted,
    Exists,
    NotFound,
    Counter(u64),
    Version,
}

impl Memcached {
    /// `addr` is `HOST:PORT`; nothing connects until the first command.
    pub fn new(addr: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                addr,
                idle: Mutex::new(Vec::new()),
                in_flight: Semaphore::new(MAX_IN_FLIGHT),
            }),
        }
    }

    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// Stores `value` only if `key` is absent: `Some(cas)` if stored, `None` if present.
    pub async fn add(
        &self,
        key: &str,
        value: &[u8],
        exptime: u32,
    ) -> Result<Option<u64>, BackendError> {
        let cmd = Cmd::Add {
            key,
            value,
            exptime,
        };
        match self.exec(&cmd).await? {
            Reply::Stored(Some(cas)) => Ok(Some(cas)),
            Reply::NotStored => Ok(None),
            other => Err(self.unexpected(&cmd, &other)),
        }
    }

    /// The value and CAS of `key`, `None` if absent.
    pub async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u64)>, BackendError> {
        let cmd = Cmd::Get { key };
        match self.exec(&cmd).await? {
            Reply::Value(Some(data), Some(cas)) => Ok(Some((data, cas))),
            Reply::Miss => Ok(None),
            other => Err(self.unexpected(&cmd, &other)),
        }
    }

    pub async fn set_cas(
        &self,
        key: &str,
        value: &[u8],
        exptime: u32,
        cas: u64,
    ) -> Result<Cas, BackendError> {
        let cmd = Cmd::SetCas {
            key,
            value,
            exptime,
            cas,
        };
        match self.exec(&cmd).await? {
            Reply::Stored(Some(cas)) => Ok(Cas::Done(cas)),
            Reply::Exists => Ok(Cas::Changed),
            Reply::NotFound => Ok(Cas::Gone),
            other => Err(self.unexpected(&cmd, &other)),
        }
    }

    pub async fn delete_cas(&self, key: &str, cas: u64) -> Result<Cas, BackendError> {
        let cmd = Cmd::DeleteCas { key, cas };
        match self.exec(&cmd).await? {
            Reply::Deleted => Ok(Cas::Done(cas)),
            Reply::Exists => Ok(Cas::Changed),
            Reply::NotFound => Ok(Cas::Gone),
            other => Err(self.unexpected(&cmd, &other)),
        }
    }

    /// Adds one to the counter `key`: its new value, `None` if there is no such counter.
    pub async fn incr(&self, key: &str) -> Result<Option<u64>, BackendError> {
        let cmd = Cmd::Incr { key };
        match self.exec(&cmd).await? {
            Reply::Counter(n) => Ok(Some(n)),
            Reply::NotFound => Ok(None),
            other => Err(self.unexpected(&cmd, &other)),
        }
    }

    /// Creates the counter `key` at `seed` unless it exists: whether it was created.
    pub async fn add_counter(&self, key: &str, seed: u64) -> Result<bool, BackendError> {
        let cmd = Cmd::AddCounter { key, seed };
        match self.exec(&cmd).await? {
            Reply::Stored(_) => Ok(true),
            Reply::NotStored => Ok(false),
            other => Err(self.unexpected(&cmd, &other)),
        }
    }

    pub async fn version(&self) -> Result<(), BackendError> {
        let cmd = Cmd::Version;
        match self.exec(&cmd).await? {
            Reply::Version => Ok(()),
            other => Err(self.unexpected(&cmd, &other)),
        }
    }

    fn unexpected(&self, cmd: &Cmd<'_>, reply: &Reply) -> BackendError {
        BackendError::Unexpected {
            addr: self.inner.addr.clone(),
            op: cmd.name(),
            reply: format!("{reply:?}"),
        }
    }

    /// Runs `cmd` on a pooled connection. A connection that fails is dropped, never reused.
    /// When a reused connection fails at the transport level (memcached restarted since it
    /// was opened), every idle connection is dropped and `cmd` runs once more on a new one.
    /// Running a command twice never grants a lease twice: a repeated add finds the key
    /// taken, a repeated CAS finds the CAS changed, a repeated increment skips a token.
    async fn exec(&self, cmd: &Cmd<'_>) -> Result<Reply, BackendError> {
        let inner = &self.inner;
        let _slot = timeout(DEADLINE, inner.in_flight.acquire())
            .await
            .map_err(|_| self.timed_out(cmd.name()))?
            .map_err(|_| self.timed_out(cmd.name()))?;
        let mut retried = false;
        loop {
            let (mut client, reused) = match self.take_idle() {
                Some(client) => (client, true),
                None => (self.connect().await?, false),
            };
            match timeout(DEADLINE, run(&mut client, cmd)).await {
                Ok(Ok(reply)) => {
                    self.put_idle(client);
                    return Ok(reply);
                }
                Ok(Err(e)) if reused && !retried && transport(&e) => {
                    tracing::debug!(addr = %inner.addr, error = %e, "memcached connection went away; reconnecting");
                    self.drop_idle();
                    retried = true;
                }
                Ok(Err(source)) => {
                    return Err(BackendError::Command {
                        addr: inner.addr.clone(),
                        op: cmd.name(),
                        source,
                    })
                }
                Err(_) => return Err(self.timed_out(cmd.name())),
            }
        }
    }

    async fn connect(&self) -> Result<Client, BackendError> {
        let dsn = format!("tcp://{}", self.inner.addr);
        match timeout(DEADLINE, Client::new(dsn)).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(source)) => Err(BackendError::Connect {
                addr: self.inner.addr.clone(),
                source,
            }),
            Err(_) => Err(self.timed_out("connect")),
        }
    }

    fn timed_out(&self, op: &'static str) -> BackendError {
        BackendError::Timeout {
            addr: self.inner.addr.clone(),
            op,
            after: DEADLINE,
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Client>> {
        // The vector is valid whatever a panicking holder was doing.
        self.inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn take_idle(&self) -> Option<Client> {
        self.idle().pop()
    }

    fn put_idle(&self, client: Client) {
        let mut idle = self.idle();
        if !client.is_closed() && idle.len() < MAX_IDLE {
            idle.push(client);
        }
    }

    fn drop_idle(&self) {
        let stale = std::mem::take(&mut *self.idle());
        drop(stale);
    }
}

/// The connection broke (as opposed to memcached answering with an error).
fn transport(e: &Error) -> bool {
    matches!(
        e,
        Error::Io(_) | Error::ConnectionClosed | Error::Connect(_)
    )
}

async fn run(client: &mut Client, cmd: &Cmd<'_>) -> Result<Reply, Error> {
    let stored = |v: Option<MetaValue>| match v {
        None => Reply::Stored(None),
        Some(v) => match v.status {
            Some(Status::NotStored) => Reply::NotStored,
            Some(Status::Exists) => Reply::Exists,
            Some(Status::NotFound) => Reply::NotFound,
            _ => Reply::Stored(v.cas),
        },
    };
    let result = match *cmd {
        Cmd::Add {
            key,
            value,
            exptime,
        } => {
            let ttl = format!("T{exptime}");
            let flags = ["ME", ttl.as_str(), "c"];
            client
                .meta_set(key, value, false, None, Some(&flags))
                .await
                .map(stored)
        }
        Cmd::Get { key } => client
            .meta_get(key, false, None, Some(&["v", "c"]))
            .await
            .map(|v| v.map_or(Reply::Miss, |v| Reply::Value(v.data, v.cas))),
        Cmd::SetCas {
            key,
            value,
            exptime,
            cas,
        } => {
            let (cas, ttl) = (format!("C{cas}"), format!("T{exptime}"));
            let flags = [cas.as_str(), ttl.as_str(), "c"];
            client
                .meta_set(key, value, false, None, Some(&flags))
                .await
                .map(stored)
        }
        Cmd::DeleteCas { key, cas } => {
            let cas = format!("C{cas}");
            client
                .meta_delete(key, false, None, Some(&[cas.as_str()]))
                .await
                .map(|_| Reply::Deleted)
        }
        Cmd::Incr { key } => client.increment(key, 1).await.map(Reply::Counter),
        Cmd::AddCounter { key, seed } => client
            .add(key, seed, Some(0), None)
            .await
            .map(|()| Reply::Stored(None)),
        Cmd::Version => client.version().await.map(|_| Reply::Version),
    };
    // memcached's "no" answers (NS, EX, NF) come back as errors; they are replies here.
    match result {
        Err(Error::Protocol(Status::NotStored)) => Ok(Reply::NotStored),
        Err(Error::Protocol(Status::Exists)) => Ok(Reply::Exists),
        Err(Error::Protocol(Status::NotFound)) => Ok(Reply::NotFound),
        other => other,
    }
}
