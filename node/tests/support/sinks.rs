//! Where the alert tests' notifications land: a tiny SMTP server that accepts every message
//! (plain, or offering STARTTLS with a certificate of the test's own CA), and a tiny HTTP
//! server that answers every POST with 200. Both keep what they received, run on
//! their own thread and stop when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// One e-mail as the sink got it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body, dot-unstuffed, folded header lines joined.
    pub data: String,
    /// It came after a completed STARTTLS handshake.
    pub tls: bool,
}

impl Mail {
    /// The `Subject:` header's value.
    pub fn subject(&self) -> String {
        self.data
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or_default()
            .to_owned()
    }
}

/// One POST as the receiver got it.
#[derive(Debug, Clone)]
pub struct Post {
    /// The status it was answered with.
    pub status: u16,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Post {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the webhook body is JSON")
    }
}

/// Accepts connections on `addr` and runs `serve` on each, in turn, until dropped.
struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(addr: &str, serve: impl Fn(TcpStream) + Send + 'static) -> Server {
        let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                        serve(stream);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Server {
            addr: addr.parse().expect("sink address"),
            stop,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The SMTP sink.
pub struct SmtpSink {
    server: Server,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    /// A sink that offers no STARTTLS.
    pub fn start(addr: &str) -> SmtpSink {
        SmtpSink::serve(addr, None)
    }

    /// A sink that offers STARTTLS with the certificate and key of these PEM files.
    pub fn with_starttls(addr: &str, cert: &Path, key: &Path) -> SmtpSink {
        let certs = CertificateDer::pem_file_iter(cert)
            .expect("read the sink's certificate")
            .collect::<Result<Vec<_>, _>>()
            .expect("the sink's certificate");
        let key = PrivateKeyDer::from_pem_file(key).expect("the sink's key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("the sink's TLS config");
        SmtpSink::serve(addr, Some(Arc::new(config)))
    }

    fn serve(addr: &str, tls: Option<Arc<rustls::ServerConfig>>) -> SmtpSink {
        let mails = Arc::new(Mutex::new(Vec::new()));
        let kept = mails.clone();
        let server = Server::start(addr, move |stream| {
            if let Some(got) = smtp_session(stream, tls.clone()) {
                kept.lock().unwrap_or_else(|p| p.into_inner()).extend(got);
            }
        });
        SmtpSink { server, mails }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// How a run of SMTP commands ended.
enum Ended {
    /// `QUIT`, a closed connection or too many commands.
    Done,
    /// `STARTTLS` was answered `220`: the handshake comes next.
    StartTls,
}

/// One SMTP conversation: every message accepted; after `STARTTLS` the rest over TLS.
fn smtp_session(
    mut stream: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Option<Vec<Mail>> {
    let mut mails = Vec::new();
    stream.write_all(b"220 sink ESMTP\r\n").ok()?;
    if let Ended::StartTls = converse(&mut stream, tls.is_some(), false, &mut mails)? {
        let conn = rustls::ServerConnection::new(tls?).ok()?;
        let mut secure = rustls::StreamOwned::new(conn, stream);
        converse(&mut secure, false, true, &mut mails);
    }
    Some(mails)
}

/// SMTP commands until `QUIT` or `STARTTLS` (at most 100); `offer_tls` puts STARTTLS in the
/// EHLO answer; `secure` marks the mails taken.
fn converse<S: Read + Write>(
    stream: &mut S,
    offer_tls: bool,
    secure: bool,
    mails: &mut Vec<Mail>,
) -> Option<Ended> {
    let mut input = BufReader::new(stream);
    let (mut from, mut to) = (String::new(), Vec::new());
    for _ in 0..100 {
        let mut line = String::new();
        if input.read_line(&mut line).ok()? == 0 {
            break;
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") && offer_tls {
            b"250-sink\r\n250-8BITMIME\r\n250 STARTTLS\r\n"
        } else if upper.starts_with("EHLO") {
            b"250-sink\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("STARTTLS") && offer_tls {
            input.get_mut().write_all(b"220 go ahead\r\n").ok()?;
            return Some(Ended::StartTls);
        } else if upper.starts_with("HELO")
            || upper.starts_with("NOOP")
            || upper.starts_with("RSET")
        {
            b"250 ok\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = line[10..].trim().to_owned();
            b"250 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(line[8..].trim().to_owned());
            b"250 ok\r\n"
        } else if upper.starts_with("DATA") {
            input.get_mut().write_all(b"354 go ahead\r\n").ok()?;
            let data = smtp_data(&mut input)?;
            mails.push(Mail {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data,
                tls: secure,
            });
            b"250 queued\r\n"
        } else if upper.starts_with("QUIT") {
            input.get_mut().write_all(b"221 bye\r\n").ok()?;
            break;
        } else {
            b"502 not implemented\r\n"
        };
        input.get_mut().write_all(reply).ok()?;
        input.get_mut().flush().ok()?;
    }
    Some(Ended::Done)
}

/// The message after `DATA`, up to the lone dot (at most 10,000 lines).
fn smtp_data(input: &mut impl BufRead) -> Option<String> {
    let mut data = String::new();
    for _ in 0..10_000 {
        let mut line = String::new();
        if input.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line == "." {
            return Some(unfold(&data));
        }
        data.push_str(line.strip_prefix('.').unwrap_or(line));
        data.push('\n');
    }
    None
}

/// Joins folded header lines (a header line starting with white space continues the last);
/// the body is left as it is.
fn unfold(data: &str) -> String {
    let (head, body) = data.split_once("\n\n").unwrap_or((data, ""));
    format!(
        "{}\n\n{body}",
        head.replace("\n ", " ").replace("\n\t", " ")
    )
}

/// The webhook receiver.
pub struct WebhookSink {
    server: Server,
    posts: Arc<Mutex<Vec<Post>>>,
}

impl WebhookSink {
    pub fn start(addr: &str) -> WebhookSink {
        WebhookSink::failing_first(addr, 0)
    }

    /// Answers the first `failures` POSTs `503 Service Unavailable`, then 200.
    pub fn failing_first(addr: &str, failures: usize) -> WebhookSink {
        let posts = Arc::new(Mutex::new(Vec::new()));
        let kept = posts.clone();
        let server = Server::start(addr, move |stream| {
            let kept = kept.clone();
            // Kept-alive connections are served on their own thread.
            std::thread::spawn(move || http_session(stream, &kept, failures));
        });
        WebhookSink { server, posts }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.server.addr)
    }

    /// Every POST, in order, whatever it was answered.
    pub fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The POSTs answered 200.
    pub fn delivered(&self) -> Vec<Post> {
        self.posts()
            .into_iter()
            .filter(|p| p.status == 200)
            .collect()
    }
}

/// Requests of one connection (at most 100), each answered 200, or 503 while fewer than
/// `failures` POSTs were received.
fn http_session(stream: TcpStream, kept: &Mutex<Vec<Post>>, failures: usize) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut input = BufReader::new(stream);
    for _ in 0..100 {
        let mut request = String::new();
        if input.read_line(&mut request).unwrap_or(0) == 0 {
            return;
        }
        let path = request.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut headers = Vec::new();
        for _ in 0..100 {
            let mut line = String::new();
            if input.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0)
            .min(1 << 20);
        let mut body = vec![0; length];
        if input.read_exact(&mut body).is_err() {
            return;
        }
        let status = {
            let mut posts = kept.lock().unwrap_or_else(|p| p.into_inner());
            let status = if posts.len() < failures { 503 } else { 200 };
            posts.push(Post {
                status,
                path,
                headers,
                body,
            });
            status
        };
        let reply: &[u8] = if status == 200 {
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
        } else {
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
        };
        if out.write_all(reply).is_err() {
            return;
        }
    }
}
