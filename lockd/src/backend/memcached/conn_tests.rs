//! The pipelined connection against a scripted memcached on 127.0.0.x (which splits,
//! garbles, refuses or withholds replies as a test asks) and against the real one.

use std::sync::atomic::AtomicUsize;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

use super::*;

/// One command as the scripted memcached read it.
struct Command {
    verb: String,
    key: String,
    opaque: String,
}

/// What the scripted memcached does with a command.
enum Answer {
    Send(Vec<u8>),
    /// Sends the bytes one at a time, pausing in between, so they arrive in pieces.
    Dribble(Vec<u8>),
    Close,
    Silence,
}

struct Fake {
    addr: String,
    accepted: Arc<AtomicUsize>,
    received: Arc<AtomicUsize>,
}

/// A scripted memcached on `ip`: answers each command with `script(command)`.
async fn fake(ip: &str, script: fn(&Command) -> Answer) -> Fake {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicUsize::new(0));
    let (a, r) = (accepted.clone(), received.clone());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            sock.set_nodelay(true).unwrap();
            tokio::spawn(serve(sock, script, r.clone()));
        }
    });
    Fake {
        addr,
        accepted,
        received,
    }
}

async fn serve(sock: TcpStream, script: fn(&Command) -> Answer, received: Arc<AtomicUsize>) {
    let (read, mut write) = sock.into_split();
    let mut read = BufReader::new(read);
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let words: Vec<&str> = line.trim_end().split(' ').collect();
        if words[0] == "ms" {
            let mut data = vec![0; words[2].parse::<usize>().unwrap() + 2];
            read.read_exact(&mut data).await.unwrap();
        }
        received.fetch_add(1, Ordering::SeqCst);
        let opaque = words.iter().find_map(|w| w.strip_prefix('O')).unwrap_or("");
        let command = Command {
            verb: words[0].into(),
            key: words.get(1).copied().unwrap_or("").into(),
            opaque: opaque.into(),
        };
        match script(&command) {
            Answer::Send(bytes) => write.write_all(&bytes).await.unwrap(),
            Answer::Dribble(bytes) => {
                for b in bytes {
                    write.write_all(&[b]).await.unwrap();
                    tokio::time::sleep(Duration::from_micros(300)).await;
                }
            }
            Answer::Close => return,
            Answer::Silence => {}
        }
    }
}

/// What a well-behaved memcached answers; `mg` returns the key as the value.
fn proper(c: &Command) -> Vec<u8> {
    let o = &c.opaque;
    match c.verb.as_str() {
        "mg" => format!("VA {} c7 O{o}\r\n{}\r\n", c.key.len(), c.key),
        "ms" => format!("HD c8 O{o}\r\n"),
        "md" => format!("HD O{o}\r\n"),
        "ma" => format!("VA 2 O{o}\r\n42\r\n"),
        _ => "VERSION 1.6.99\r\n".into(),
    }
    .into_bytes()
}

/// Answers by the key: most keys properly, some with what the key names.
fn by_key(c: &Command) -> Answer {
    let o = &c.opaque;
    let text = |t: String| Answer::Send(t.into_bytes());
    match c.key.as_str() {
        "ns" if c.verb == "ms" => text(format!("NS c0 O{o}\r\n")),
        "ex" => text(format!("EX c0 O{o}\r\n")),
        "nf" => text(format!("NF c0 O{o}\r\n")),
        "en" => text(format!("EN O{o}\r\n")),
        "step" => text(format!("EN O{}1\r\n", c.opaque)),
        "garbage" => text("OK\r\n".into()),
        "novalue-end" => text(format!("VA 1 c1 O{o}\r\nab\r\n")),
        "client" => text("CLIENT_ERROR bad command line format\r\n".into()),
        "unknown" => text("ERROR\r\n".into()),
        "server" => text("SERVER_ERROR out of memory storing object\r\n".into()),
        "twice" => Answer::Send([proper(c), proper(c)].concat()),
        "close" => Answer::Close,
        "silent" => Answer::Silence,
        "zero-cas" => text(format!("VA 1 c0 O{o}\r\nx\r\n")),
        "nan" if c.verb == "ma" => text(format!("VA 2 O{o}\r\nxy\r\n")),
        _ if c.key.starts_with("dribble") => Answer::Dribble(proper(c)),
        _ => Answer::Send(proper(c)),
    }
}

fn quick(addr: &str) -> Memcached {
    Memcached::with_options(addr.to_owned(), 1, Duration::from_millis(300))
}

#[tokio::test]
async fn pipelined_requests_each_get_their_own_reply() {
    let fake = fake("127.0.0.41", by_key).await;
    // Dribbled replies take a while: a deadline that leaves room for them.
    let mc = Memcached::with_options(fake.addr.clone(), 1, Duration::from_secs(5));
    for (prefix, n) in [("k", 200), ("dribble", 4)] {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let mc = mc.clone();
                tokio::spawn(async move {
                    let key = format!("{prefix}:{i}");
                    let got = mc.conn(&key).await?.get(&key).await?;
                    Ok::<_, BackendError>((key, got))
                })
            })
            .collect();
        for task in tasks {
            let (key, got) = task.await.unwrap().unwrap();
            let (data, cas) = got.unwrap();
            assert_eq!(String::from_utf8(data).unwrap(), key);
            assert_eq!(cas.value, 7);
        }
    }
    assert_eq!(
        fake.accepted.load(Ordering::SeqCst),
        1,
        "one shared connection"
    );
}

#[tokio::test]
async fn every_reply_of_every_command() {
    let fake = fake("127.0.0.42", by_key).await;
    let conn = quick(&fake.addr).conn("k").await.unwrap();
    assert!(!conn.reused());
    let counter = ("c", 1);
    assert_eq!(
        conn.add_and_draw("k", b"v", 3, counter).await.unwrap(),
        (Some(conn.cas(8)), 42)
    );
    assert!(conn.reused());
    assert_eq!(
        conn.add_and_draw("ns", b"v", 3, counter).await.unwrap(),
        (None, 42)
    );
    let mine = conn.cas(5);
    let stores = [
        ("k", Cas::Done(Some(conn.cas(8)))),
        ("ex", Cas::Changed),
        ("nf", Cas::Gone),
    ];
    for (key, want) in stores {
        assert_eq!(
            conn.set_cas(key, b"v", 3, mine).await.unwrap(),
            want,
            "{key}"
        );
        let swapped = conn.swap_and_draw(key, b"v", (3, mine), counter).await;
        assert_eq!(swapped.unwrap(), (want, 42), "{key}");
    }
    let deletes = [
        ("k", Cas::Done(None)),
        ("ex", Cas::Changed),
        ("nf", Cas::Gone),
    ];
    for (key, want) in deletes {
        assert_eq!(conn.delete_cas(key, mine).await.unwrap(), want, "{key}");
    }
    assert_eq!(conn.get("en").await.unwrap(), None);
    conn.version().await.unwrap();
}

/// What a request gets when memcached answers badly.
#[derive(Debug)]
enum Expect {
    Broken(ConnectionError),
    Unexpected(&'static str),
    Server(&'static str),
    TimedOut,
    /// The request got its reply.
    Fine,
}

impl Expect {
    fn check(&self, got: Result<Option<(Vec<u8>, ItemCas)>, BackendError>) -> bool {
        match (self, got) {
            (Expect::Fine, Ok(_)) => true,
            (Expect::Broken(want), Err(BackendError::Connection { source, .. })) => *want == source,
            (Expect::Unexpected(want), Err(BackendError::Unexpected { reply, .. })) => {
                reply.contains(want)
            }
            (Expect::Server(want), Err(BackendError::Server { message, .. })) => message == *want,
            (Expect::TimedOut, Err(BackendError::Timeout { op, .. })) => op == "mg",
            _ => false,
        }
    }
}

#[tokio::test]
async fn bad_replies_fail_the_request_and_maybe_the_connection() {
    use ConnectionError::{Closed, OutOfStep, Protocol};
    let garbled = |reason| Expect::Broken(Protocol { reason });
    let out_of_step = OutOfStep {
        expected: Some(0),
        got: Some(1),
    };
    // (key, what the request gets, whether the connection is replaced)
    let cases = [
        ("step", Expect::Broken(out_of_step), true),
        ("garbage", garbled(ProtocolError::UnknownReply), true),
        ("novalue-end", garbled(ProtocolError::BadValueEnd), true),
        (
            "client",
            Expect::Unexpected("CLIENT_ERROR bad command line format"),
            true,
        ),
        ("unknown", Expect::Unexpected("ERROR"), true),
        ("close", Expect::Broken(Closed), true),
        ("silent", Expect::TimedOut, true),
        (
            "server",
            Expect::Server("out of memory storing object"),
            false,
        ),
        ("zero-cas", Expect::Unexpected("-C"), false),
        ("ex", Expect::Unexpected("Exists"), false),
        // The request got its reply; the extra one closes the connection after.
        ("twice", Expect::Fine, true),
    ];
    for (i, (key, expect, replaced)) in cases.into_iter().enumerate() {
        let fake = fake(&format!("127.0.0.{}", 100 + i), by_key).await;
        let mc = quick(&fake.addr);
        let got = mc.conn(key).await.unwrap().get(key).await;
        let shown = format!("{got:?}");
        assert!(expect.check(got), "{key}: {shown}, expected {expect:?}");
        // The next request works, on a new connection if the last one could not be trusted.
        let next = mc.conn("fine").await.unwrap();
        assert!(next.get("fine").await.unwrap().is_some(), "{key}");
        let connections = if replaced { 2 } else { 1 };
        assert_eq!(fake.accepted.load(Ordering::SeqCst), connections, "{key}");
    }
}

#[tokio::test]
async fn requests_waiting_on_a_connection_that_fails_all_fail() {
    let fake = fake("127.0.0.43", by_key).await;
    let mc = quick(&fake.addr);
    let conn = mc.conn("x").await.unwrap();
    let silent: Vec<_> = (0..5)
        .map(|_| {
            let conn = conn.clone();
            tokio::spawn(async move { conn.get("silent").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // memcached closes the connection with five commands unanswered.
    let closed = conn.get("close").await;
    assert!(
        matches!(closed, Err(BackendError::Connection { .. })),
        "{closed:?}"
    );
    for task in silent {
        let got = task.await.unwrap();
        assert!(
            matches!(
                got,
                Err(BackendError::Connection {
                    source: ConnectionError::Closed,
                    ..
                })
            ),
            "{got:?}"
        );
    }
    // A counter drawn on the new connection is read properly.
    let conn = mc.conn("x").await.unwrap();
    let drawn = conn.add_and_draw("nan", b"v", 3, ("nan", 1)).await;
    assert!(
        matches!(
            drawn,
            Err(BackendError::Corrupt {
                reason: "the token counter is not a number",
                ..
            })
        ),
        "{drawn:?}"
    );
}

#[tokio::test]
async fn a_cas_value_is_only_sent_on_the_connection_that_read_it() {
    let fake = fake("127.0.0.44", by_key).await;
    let mc = quick(&fake.addr);
    let first = mc.conn("k").await.unwrap();
    let (_, cas) = first.get("k").await.unwrap().unwrap();
    assert!(first.get("close").await.is_err());
    let second = mc.conn("k").await.unwrap();
    assert_ne!(first.shared.id, second.shared.id);
    let sent = fake.received.load(Ordering::SeqCst);
    assert_eq!(
        second.set_cas("k", b"v", 3, cas).await.unwrap(),
        Cas::Changed
    );
    assert_eq!(second.delete_cas("k", cas).await.unwrap(), Cas::Changed);
    let swapped = second.swap_and_draw("k", b"v", (3, cas), ("c", 1)).await;
    assert_eq!(swapped.unwrap(), (Cas::Changed, 0));
    assert_eq!(
        fake.received.load(Ordering::SeqCst),
        sent,
        "nothing was sent"
    );
    // Its own CAS values it does send.
    let (_, cas) = second.get("k").await.unwrap().unwrap();
    assert_eq!(second.delete_cas("k", cas).await.unwrap(), Cas::Done(None));
}

#[tokio::test]
async fn keys_spread_over_the_connections_and_stay_on_theirs() {
    let fake = fake("127.0.0.45", by_key).await;
    let mc = Memcached::with_options(fake.addr.clone(), 4, Duration::from_millis(300));
    let mut ids = std::collections::HashSet::new();
    for i in 0..64 {
        let key = format!("agent:{i}");
        let conn = mc.conn(&key).await.unwrap();
        assert_eq!(mc.conn(&key).await.unwrap().shared.id, conn.shared.id);
        ids.insert(conn.shared.id);
    }
    assert_eq!(ids.len(), 4);
    assert_eq!(slot_of("anything", 1), 0);
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    // Nothing listens on port 1: the connection is refused at once.
    let got = quick("127.0.0.1:1").conn("k").await;
    assert!(
        matches!(&got, Err(BackendError::Connect { addr, .. }) if addr == "127.0.0.1:1"),
        "{got:?}"
    );
}

/// `HOST:PORT` of the memcached the tests share (see `tests/support`).
fn real_memcached() -> String {
    std::env::var("CALLFLEET_TEST_MEMCACHED").unwrap_or_else(|_| "127.0.0.1:11211".into())
}

#[tokio::test]
async fn against_real_memcached() {
    let mc = Memcached::new(real_memcached());
    let p = format!("t{:016x}", rand::random::<u64>());
    let (key, counter) = (format!("{p}:k"), format!("{p}#c"));
    let conn = mc.conn(&key).await.unwrap();
    // A missing counter is created at the seed, then counts up.
    let (cas, first) = conn
        .add_and_draw(&key, b"one", 5, (&counter, 1000))
        .await
        .unwrap();
    let cas = cas.unwrap();
    assert_eq!(first, 1000);
    let (again, second) = conn
        .add_and_draw(&key, b"two", 5, (&counter, 1000))
        .await
        .unwrap();
    assert_eq!((again, second), (None, 1001));
    let (value, read) = conn.get(&key).await.unwrap().unwrap();
    assert_eq!((value.as_slice(), read), (&b"one"[..], cas));
    let Cas::Done(Some(newer)) = conn.set_cas(&key, b"three", 5, cas).await.unwrap() else {
        panic!("set_cas");
    };
    assert_eq!(
        conn.set_cas(&key, b"four", 5, cas).await.unwrap(),
        Cas::Changed
    );
    assert_eq!(conn.delete_cas(&key, cas).await.unwrap(), Cas::Changed);
    assert_eq!(conn.delete_cas(&key, newer).await.unwrap(), Cas::Done(None));
    assert_eq!(conn.delete_cas(&key, newer).await.unwrap(), Cas::Gone);
    assert_eq!(conn.get(&key).await.unwrap(), None);
    conn.version().await.unwrap();

    // Many requests at once on the one connection: every add wins its own key, and every
    // draw is distinct.
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let (mc, key, counter) = (mc.clone(), format!("{p}:{i}"), counter.clone());
            tokio::spawn(async move {
                let conn = mc.conn(&key).await?;
                conn.add_and_draw(&key, b"v", 5, (&counter, 1000)).await
            })
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for task in tasks {
        let (cas, token) = task.await.unwrap().unwrap();
        assert!(cas.is_some());
        assert!(tokens.insert(token), "{token} drawn twice");
    }
    assert_eq!(tokens.iter().min(), Some(&1002));
    assert_eq!(tokens.iter().max(), Some(&1301));
}
