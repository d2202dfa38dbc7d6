//! The HTTP client: reply parsing on its own, then against scripted servers on real sockets
//! (replies in pieces, servers that close kept-alive connections, hang, or answer garbage).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;

use super::*;

fn reply(raw: &str) -> Result<Option<(Response, bool)>, TransportError> {
    parse(raw.as_bytes(), false)
}

fn done(status: u16, body: &str, keep: bool) -> Option<(Response, bool)> {
    Some((
        Response {
            status,
            body: body.as_bytes().to_vec(),
        },
        keep,
    ))
}

#[test]
fn parses_replies_framed_every_way() {
    let lease = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{\"token\":7,\"x\"}";
    assert_eq!(
        reply(lease).unwrap(),
        done(200, "{\"token\":7,\"x\"}", true)
    );
    // Every prefix is incomplete, never an error.
    for cut in 0..lease.len() {
        assert_eq!(reply(&lease[..cut]).unwrap(), None, "cut at {cut}");
    }
    assert_eq!(
        reply("HTTP/1.1 204 No Content\r\ndate: x\r\n\r\n").unwrap(),
        done(204, "", true)
    );
    assert_eq!(
        reply("HTTP/1.1 409 Conflict\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}").unwrap(),
        done(409, "{}", false)
    );
    let chunked = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;ext=1\r\n:1}\r\n0\r\ntrailer: t\r\n\r\n";
    assert_eq!(reply(chunked).unwrap(), done(200, "{\"a\":1}", true));
    for cut in 0..chunked.len() {
        assert_eq!(reply(&chunked[..cut]).unwrap(), None, "cut at {cut}");
    }
    // An interim reply before the real one.
    assert_eq!(
        reply("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx")
            .unwrap(),
        done(200, "x", true)
    );
    // HTTP/1.0: closed after the reply unless it says keep-alive.
    assert_eq!(
        reply("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nx").unwrap(),
        done(200, "x", false)
    );
    assert_eq!(
        reply("HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 1\r\n\r\nx").unwrap(),
        done(200, "x", true)
    );
    // No length: the body runs to the end of the connection.
    let unframed = "HTTP/1.1 503 Service Unavailable\r\n\r\n{\"error\":\"x\"}";
    assert_eq!(reply(unframed).unwrap(), None);
    assert_eq!(
        parse(unframed.as_bytes(), true).unwrap(),
        done(503, "{\"error\":\"x\"}", false)
    );
    // A complete reply on a connection the server then closed is still the reply.
    assert_eq!(
        parse(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx", true).unwrap(),
        done(200, "x", false)
    );
}

#[test]
fn refuses_what_is_not_a_lockd_reply() {
    let bad = |raw: &str| match reply(raw) {
        Err(e) => e,
        Ok(got) => panic!("{raw:?} parsed as {got:?}"),
    };
    assert!(matches!(
        bad("SSH-2.0-OpenSSH_9.6\r\n\r\n"),
        TransportError::Malformed(MalformedReply::Head(_))
    ));
    assert!(matches!(
        bad("HTTP/1.1 200 OK\r\ncontent-length: ten\r\n\r\n"),
        TransportError::Malformed(MalformedReply::ContentLength)
    ));
    assert!(matches!(
        bad("HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nxy"),
        TransportError::Malformed(MalformedReply::ContentLength)
    ));
    assert!(matches!(
        bad("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n"),
        TransportError::Malformed(MalformedReply::TransferEncoding)
    ));
    assert!(matches!(
        bad("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"),
        TransportError::Malformed(MalformedReply::Chunk)
    ));
    assert!(matches!(
        bad("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nxyz"),
        TransportError::Malformed(MalformedReply::Chunk)
    ));
    assert!(matches!(
        bad("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n"),
        TransportError::Malformed(MalformedReply::TrailingBytes)
    ));
    let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: y\r\n")).collect();
    assert!(matches!(
        bad(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")),
        TransportError::Malformed(MalformedReply::TooManyHeaders)
    ));
    assert!(matches!(
        bad(&format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            MAX_REPLY + 1
        )),
        TransportError::TooLarge { .. }
    ));
}

#[test]
fn requests_are_encoded_for_the_endpoint() {
    let endpoint = Endpoint::new("::1".into(), 7070, "[::1]:7070".into());
    let request = endpoint.encode(
        Method::Delete,
        "/v1/locks/agent:1",
        "cf1 1 2 3 4",
        b"{\"o\":1}",
    );
    assert_eq!(
        String::from_utf8(request).unwrap(),
        "DELETE /v1/locks/agent:1 HTTP/1.1\r\nhost: [::1]:7070\r\ncontent-type: application/json\r\nx-callfleet-signature: cf1 1 2 3 4\r\ncontent-length: 7\r\n\r\n{\"o\":1}"
    );
    let mut body = Vec::new();
    json_string(&mut body, "a\"b\\c\u{1}é");
    json_u64(&mut body, u64::MAX);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "\"a\\\"b\\\\c\\u0001é\"18446744073709551615"
    );
}

/// What a scripted server does with one request.
#[derive(Clone, Copy)]
enum Act {
    /// Answers `raw`, `piece` bytes per write with a pause between writes.
    Reply { raw: &'static str, piece: usize },
    /// Answers `raw` (meant to be a part of a reply) and closes the connection.
    Cut(&'static str),
    /// Closes the connection without answering.
    Close,
    /// Never answers (holds the connection open).
    Hang,
}

const LEASE: &str = "HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\n{\"token\":42}\n";

/// A server on `ip` that reads requests and acts on the n-th one it gets (over all
/// connections) by `script(n)`; counts the connections it accepted.
async fn scripted(ip: &str, script: fn(usize) -> Act) -> (Endpoint, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let requests = requests.clone();
            tokio::spawn(async move {
                let mut held = Vec::new();
                while read_request(&mut sock).await {
                    match script(requests.fetch_add(1, Ordering::SeqCst)) {
                        Act::Reply { raw, piece } => {
                            for part in raw.as_bytes().chunks(piece) {
                                if sock.write_all(part).await.is_err() {
                                    return;
                                }
                                tokio::time::sleep(Duration::from_millis(2)).await;
                            }
                        }
                        Act::Cut(raw) => {
                            let _ = sock.write_all(raw.as_bytes()).await;
                            return;
                        }
                        Act::Close => return,
                        Act::Hang => {
                            held.push(sock);
                            std::future::pending::<()>().await;
                            return;
                        }
                    }
                }
            });
        }
    });
    let endpoint = Endpoint::new(addr.ip().to_string(), addr.port(), addr.to_string());
    (endpoint, accepted)
}

/// Reads one request (head and `content-length` body); false at the end of the connection.
async fn read_request(sock: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(n)) = req.parse(&buf) {
            let length: usize = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                .unwrap_or(0);
            if buf.len() >= n + length {
                return true;
            }
        }
        match sock.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
    }
}

const DEADLINE: Duration = Duration::from_secs(2);

async fn post(endpoint: &Endpoint) -> Result<Response, TransportError> {
    endpoint
        .request(Method::Post, "/v1/locks/a", "cf1 x", b"{}", DEADLINE)
        .await
}

fn lease() -> Response {
    Response {
        status: 200,
        body: b"{\"token\":42}\n".to_vec(),
    }
}

#[tokio::test]
async fn a_reply_in_pieces_and_a_kept_alive_connection() {
    let (endpoint, accepted) = scripted("127.0.20.1", |_| Act::Reply {
        raw: LEASE,
        piece: 5,
    })
    .await;
    for _ in 0..3 {
        assert_eq!(post(&endpoint).await.unwrap(), lease());
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(endpoint.idle_count(), 1);
}

#[tokio::test]
async fn connection_close_is_honoured() {
    let (endpoint, accepted) = scripted("127.0.20.2", |_| Act::Reply {
        raw: "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 13\r\n\r\n{\"token\":42}\n",
        piece: usize::MAX,
    })
    .await;
    for _ in 0..3 {
        assert_eq!(post(&endpoint).await.unwrap(), lease());
        assert_eq!(endpoint.idle_count(), 0);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_kept_alive_connection_the_server_closed_is_replaced() {
    // Request 1 is answered; request 2, on the kept-alive connection, is met with a close
    // (like a lockd that restarted meanwhile) and is sent again on a new connection.
    let (endpoint, accepted) = scripted("127.0.20.3", |n| match n {
        1 => Act::Close,
        _ => Act::Reply {
            raw: LEASE,
            piece: usize::MAX,
        },
    })
    .await;
    assert_eq!(post(&endpoint).await.unwrap(), lease());
    assert_eq!(post(&endpoint).await.unwrap(), lease());
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert_eq!(endpoint.idle_count(), 1);
}

#[tokio::test]
async fn a_new_connection_closed_before_the_reply_is_an_error() {
    let (endpoint, accepted) = scripted("127.0.20.4", |_| Act::Close).await;
    assert!(matches!(post(&endpoint).await, Err(TransportError::Closed)));
    // Not retried: the request may have been carried out.
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(endpoint.idle_count(), 0);
}

#[tokio::test]
async fn a_reply_cut_short_is_an_error_and_not_retried() {
    let (endpoint, accepted) = scripted("127.0.20.5", |n| match n {
        0 => Act::Reply {
            raw: LEASE,
            piece: usize::MAX,
        },
        1 => Act::Cut("HTTP/1.1 200 OK\r\ncontent-le"),
        _ => Act::Cut("HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\n{\"tok"),
    })
    .await;
    assert_eq!(post(&endpoint).await.unwrap(), lease());
    // Half a head, then the server closes: on the kept-alive connection, but the server
    // had begun to answer, so the request is not sent again.
    assert!(matches!(post(&endpoint).await, Err(TransportError::Closed)));
    assert_eq!(endpoint.idle_count(), 0);
    // Half a body on a new connection.
    assert!(matches!(post(&endpoint).await, Err(TransportError::Closed)));
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert_eq!(endpoint.idle_count(), 0);
}

#[tokio::test]
async fn a_silent_server_times_out_and_its_connection_is_dropped() {
    let (endpoint, accepted) = scripted("127.0.20.6", |n| match n {
        0 => Act::Hang,
        _ => Act::Reply {
            raw: LEASE,
            piece: usize::MAX,
        },
    })
    .await;
    let deadline = Duration::from_millis(100);
    let got = endpoint
        .request(Method::Put, "/v1/locks/a", "cf1 x", b"{}", deadline)
        .await;
    assert!(
        matches!(got, Err(TransportError::Timeout(d)) if d == deadline),
        "{got:?}"
    );
    assert_eq!(endpoint.idle_count(), 0);
    // The next request opens a new connection rather than wait behind the lost reply.
    assert_eq!(post(&endpoint).await.unwrap(), lease());
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn garbage_is_an_error_and_its_connection_is_dropped() {
    let (endpoint, _) = scripted("127.0.20.7", |n| match n {
        0 => Act::Reply {
            raw: "220 smtp.example ESMTP\r\n\r\n",
            piece: usize::MAX,
        },
        _ => Act::Reply {
            raw: LEASE,
            piece: usize::MAX,
        },
    })
    .await;
    assert!(matches!(
        post(&endpoint).await,
        Err(TransportError::Malformed(MalformedReply::Head(_)))
    ));
    assert_eq!(endpoint.idle_count(), 0);
    assert_eq!(post(&endpoint).await.unwrap(), lease());
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let listener = std::net::TcpListener::bind(("127.0.20.8", 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let endpoint = Endpoint::new(addr.ip().to_string(), addr.port(), addr.to_string());
    assert!(matches!(
        post(&endpoint).await,
        Err(TransportError::Connect(_))
    ));
}

#[tokio::test]
async fn concurrent_requests_use_a_connection_each_and_keep_them() {
    let (endpoint, accepted) = scripted("127.0.20.9", |_| Act::Reply {
        raw: LEASE,
        piece: 20,
    })
    .await;
    let endpoint = Arc::new(endpoint);
    for _ in 0..3 {
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let endpoint = endpoint.clone();
            tasks.push(tokio::spawn(async move { post(&endpoint).await }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), lease());
        }
    }
    let opened = accepted.load(Ordering::SeqCst);
    assert!((1..=4).contains(&opened), "{opened} connections");
    assert_eq!(endpoint.idle_count(), opened);
}
