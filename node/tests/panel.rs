//! The supervisor panel on a real node over PostgreSQL: 200 open event streams cost the
//! database one snapshot read per second, a change in SQL reaches the streams, and the page's
//! buttons (pause, force logout) work with a logged-in supervisor's session and CSRF token.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callfleet_store::AgentState;
use serde_json::Value;
use support::queue::{member, queue, Db};
use support::{serial, wait_until, workdir, NodeProc, NodeSpec, Pg};

const NET: &str = "127.0.12";
const VIEWERS: usize = 200;
const WINDOW: Duration = Duration::from_secs(5);

/// A node on PostgreSQL with queue `sales` and agents 1001 (available), 1002 (available),
/// 1003 (logged out), and supervisor `sue` logged in.
struct Setup {
    node: NodeProc,
    db: Db,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    cookie: String,
    _pg: Pg,
}

impl Setup {
    fn start(tag: &str, host: u8) -> Setup {
        let dir = workdir(&format!("panel-{tag}"));
        let pg = Pg::fresh(&format!("panel_{tag}"));
        let node = NodeProc::start(
            &dir,
            NodeSpec {
                name: &format!("panel-{tag}"),
                role: "main",
                ip: &format!("{NET}.{host}"),
                db: &pg.url,
                capacity: 50,
                extra: "",
            },
        );
        let db = Db::connect(&pg.url);
        db.add_queue(&queue("sales", "ringall"));
        for (i, ext) in ["1001", "1002", "1003"].into_iter().enumerate() {
            db.add_agent(ext, "1234");
            db.add_member(&member("sales", ext, 0, i as i64));
        }
        db.login("1001", "2001");
        db.login("1002", "2002");
        support::user_add(&node, "sue", "supervisor", "pw-sue-1", Some("2009"));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        let cookie = rt.block_on(login(&http, &node, "sue", "pw-sue-1"));
        Setup {
            node,
            db,
            rt,
            http,
            cookie,
            _pg: pg,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.node.http)
    }

    /// The panel page as the logged-in supervisor sees it.
    fn page(&self) -> String {
        let request = self
            .http
            .get(self.url("/"))
            .header("Cookie", &self.cookie)
            .send();
        self.rt.block_on(async {
            let response = request.await.expect("GET /");
            assert_eq!(response.status(), 200, "GET / with a session");
            response.text().await.expect("page body")
        })
    }

    /// The page once its first paint shows the agents (the snapshot read after provisioning).
    fn page_with_agents(&self) -> String {
        let mut page = String::new();
        let shown = wait_until(Duration::from_secs(10), || {
            page = self.page();
            page.contains("data-testid=\"agent-1003\"")
        });
        assert!(shown.is_some(), "the page never showed the agents:\n{page}");
        page
    }

    /// POSTs JSON the way the panel's script does: session cookie and CSRF header.
    fn post(&self, path: &str, csrf: &str, body: Value) -> u16 {
        let request = self
            .http
            .post(self.url(path))
            .header("Cookie", &self.cookie)
            .header("X-CSRF-Token", csrf)
            .json(&body)
            .send();
        self.rt
            .block_on(request)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
            .status()
            .as_u16()
    }

    /// Opens one event stream with the session cookie.
    fn open(&self) -> impl std::future::Future<Output = Stream> + Send + 'static {
        let request = self
            .http
            .get(self.url("/api/v1/panel/events"))
            .header("Cookie", &self.cookie)
            .send();
        async move {
            let response = request.await.expect("GET /api/v1/panel/events");
            assert_eq!(response.status(), 200, "event stream");
            Stream {
                response,
                buf: String::new(),
            }
        }
    }

    fn metric(&self, series: &str) -> f64 {
        self.node.metric(series)
    }
}

/// `POST /login`; returns the `Cookie` header value of the session.
async fn login(http: &reqwest::Client, node: &NodeProc, name: &str, password: &str) -> String {
    let response = http
        .post(format!("http://{}/login", node.http))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("name={name}&password={password}"))
        .send()
        .await
        .expect("POST /login");
    assert_eq!(response.status(), 303, "login answers with a redirect");
    let set_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("cf_session="))
        .unwrap_or_else(|| panic!("no session cookie in {:?}", response.headers()))
        .to_owned();
    set_cookie.split(';').next().unwrap_or_default().to_owned()
}

/// One open event stream.
struct Stream {
    response: reqwest::Response,
    buf: String,
}

impl Stream {
    /// The next `snapshot` event's data as JSON; `None` when the stream ends or fails.
    async fn next_snapshot(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                if !event.lines().any(|l| l == "event: snapshot") {
                    continue; // a keep-alive comment
                }
                let data = event.lines().find_map(|l| l.strip_prefix("data: "))?;
                return serde_json::from_str(data).ok();
            }
            let chunk = self.response.chunk().await.ok()??;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Events until `deadline`, counted; `None` if the stream ended before.
    async fn count_until(&mut self, deadline: tokio::time::Instant) -> Option<usize> {
        let mut n = 0;
        loop {
            match tokio::time::timeout_at(deadline, self.next_snapshot()).await {
                Err(_) => return Some(n),
                Ok(Some(_)) => n += 1,
                Ok(None) => return None,
            }
        }
    }

    /// Reads snapshots until `f` holds for one (up to `limit`); returns it.
    async fn wait_for(&mut self, limit: Duration, f: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.next_snapshot()).await {
                Ok(Some(snapshot)) if f(&snapshot) => return Some(snapshot),
                Ok(Some(_)) => {}
                _ => return None,
            }
        }
    }
}

/// Agent `ext`'s tile in a snapshot.
fn agent<'a>(snapshot: &'a Value, ext: &str) -> Option<&'a Value> {
    snapshot["agents"]
        .as_array()?
        .iter()
        .find(|a| a["extension"] == ext)
}

fn state_of(snapshot: &Value, ext: &str) -> String {
    agent(snapshot, ext)
        .and_then(|a| a["state"].as_str())
        .unwrap_or("missing")
        .to_owned()
}

#[test]
fn two_hundred_viewers_cost_the_database_one_read_per_second() {
    let _serial = serial();
    let s = Setup::start("viewers", 11);
    let page = s.page_with_agents();
    assert!(page.contains("data-testid=\"agent-1001\""), "{page}");
    assert!(
        page.contains("<meta name=\"csrf\""),
        "a session page has its token"
    );

    let connected = Arc::new(AtomicUsize::new(0));
    let (start_tx, start_rx) = tokio::sync::watch::channel(None::<tokio::time::Instant>);
    let clients: Vec<_> = (0..VIEWERS)
        .map(|_| {
            let open = s.open();
            let connected = connected.clone();
            let mut start = start_rx.clone();
            s.rt.spawn(async move {
                let mut stream = open.await;
                let first = stream.next_snapshot().await;
                connected.fetch_add(1, Ordering::SeqCst);
                let deadline = loop {
                    if let Some(deadline) = *start.borrow_and_update() {
                        break deadline;
                    }
                    if start.changed().await.is_err() {
                        return (first.is_some(), None);
                    }
                };
                (first.is_some(), stream.count_until(deadline).await)
            })
        })
        .collect();
    let all = wait_until(Duration::from_secs(30), || {
        connected.load(Ordering::SeqCst) == VIEWERS
    });
    assert!(
        all.is_some(),
        "only {} of {VIEWERS} streams got a first snapshot",
        connected.load(Ordering::SeqCst)
    );
    assert_eq!(
        s.metric("callfleet_panel_viewers"),
        VIEWERS as f64,
        "the node counts every open stream"
    );

    let reads_before = s.metric("callfleet_panel_snapshot_reads_total");
    let measured = Instant::now();
    start_tx.send_replace(Some(tokio::time::Instant::now() + WINDOW));
    let results: Vec<(bool, Option<usize>)> = s.rt.block_on(async {
        let mut out = Vec::new();
        for client in clients {
            out.push(client.await.expect("client task"));
        }
        out
    });
    let reads = s.metric("callfleet_panel_snapshot_reads_total") - reads_before;
    let secs = measured.elapsed().as_secs_f64();
    println!("{VIEWERS} viewers: {reads} snapshot reads in {secs:.1} s");

    let counts: Vec<usize> = results
        .iter()
        .map(|(first, n)| {
            assert!(first, "every stream starts with the current snapshot");
            n.expect("no stream ended early")
        })
        .collect();
    let fewest = counts.iter().copied().min().unwrap_or(0);
    assert!(
        fewest >= 3,
        "every viewer gets a snapshot about every second over {WINDOW:?}; fewest {fewest}"
    );
    // One read per second, whatever the number of viewers: 200 viewers reading SQL would be
    // hundreds.
    assert!(
        reads >= 2.0 && reads <= secs * 2.0 + 2.0,
        "{reads} snapshot reads in {secs:.1} s with {VIEWERS} viewers"
    );
    assert_eq!(
        s.metric("callfleet_panel_snapshot_read_errors_total"),
        0.0,
        "{}",
        s.node.log_text()
    );
    let gone = wait_until(Duration::from_secs(10), || {
        s.metric("callfleet_panel_viewers") == 0.0
    });
    assert!(gone.is_some(), "closed streams are counted out");

    // A change written straight to SQL reaches an open stream within a couple of reads.
    let mut stream = s.rt.block_on(s.open());
    let before =
        s.rt.block_on(stream.next_snapshot())
            .expect("first snapshot");
    assert_eq!(state_of(&before, "1002"), "available");
    let paused =
        s.db.block(s.db.store.set_paused("1002", true, callfleet::now_ms()))
            .expect("pause in SQL");
    assert!(paused);
    let changed = Instant::now();
    let seen =
        s.rt.block_on(stream.wait_for(Duration::from_secs(5), |snap| {
            state_of(snap, "1002") == "paused"
        }));
    assert!(seen.is_some(), "the pause did not reach the stream");
    println!(
        "SQL change seen on the stream after {:?}",
        changed.elapsed()
    );
    let metrics = s.node.metrics();
    for line in [
        "callfleet_queue_waiting{queue=\"sales\"} 0",
        "callfleet_queue_agents{queue=\"sales\",state=\"paused\"} 1",
        "callfleet_agents{state=\"logged_out\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[test]
fn the_panel_buttons_pause_and_log_out_with_the_session() {
    let _serial = serial();
    let s = Setup::start("buttons", 12);
    let page = s.page_with_agents();
    let csrf = page
        .split("<meta name=\"csrf\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("CSRF token on the page")
        .to_owned();
    assert!(
        page.contains("value=\"2009\""),
        "the user's phone is pre-filled"
    );
    let mut stream = s.rt.block_on(s.open());

    // Pause and unpause, as the tile's button does.
    let status = s.post(
        "/api/v1/agents/1001/pause",
        &csrf,
        serde_json::json!({"paused": true}),
    );
    assert!((200..300).contains(&status), "pause: {status}");
    let seen =
        s.rt.block_on(stream.wait_for(Duration::from_secs(5), |snap| {
            state_of(snap, "1001") == "paused"
        }));
    let seen = seen.expect("pause reaches the panel");
    assert_eq!(
        agent(&seen, "1001").map(|a| &a["paused"]),
        Some(&Value::Bool(true))
    );
    let status = s.post(
        "/api/v1/agents/1001/pause",
        &csrf,
        serde_json::json!({"paused": false}),
    );
    assert!((200..300).contains(&status), "unpause: {status}");

    // Force logout is refused while the agent holds a call, and works once it is free.
    let now = callfleet::now_ms();
    let reserved =
        s.db.block(s.db.store.transition_agent(
            "1002",
            &[AgentState::Available],
            AgentState::Reserved,
            now,
            Some(("call-x", "panel-buttons")),
        ))
        .expect("reserve agent");
    assert!(reserved);
    assert_eq!(
        s.post("/api/v1/agents/1002/logout", &csrf, serde_json::json!({})),
        409
    );
    let freed =
        s.db.block(s.db.store.transition_agent(
            "1002",
            &[AgentState::Reserved],
            AgentState::Available,
            callfleet::now_ms(),
            None,
        ))
        .expect("free agent");
    assert!(freed);
    assert_eq!(
        s.post("/api/v1/agents/1002/logout", &csrf, serde_json::json!({})),
        204
    );
    let seen =
        s.rt.block_on(stream.wait_for(Duration::from_secs(5), |snap| {
            state_of(snap, "1002") == "logged_out" && state_of(snap, "1001") == "available"
        }));
    assert!(seen.is_some(), "logout and unpause reach the panel");
}
