//! The task that owns a memcached connection's socket (see [`super::conn`]): it writes the
//! queued requests in batches and hands each reply to the request it answers.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::conn::{ConnectionError, Request, Shared};
use super::proto::{self, Failure, Reply};

/// Requests written and not yet answered; the driver stops taking more beyond this.
const MAX_PENDING: usize = 4096;
/// The driver stops gathering requests into one write beyond this many bytes.
const MAX_WRITE: usize = 64 * 1024;

/// A request written to memcached, waiting for its replies.
struct Pending {
    expect: Vec<Option<u32>>,
    replies: Vec<Reply>,
    reply: oneshot::Sender<Result<Vec<Reply>, ConnectionError>>,
}

/// The driver's side of a connection.
struct Driver {
    read: OwnedReadHalf,
    write: OwnedWriteHalf,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    pending: VecDeque<Pending>,
}

/// Runs the connection until it fails or every handle is gone, then fails whatever waits.
pub(super) async fn drive(
    stream: TcpStream,
    mut requests: mpsc::Receiver<Request>,
    shared: Arc<Shared>,
) {
    let (read, write) = stream.into_split();
    let mut driver = Driver {
        read,
        write,
        rbuf: Vec::with_capacity(16 * 1024),
        wbuf: Vec::with_capacity(16 * 1024),
        pending: VecDeque::new(),
    };
    let ended = driver.run(&mut requests, &shared).await;
    shared.dead.store(true, Ordering::Relaxed);
    requests.close();
    let Err(why) = ended else { return };
    tracing::debug!(addr = %shared.addr, error = %why, "memcached connection closed");
    for pending in driver.pending.drain(..) {
        let _ = pending.reply.send(Err(why.clone()));
    }
    while let Ok(request) = requests.try_recv() {
        let _ = request.reply.send(Err(why.clone()));
    }
}

impl Driver {
    /// `Ok` when every handle is gone and nothing is pending, else why the connection failed.
    async fn run(
        &mut self,
        requests: &mut mpsc::Receiver<Request>,
        shared: &Shared,
    ) -> Result<(), ConnectionError> {
        let mut open = true;
        loop {
            self.flush()?;
            if !open && self.pending.is_empty() {
                return Ok(());
            }
            if self.rbuf.capacity() - self.rbuf.len() < 4096 {
                self.rbuf.reserve(16 * 1024);
            }
            let taking = open && self.pending.len() < MAX_PENDING;
            tokio::select! {
                biased;
                () = shared.kill.notified() => return Err(ConnectionError::Abandoned),
                read = tokio::io::AsyncReadExt::read_buf(&mut self.read, &mut self.rbuf) => {
                    match read {
                        Ok(0) => return Err(ConnectionError::Closed),
                        Ok(_) => {
                            self.deliver(shared)?;
                        }
                        Err(e) => return Err(ConnectionError::Io { kind: e.kind() }),
                    }
                }
                ready = self.write.writable(), if !self.wbuf.is_empty() => {
                    ready.map_err(|e| ConnectionError::Io { kind: e.kind() })?;
                }
                request = requests.recv(), if taking => match request {
                    Some(request) => {
                        self.accept(request);
                        self.gather(requests);
                        // The request that woke the driver is often the first of several
                        // from tasks that are ready to run (all woken by one read); let them
                        // run first, so that their commands go out in the same write.
                        tokio::task::yield_now().await;
                        self.gather(requests);
                    }
                    None => open = false,
                },
            }
        }
    }

    /// Takes the requests already queued, up to the size of one write.
    fn gather(&mut self, requests: &mut mpsc::Receiver<Request>) {
        while self.wbuf.len() < MAX_WRITE && self.pending.len() < MAX_PENDING {
            match requests.try_recv() {
                Ok(request) => self.accept(request),
                Err(_) => break,
            }
        }
    }

    fn accept(&mut self, request: Request) {
        self.wbuf.extend_from_slice(&request.bytes);
        self.pending.push_back(Pending {
            replies: Vec::with_capacity(request.expect.len()),
            expect: request.expect,
            reply: request.reply,
        });
    }

    /// Writes what the socket takes now.
    fn flush(&mut self) -> Result<(), ConnectionError> {
        while !self.wbuf.is_empty() {
            match self.write.try_write(&self.wbuf) {
                Ok(0) => return Err(ConnectionError::Closed),
                Ok(n) => drop(self.wbuf.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(ConnectionError::Io { kind: e.kind() }),
            }
        }
        Ok(())
    }

    /// Hands every complete reply in the read buffer to the request it answers.
    fn deliver(&mut self, shared: &Shared) -> Result<(), ConnectionError> {
        let mut used = 0;
        let result = loop {
            let parsed = match proto::parse(&self.rbuf[used..]) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => break Ok(()),
                Err(reason) => break Err(ConnectionError::Protocol { reason }),
            };
            used += parsed.len;
            shared.answered.store(true, Ordering::Relaxed);
            if let Err(e) = self.answer(parsed) {
                break Err(e);
            }
        };
        self.rbuf.drain(..used);
        result
    }

    fn answer(&mut self, parsed: proto::Parsed) -> Result<(), ConnectionError> {
        let Some(front) = self.pending.front_mut() else {
            return Err(ConnectionError::Unsolicited);
        };
        let expected = front.expect.get(front.replies.len()).copied().flatten();
        // Refusals carry no opaque; anything else must carry the one its command sent.
        let refusal = match &parsed.reply {
            Reply::Failed { kind, .. } => Some(*kind),
            _ => None,
        };
        if refusal.is_none() && parsed.opaque != expected {
            return Err(ConnectionError::OutOfStep {
                expected,
                got: parsed.opaque,
            });
        }
        front.replies.push(parsed.reply);
        if front.replies.len() == front.expect.len() {
            if let Some(done) = self.pending.pop_front() {
                let _ = done.reply.send(Ok(done.replies));
            }
        }
        match refusal {
            // After these the stream may be out of step: nothing more is trusted.
            Some(Failure::Unknown | Failure::Client) => Err(ConnectionError::Refused),
            _ => Ok(()),
        }
    }
}
