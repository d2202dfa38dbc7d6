//! Connections to memcached: one long-lived TCP connection (or a few, each serving a share of
//! the keys) shared by every request and pipelined, and the commands lockd sends over it, each
//! with a typed reply and a deadline. Every write waits for memcached's answer (no `noreply`,
//! no quiet mode).
//!
//! # Why a client of our own
//!
//! memcached answers the commands of one connection in order, so many requests can share a
//! connection: their commands go out in one write and their replies come back in one read.
//! Under load this is what keeps lockd cheap — one system call and one wake-up of memcached
//! for a batch of commands instead of one per command — and it lets an acquire send its
//! store and its token draw in the same write (see the parent module). `async-memcached`
//! (used before) runs one command at a time on a connection it borrows mutably, so it can
//! neither share a connection between requests nor pipeline two commands; `memcache-async`
//! has the same shape. This client speaks only the six commands in [`proto`](super::proto).
//!
//! # A connection
//!
//! A [`Conn`] is a handle; the socket belongs to a driver task that takes requests from a
//! queue, writes as many as are waiting in one go, and hands each reply to the request that
//! sent the command, checked by the opaque memcached echoes. The connection is closed, and
//! every request waiting on it fails, when memcached closes it, sends something that is not
//! a reply or not the expected one, answers `ERROR`/`CLIENT_ERROR` (after which the stream
//! may be out of step), or leaves a command unanswered past its deadline. The next request
//! opens a new connection.
//!
//! A CAS value names one version of an item only on the memcached process that issued it:
//! after a restart memcached counts CAS values from 1 again. So a CAS value is kept as an
//! [`ItemCas`] that remembers its connection, and a compare-and-swap or compare-and-delete is
//! sent only on that same connection (a connection never outlives the process it reached).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Notify, OnceCell};
use tokio::time::{timeout, timeout_at, Instant};

use super::driver;
use super::proto::{Cmd, Failure, ProtocolError, Reply};
use crate::backend::BackendError;

/// Connections per memcached. One batches best. Measured with `bench/lockd` on two cores,
/// two or four connections gave the same rate through lockd for 30-50 % more memcached CPU
/// per lease (they only pay off without HTTP in front, where one memcached thread per
/// connection becomes the limit).
const CONNECTIONS: usize = 1;
/// Deadline for connecting, and for each round trip.
const DEADLINE: Duration = Duration::from_secs(1);
/// Requests queued for the driver; senders wait (within their deadline) beyond this.
const QUEUE: usize = 1024;

/// Gives every connection of the process a distinct id.
static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// The connections to one memcached; clones share them.
#[derive(Clone, Debug)]
pub(crate) struct Memcached {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    addr: String,
    deadline: Duration,
    /// The connection of each slot, or its opening: requests that find none wait for one
    /// opening rather than each opening its own. A failed connection's cell is replaced.
    // std mutexes: each guards a clone or a swap of an `Arc`, never an `.await`.
    slots: Vec<Mutex<Arc<OnceCell<Conn>>>>,
}

/// A pipelined connection to memcached; clones share it.
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    shared: Arc<Shared>,
    queue: mpsc::Sender<Request>,
}

#[derive(Debug)]
pub(super) struct Shared {
    id: u64,
    pub(super) addr: String,
    deadline: Duration,
    /// Set when the connection must not take new requests.
    pub(super) dead: AtomicBool,
    /// Wakes the driver to close the connection (a request timed out).
    pub(super) kill: Notify,
    /// memcached has answered on this connection at least once.
    pub(super) answered: AtomicBool,
    next_opaque: AtomicU32,
    /// `mg` commands sent, for tests that check a renew or release did not read.
    #[cfg(test)]
    reads: std::sync::atomic::AtomicUsize,
}

/// The CAS value of an item as read or written on one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ItemCas {
    conn: u64,
    value: u64,
}

#[cfg(test)]
impl ItemCas {
    pub fn for_tests(conn: u64, value: u64) -> Self {
        Self { conn, value }
    }

    /// The same value as if read on a connection that is not (or no longer) open.
    pub fn on_another_connection(self) -> Self {
        Self {
            conn: u64::MAX,
            ..self
        }
    }
}

#[cfg(test)]
impl Conn {
    /// `mg` commands sent on this connection so far.
    pub fn reads(&self) -> usize {
        self.shared.reads.load(Ordering::Relaxed)
    }
}

/// Outcome of a compare-and-swap or compare-and-delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cas {
    /// Done; for a store, the item's new CAS value.
    Done(Option<ItemCas>),
    /// The item changed since its CAS value was read (or the CAS value is from another
    /// connection, so nothing can be said about it).
    Changed,
    /// The item is gone.
    Gone,
}

/// Why a connection failed; every request that was waiting on it gets this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    #[error("memcached closed the connection")]
    Closed,
    #[error("the connection failed: {kind}")]
    Io { kind: io::ErrorKind },
    #[error("memcached sent {reason}")]
    Protocol { reason: ProtocolError },
    #[error("a reply answered another command (opaque {got:?}, expected {expected:?})")]
    OutOfStep {
        expected: Option<u32>,
        got: Option<u32>,
    },
    #[error("memcached answered when no command was waiting")]
    Unsolicited,
    #[error("memcached refused an earlier command on the connection, which was closed")]
    Refused,
    #[error("an earlier command got no answer in time, and the connection was closed")]
    Abandoned,
}

/// Commands sent together, and where their replies go.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) bytes: Vec<u8>,
    /// The opaque each reply must carry, in order.
    pub(super) expect: Vec<Option<u32>>,
    pub(super) reply: oneshot::Sender<Result<Vec<Reply>, ConnectionError>>,
}

impl Memcached {
    /// `addr` is `HOST:PORT`; nothing connects until the first command.
    pub fn new(addr: String) -> Self {
        Self::with_options(addr, CONNECTIONS, DEADLINE)
    }

    /// With `n` connections (at least one; a key always uses the same one) and `deadline`
    /// for connecting and for each round trip.
    pub fn with_options(addr: String, n: usize, deadline: Duration) -> Self {
        let slots = (0..n.max(1)).map(|_| Mutex::default()).collect();
        Self {
            inner: Arc::new(Inner {
                addr,
                deadline,
                slots,
            }),
        }
    }

    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// The connection that serves `key`, opened if there is none or it has failed.
    pub async fn conn(&self, key: &str) -> Result<Conn, BackendError> {
        let inner = &*self.inner;
        let slot = &inner.slots[slot_of(key, inner.slots.len())];
        let deadline = Instant::now() + inner.deadline;
        let open = || Conn::open(&inner.addr, inner.deadline);
        for _ in 0..2 {
            let cell = slot.lock().unwrap_or_else(PoisonError::into_inner).clone();
            let conn = match timeout_at(deadline, cell.get_or_try_init(open)).await {
                Ok(conn) => conn?,
                Err(_) => return Err(timed_out(&inner.addr, "connect", inner.deadline)),
            };
            if conn.is_live() {
                return Ok(conn.clone());
            }
            let mut current = slot.lock().unwrap_or_else(PoisonError::into_inner);
            if Arc::ptr_eq(&current, &cell) {
                *current = Arc::default();
            }
        }
        // Opened and failed at once: the request fails on it like on any broken connection.
        let cell = slot.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match cell.get() {
            Some(conn) => Ok(conn.clone()),
            None => Err(timed_out(&inner.addr, "connect", inner.deadline)),
        }
    }
}

/// Which of `n` connections serves `key` (FNV-1a).
fn slot_of(key: &str, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    usize::try_from(hash % n as u64).unwrap_or(0)
}

impl Conn {
    async fn open(addr: &str, deadline: Duration) -> Result<Self, BackendError> {
        let stream = match timeout(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                let addr = addr.to_owned();
                return Err(BackendError::Connect { addr, source });
            }
            Err(_) => return Err(timed_out(addr, "connect", deadline)),
        };
        // Commands are small and latency is the point: no Nagle delay.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(addr, error = %e, "cannot set TCP_NODELAY");
        }
        let (queue, requests) = mpsc::channel(QUEUE);
        let shared = Arc::new(Shared {
            id: NEXT_CONN.fetch_add(1, Ordering::Relaxed),
            addr: addr.to_owned(),
            deadline,
            dead: AtomicBool::new(false),
            kill: Notify::new(),
            answered: AtomicBool::new(false),
            next_opaque: AtomicU32::new(0),
            #[cfg(test)]
            reads: std::sync::atomic::AtomicUsize::new(0),
        });
        tokio::spawn(driver::drive(stream, requests, shared.clone()));
        Ok(Self { shared, queue })
    }

    /// memcached has answered on this connection before: if it now fails, memcached may
    /// have restarted since, and a new connection may work.
    pub fn reused(&self) -> bool {
        self.shared.answered.load(Ordering::Relaxed)
    }

    fn is_live(&self) -> bool {
        !self.shared.dead.load(Ordering::Relaxed) && !self.queue.is_closed()
    }

    fn cas(&self, value: u64) -> ItemCas {
        ItemCas {
            conn: self.shared.id,
            value,
        }
    }

    /// The CAS value as this connection may send it: `None` if it was read on another.
    fn own(&self, cas: ItemCas) -> Option<u64> {
        (cas.conn == self.shared.id).then_some(cas.value)
    }

    /// Stores `value` only if `key` is absent, and in the same write draws the next value of
    /// the counter `counter` (created at `seed` if missing): `(Some(cas), n)` if stored,
    /// `(None, n)` if `key` was present (`n` is drawn either way).
    pub async fn add_and_draw(
        &self,
        key: &str,
        value: &[u8],
        exptime: u32,
        (counter, seed): (&str, u64),
    ) -> Result<(Option<ItemCas>, u64), BackendError> {
        let op = "ms ME + ma";
        let cmds = [
            Cmd::Add {
                key,
                value,
                exptime,
            },
            Cmd::Draw { key: counter, seed },
        ];
        let [stored, drawn] = self.pair(op, &cmds).await?;
        let token = self.counter(op, counter, drawn)?;
        match stored {
            Reply::Done { cas: Some(cas) } => Ok((Some(self.checked(op, cas)?), token)),
            Reply::NotStored => Ok((None, token)),
            other => Err(self.unexpected(op, other)),
        }
    }

    /// Replaces `key` with `value` only if it is unchanged since `cas`, and draws from
    /// `counter` in the same write (nothing is sent if `cas` is from another connection).
    pub async fn swap_and_draw(
        &self,
        key: &str,
        value: &[u8],
        (exptime, cas): (u32, ItemCas),
        (counter, seed): (&str, u64),
    ) -> Result<(Cas, u64), BackendError> {
        let op = "ms C + ma";
        let Some(cas) = self.own(cas) else {
            return Ok((Cas::Changed, 0));
        };
        let cmds = [
            Cmd::SetCas {
                key,
                value,
                exptime,
                cas,
            },
            Cmd::Draw { key: counter, seed },
        ];
        let [stored, drawn] = self.pair(op, &cmds).await?;
        let token = self.counter(op, counter, drawn)?;
        Ok((self.stored(op, stored)?, token))
    }

    /// The value and CAS value of `key`, `None` if absent.
    pub async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, ItemCas)>, BackendError> {
        #[cfg(test)]
        self.shared.reads.fetch_add(1, Ordering::Relaxed);
        let cmd = Cmd::Get { key };
        match self.one(&cmd).await? {
            Reply::Value {
                data,
                cas: Some(cas),
            } => Ok(Some((data, self.checked(cmd.name(), cas)?))),
            Reply::Miss => Ok(None),
            other => Err(self.unexpected(cmd.name(), other)),
        }
    }

    /// Stores `value` only if `key` is unchanged since `cas`.
    pub async fn set_cas(
        &self,
        key: &str,
        value: &[u8],
        exptime: u32,
        cas: ItemCas,
    ) -> Result<Cas, BackendError> {
        let Some(cas) = self.own(cas) else {
            return Ok(Cas::Changed);
        };
        let cmd = Cmd::SetCas {
            key,
            value,
            exptime,
            cas,
        };
        let reply = self.one(&cmd).await?;
        self.stored(cmd.name(), reply)
    }

    /// Deletes `key` only if it is unchanged since `cas`.
    pub async fn delete_cas(&self, key: &str, cas: ItemCas) -> Result<Cas, BackendError> {
        let Some(cas) = self.own(cas) else {
            return Ok(Cas::Changed);
        };
        let cmd = Cmd::DeleteCas { key, cas };
        match self.one(&cmd).await? {
            Reply::Done { .. } => Ok(Cas::Done(None)),
            Reply::Exists => Ok(Cas::Changed),
            Reply::NotFound => Ok(Cas::Gone),
            other => Err(self.unexpected(cmd.name(), other)),
        }
    }

    pub async fn version(&self) -> Result<(), BackendError> {
        match self.one(&Cmd::Version).await? {
            Reply::Version => Ok(()),
            other => Err(self.unexpected("version", other)),
        }
    }

    /// The reply to a conditional store.
    fn stored(&self, op: &'static str, reply: Reply) -> Result<Cas, BackendError> {
        match reply {
            Reply::Done { cas: Some(cas) } => Ok(Cas::Done(Some(self.checked(op, cas)?))),
            Reply::Exists => Ok(Cas::Changed),
            Reply::NotFound => Ok(Cas::Gone),
            other => Err(self.unexpected(op, other)),
        }
    }

    /// The value of a counter as `ma v` returns it.
    fn counter(&self, op: &'static str, counter: &str, reply: Reply) -> Result<u64, BackendError> {
        match reply {
            Reply::Value { data, .. } => std::str::from_utf8(&data)
                .ok()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| BackendError::Corrupt {
                    key: counter.to_owned(),
                    reason: "the token counter is not a number",
                }),
            other => Err(self.unexpected(op, other)),
        }
    }

    /// A CAS value of 0 means memcached runs without CAS (`-C`): compare-and-swap would then
    /// compare nothing, so lockd refuses to work with it.
    fn checked(&self, op: &'static str, cas: u64) -> Result<ItemCas, BackendError> {
        if cas == 0 {
            return Err(BackendError::Unexpected {
                addr: self.shared.addr.clone(),
                op,
                reply: "CAS value 0 (memcached runs with -C, without CAS)".into(),
            });
        }
        Ok(self.cas(cas))
    }

    async fn one(&self, cmd: &Cmd<'_>) -> Result<Reply, BackendError> {
        let mut replies = self.send(cmd.name(), std::slice::from_ref(cmd)).await?;
        match replies.pop() {
            Some(reply) => Ok(reply),
            None => Err(self.broken(cmd.name(), ConnectionError::Unsolicited)),
        }
    }

    async fn pair(
        &self,
        op: &'static str,
        cmds: &[Cmd<'_>; 2],
    ) -> Result<[Reply; 2], BackendError> {
        let replies = self.send(op, cmds).await?;
        <[Reply; 2]>::try_from(replies).map_err(|_| self.broken(op, ConnectionError::Unsolicited))
    }

    /// Sends `cmds` in one write and waits (within the deadline) for all their replies.
    /// memcached's refusals come back as errors here; every other reply is the caller's to
    /// judge.
    async fn send(&self, op: &'static str, cmds: &[Cmd<'_>]) -> Result<Vec<Reply>, BackendError> {
        let deadline = Instant::now() + self.shared.deadline;
        let mut bytes = Vec::with_capacity(128 * cmds.len());
        let expect = cmds
            .iter()
            .map(|cmd| {
                let opaque = self.shared.next_opaque.fetch_add(1, Ordering::Relaxed);
                cmd.encode(opaque, &mut bytes);
                cmd.echo(opaque)
            })
            .collect();
        let (reply, replied) = oneshot::channel();
        let request = Request {
            bytes,
            expect,
            reply,
        };
        match timeout_at(deadline, self.queue.send(request)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(self.broken(op, self.closed_why())),
            Err(_) => return Err(self.abandon(op)),
        }
        let replies = match timeout_at(deadline, replied).await {
            Ok(Ok(Ok(replies))) => replies,
            Ok(Ok(Err(why))) => return Err(self.broken(op, why)),
            // The driver went away without answering (its runtime shut down).
            Ok(Err(_)) => return Err(self.broken(op, ConnectionError::Closed)),
            Err(_) => return Err(self.abandon(op)),
        };
        for reply in &replies {
            if let Reply::Failed { kind, message } = reply {
                return Err(self.refused(op, *kind, message));
            }
        }
        Ok(replies)
    }

    /// A request timed out: close the connection (later replies could not be trusted to
    /// come in time either) and say so.
    fn abandon(&self, op: &'static str) -> BackendError {
        self.shared.dead.store(true, Ordering::Relaxed);
        self.shared.kill.notify_one();
        timed_out(&self.shared.addr, op, self.shared.deadline)
    }

    fn closed_why(&self) -> ConnectionError {
        if self.shared.dead.load(Ordering::Relaxed) {
            ConnectionError::Abandoned
        } else {
            ConnectionError::Closed
        }
    }

    fn broken(&self, op: &'static str, source: ConnectionError) -> BackendError {
        BackendError::Connection {
            addr: self.shared.addr.clone(),
            op,
            source,
        }
    }

    fn refused(&self, op: &'static str, kind: Failure, message: &str) -> BackendError {
        let addr = self.shared.addr.clone();
        match kind {
            Failure::Server => BackendError::Server {
                addr,
                op,
                message: message.to_owned(),
            },
            Failure::Client => BackendError::Unexpected {
                addr,
                op,
                reply: format!("CLIENT_ERROR {message}"),
            },
            Failure::Unknown => BackendError::Unexpected {
                addr,
                op,
                reply: "ERROR".into(),
            },
        }
    }

    fn unexpected(&self, op: &'static str, reply: Reply) -> BackendError {
        BackendError::Unexpected {
            addr: self.shared.addr.clone(),
            op,
            reply: format!("{reply:?}"),
        }
    }
}

fn timed_out(addr: &str, op: &'static str, after: Duration) -> BackendError {
    BackendError::Timeout {
        addr: addr.to_owned(),
        op,
        after,
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
