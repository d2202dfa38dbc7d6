//! The HTTP/1.1 client under [`LockClient`](super::LockClient): kept-alive connections to one
//! lockd, one request at a time per connection, sent and answered in the caller's own task.
//!
//! # Why not reqwest
//!
//! A lease is two small requests (acquire, release) whose cost is mostly the HTTP exchange.
//! reqwest (hyper's pooled client) hands each request to a connection task through channels
//! and wakes two tasks per exchange; measured with `bench/lockd`, that was 45-50 µs of client
//! CPU per acquire+release pair, as much as lockd's own share. Here a request is one `write`
//! of a prebuilt buffer and, usually, one `read` of the whole reply, in the task that asked:
//! about 20 µs per pair, most of it the system calls themselves. The client only needs what lockd's API uses: `POST`/`PUT`/
//! `DELETE` with a small JSON body, replies framed by `Content-Length` or chunked (or ended by
//! the server closing), `Connection: close`, and replies of a few hundred bytes.
//!
//! # Connections
//!
//! A request takes an idle connection to its lockd (or opens one), and puts it back once the
//! reply has been read completely and the server did not ask to close it. A request that
//! fails, times out or is dropped halfway drops its connection with it, so a connection in
//! the pool is always between two exchanges. A connection idle for [`MAX_IDLE`] is closed
//! rather than reused; at most [`MAX_IDLE_CONNS`] are kept.
//!
//! A kept-alive connection may have been closed by the server meanwhile (lockd restarted).
//! Taking it from the pool checks, without a system call, whether the runtime has already
//! seen it close. If the server closes it anyway before answering a byte, the request is sent
//! once more on a new connection to the same lockd, and the idle ones to it are dropped. That
//! second try is what reqwest does too; at worst a lockd that took the request and died
//! before answering gets it again from its successor, which is the same as the client's
//! failover to the next lockd (the lease taken then is nobody's and ends at its TTL).

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Idle connections kept per lockd; more are closed when their request ends.
pub(crate) const MAX_IDLE_CONNS: usize = 64;
/// An idle connection older than this is closed instead of reused.
pub(crate) const MAX_IDLE: Duration = Duration::from_secs(60);
/// Longest reply accepted (head and body). lockd's are a few hundred bytes.
pub(crate) const MAX_REPLY: usize = 64 * 1024;
/// Most headers in a reply.
const MAX_HEADERS: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Post,
    Put,
    Delete,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
        }
    }
}

/// Why an exchange with one lockd failed (the request may or may not have reached it).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect")]
    Connect(#[source] io::Error),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("the connection failed")]
    Io(#[source] io::Error),
    #[error("the connection closed before the reply was complete")]
    Closed,
    #[error("the reply is not valid HTTP/1.1: {0}")]
    Malformed(MalformedReply),
    #[error("the reply is longer than {max} bytes")]
    TooLarge { max: usize },
}

/// What was wrong with a reply that is not valid HTTP/1.x.
#[derive(Debug, thiserror::Error)]
pub enum MalformedReply {
    #[error("bad status line or headers ({0})")]
    Head(#[source] httparse::Error),
    #[error("more than {MAX_HEADERS} headers")]
    TooManyHeaders,
    #[error("bad Content-Length")]
    ContentLength,
    #[error("transfer encoding other than chunked")]
    TransferEncoding,
    #[error("bad chunk")]
    Chunk,
    #[error("bytes after the end of the reply")]
    TrailingBytes,
}

impl From<MalformedReply> for TransportError {
    fn from(m: MalformedReply) -> Self {
        Self::Malformed(m)
    }
}

/// A complete reply.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One lockd: where to connect, what to send as `Host`, and its idle connections.
#[derive(Debug)]
pub(crate) struct Endpoint {
    host: String,
    port: u16,
    /// `Host` header: the authority as given.
    authority: String,
    idle: Mutex<Vec<Idle>>,
}

#[derive(Debug)]
struct Idle {
    conn: Conn,
    since: Instant,
}

impl Endpoint {
    /// `host` without IPv6 brackets; `authority` as the URL has it.
    pub fn new(host: String, port: u16, authority: String) -> Self {
        Self {
            host,
            port,
            authority,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends `method path` with a JSON `body` and its `signature` (the
    /// `X-Callfleet-Signature` value) and reads the reply, connecting if needed, all within
    /// `deadline`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        signature: &str,
        body: &[u8],
        deadline: Duration,
    ) -> Result<Response, TransportError> {
        let request = self.encode(method, path, signature, body);
        match tokio::time::timeout(deadline, self.exchange(&request)).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout(deadline)),
        }
    }

    fn encode(&self, method: Method, path: &str, signature: &str, body: &[u8]) -> Vec<u8> {
        let mut head = String::with_capacity(280 + path.len());
        // Writing to a String cannot fail.
        let _ = write!(
            head,
            "{} {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n{}: {signature}\r\ncontent-length: {}\r\n\r\n",
            method.as_str(),
            self.authority,
            callfleet_sign::HEADER,
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        request
    }

    async fn exchange(&self, request: &[u8]) -> Result<Response, TransportError> {
        if let Some(mut conn) = self.take_idle() {
            match conn.round_trip(request).await {
                Ok((response, keep)) => {
                    if keep {
                        self.put_idle(conn);
                    }
                    return Ok(response);
                }
                // Closed by the server while idle: so are the others, most likely.
                Err(Failure::BeforeReply(_)) => self.drop_idle(),
                Err(Failure::Other(e)) => return Err(e),
            }
        }
        let mut conn = self.connect().await?;
        match conn.round_trip(request).await {
            Ok((response, keep)) => {
                if keep {
                    self.put_idle(conn);
                }
                Ok(response)
            }
            Err(Failure::BeforeReply(e) | Failure::Other(e)) => Err(e),
        }
    }

    async fn connect(&self) -> Result<Conn, TransportError> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(TransportError::Connect)?;
        // Requests and replies are small and latency is the point: no Nagle delay.
        stream.set_nodelay(true).map_err(TransportError::Connect)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(1024),
        })
    }

    /// The most recently used idle connection that is still open.
    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(Idle { conn, since }) = idle.pop() {
            if since.elapsed() < MAX_IDLE && conn.looks_open() {
                return Some(conn);
            }
        }
        None
    }

    fn put_idle(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_CONNS {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    fn drop_idle(&self) {
        let stale = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        drop(stale);
    }

    #[cfg(test)]
    pub fn addr(&self) -> (&str, u16) {
        (&self.host, self.port)
    }

    #[cfg(test)]
    pub fn idle_count(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// How a round trip failed: before any byte of the reply came (so a kept-alive connection
/// the server had closed), or otherwise.
enum Failure {
    BeforeReply(TransportError),
    Other(TransportError),
}

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// Reply bytes read so far; kept between requests for its capacity.
    buf: Vec<u8>,
}

impl Conn {
    /// False when the runtime has seen the peer close the connection, or data arrive that no
    /// request asked for. Never blocks and, when nothing happened, makes no system call.
    fn looks_open(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Writes `request` and reads one reply; the flag says whether the connection may be
    /// reused.
    async fn round_trip(&mut self, request: &[u8]) -> Result<(Response, bool), Failure> {
        if let Err(e) = self.stream.write_all(request).await {
            return Err(Failure::BeforeReply(TransportError::Io(e)));
        }
        self.buf.clear();
        loop {
            let eof = match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) if self.buf.is_empty() && before_reply(&e) => {
                    return Err(Failure::BeforeReply(TransportError::Io(e)))
                }
                Err(e) => return Err(Failure::Other(TransportError::Io(e))),
            };
            if eof && self.buf.is_empty() {
                return Err(Failure::BeforeReply(TransportError::Closed));
            }
            match parse(&self.buf, eof).map_err(Failure::Other)? {
                Some(reply) => return Ok(reply),
                None if eof => return Err(Failure::Other(TransportError::Closed)),
                None if self.buf.len() >= MAX_REPLY => {
                    return Err(Failure::Other(TransportError::TooLarge { max: MAX_REPLY }))
                }
                None => self.buf.reserve(1024),
            }
        }
    }
}

/// What a server that closed an idle connection answers a request on it with.
fn before_reply(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// Parses one complete reply from the start of `buf`: `None` when more bytes are needed.
/// `eof` says the server has closed the connection (which ends a reply without a length).
/// The flag says whether the connection may carry another request.
fn parse(buf: &[u8], eof: bool) -> Result<Option<(Response, bool)>, TransportError> {
    let mut at = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut head = httparse::Response::new(&mut headers);
        let head_len = match head.parse(&buf[at..]) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(MalformedReply::TooManyHeaders.into())
            }
            Err(e) => return Err(MalformedReply::Head(e).into()),
        };
        let status = head.code.unwrap_or_default();
        let body_at = at + head_len;
        // An interim reply (100 Continue and the like) comes before the real one.
        if (100..200).contains(&status) && status != 101 {
            at = body_at;
            continue;
        }
        let mut keep = head.version == Some(1);
        let (mut length, mut chunked) = (None, false);
        for h in head.headers.iter() {
            let value = std::str::from_utf8(h.value)
                .map_err(|_| MalformedReply::ContentLength)?
                .trim();
            if h.name.eq_ignore_ascii_case("content-length") {
                let n: usize = value.parse().map_err(|_| MalformedReply::ContentLength)?;
                if length.is_some_and(|l| l != n) {
                    return Err(MalformedReply::ContentLength.into());
                }
                length = Some(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                if !value.eq_ignore_ascii_case("chunked") {
                    return Err(MalformedReply::TransferEncoding.into());
                }
                chunked = true;
            } else if h.name.eq_ignore_ascii_case("connection") {
                for option in value.split(',').map(str::trim) {
                    if option.eq_ignore_ascii_case("close") {
                        keep = false;
                    } else if option.eq_ignore_ascii_case("keep-alive") && head.version == Some(0) {
                        keep = true;
                    }
                }
            }
        }
        let rest = &buf[body_at..];
        let (body, used) = if status == 204 || status == 304 {
            (Vec::new(), 0)
        } else if chunked {
            match dechunk(rest)? {
                Some(done) => done,
                None => return Ok(None),
            }
        } else if let Some(n) = length {
            if n > MAX_REPLY {
                return Err(TransportError::TooLarge { max: MAX_REPLY });
            }
            match rest.get(..n) {
                Some(body) => (body.to_vec(), n),
                None => return Ok(None),
            }
        } else if eof {
            // No length: the reply ends where the connection does.
            keep = false;
            (rest.to_vec(), rest.len())
        } else {
            return Ok(None);
        };
        if rest.len() > used {
            // The server sent more than one reply: the connection is out of step.
            return Err(MalformedReply::TrailingBytes.into());
        }
        return Ok(Some((Response { status, body }, keep && !eof)));
    }
}

/// Decodes a chunked body from the start of `buf`: the body and the bytes it took, or `None`
/// when incomplete.
fn dechunk(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, TransportError> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let (size_len, size) = match httparse::parse_chunk_size(&buf[at..]) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(MalformedReply::Chunk.into()),
        };
        at += size_len;
        let size = usize::try_from(size).map_err(|_| MalformedReply::Chunk)?;
        if size == 0 {
            // Trailer fields (ignored), then an empty line.
            let mut trailers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            return match httparse::parse_headers(&buf[at..], &mut trailers) {
                Ok(httparse::Status::Complete((n, _))) => Ok(Some((body, at + n))),
                Ok(httparse::Status::Partial) => Ok(None),
                Err(_) => Err(MalformedReply::Chunk.into()),
            };
        }
        if body.len() + size > MAX_REPLY {
            return Err(TransportError::TooLarge { max: MAX_REPLY });
        }
        let Some(chunk) = buf.get(at..at + size) else {
            return Ok(None);
        };
        body.extend_from_slice(chunk);
        at += size;
        match buf.get(at..at + 2) {
            Some(b"\r\n") => at += 2,
            Some(_) => return Err(MalformedReply::Chunk.into()),
            None => return Ok(None),
        }
    }
}

/// Appends `value` as a JSON string (quotes and escapes) to `out`.
pub(crate) fn json_string(out: &mut Vec<u8>, value: &str) {
    // serde_json escapes exactly as JSON requires; writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Appends `n` in decimal to `out`.
pub(crate) fn json_u64(out: &mut Vec<u8>, n: u64) {
    let _ = write!(out, "{n}");
}

#[cfg(test)]
mod tests;
