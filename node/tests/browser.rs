//! The supervisor panel in a real browser (headless Chromium through chromedriver), across two
//! nodes: a supervisor logs in on node B, watches an agent go available → ringing → in call
//! while node A holds the call (the page is never reloaded: the SSE stream redraws it), clicks
//! Listen, and the supervisor's baresip phone hears both parties. Also: Listen is disabled
//! until an agent answers, a refusal (somebody else's phone) shows on the page, a hostile agent
//! name is shown as text, pause and unpause work from the tile, logging out ends the session,
//! and the console has no errors but the one refused request. Screenshots of each state are
//! saved under `target/browser/`. Addresses: 127.0.14.x.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::json;
use support::audio::{tone_share, wav_samples};
use support::browser::Browser;
use support::phone::{device_add, Phone};
use support::queue::{member, queue, Db};
use support::uac::{Resp, Uac};
use support::{serial, wait_alive, wait_until, workdir, NodeProc, NodeSpec, Pg};

const NET: &str = "127.0.14";
const AGENT: &str = "1001";
const AGENT_PHONE: &str = "2001";
/// An agent whose name is markup: the panel must show it as text.
const HOSTILE_AGENT: &str = "1002";
const HOSTILE_NAME: &str = "<img src=x onerror=alert(1)>";
const SUPERVISOR_PHONE: &str = "2901";
const USER: &str = "sue";
const PASSWORD: &str = "pw-sue-browser";
const CALL_ID: &str = "browser-call-1";

fn ip(n: u8) -> String {
    format!("{NET}.{n}")
}

/// `target/browser`, where the screenshots are kept for review.
fn shots_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")))
        .join("browser")
}

/// A node whose `[http]` section gets `keys` before it starts.
fn node(dir: &Path, name: &str, host: u8, db: &str, keys: &str) -> NodeProc {
    let mut n = NodeProc::configure(
        dir,
        NodeSpec {
            name,
            role: "main",
            ip: &ip(host),
            db,
            capacity: 20,
            extra: "",
        },
    );
    let text = std::fs::read_to_string(&n.config).expect("read the node config");
    std::fs::write(
        &n.config,
        text.replacen("[http]\n", &format!("[http]\n{keys}"), 1),
    )
    .expect("write the node config");
    n.spawn();
    n
}

/// A caller (our UAC) queued in `sales` on node A, sending a 1000 Hz tone until told to stop.
struct Caller {
    ok: Resp,
    stop: Arc<AtomicBool>,
    talk: JoinHandle<Uac>,
}

impl Caller {
    fn call(node_a: &NodeProc) -> Caller {
        let mut uac = Uac::new(&ip(20), node_a.sip);
        let ok = uac
            .answered("sales", CALL_ID, Duration::from_secs(5))
            .expect("node A answers the queue call");
        let to = Uac::media_addr(&ok);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let talk = std::thread::spawn(move || {
            uac.listen(Some((to, 1000.0)), Duration::from_secs(60), |_| {
                flag.load(Ordering::Relaxed)
            });
            uac
        });
        Caller { ok, stop, talk }
    }

    fn hang_up(self) {
        self.stop.store(true, Ordering::Relaxed);
        let mut uac = self.talk.join().expect("caller thread");
        uac.in_dialog("BYE", CALL_ID, &self.ok, None);
    }
}

/// JS: whether agent `arguments[0]`'s tile is in one of `arguments[1]` (data-state) and
/// shows `arguments[2]` as its label.
const TILE_IS: &str = "var t = document.querySelector('[data-testid=\"agent-' + arguments[0] + '\"]');\
    if (!t) { return false; }\
    var what = t.querySelector('.what');\
    return arguments[1].indexOf(t.getAttribute('data-state')) >= 0 && !!what && what.textContent.indexOf(arguments[2]) === 0;";

/// JS: the tile's state and text, for failure messages.
const TILE_TEXT: &str =
    "var t = document.querySelector('[data-testid=\"agent-' + arguments[0] + '\"]');\
    return t ? t.getAttribute('data-state') + ': ' + t.textContent : 'no tile';";

fn wait_tile(b: &Browser, states: &[&str], label: &str, limit: Duration) {
    let ok = b.wait_js(
        limit,
        TILE_IS,
        vec![json!(AGENT), json!(states), json!(label)],
    );
    assert!(
        ok,
        "agent {AGENT}'s tile did not show {label:?} ({states:?}) within {limit:?}: {}",
        b.js(TILE_TEXT, vec![json!(AGENT)])
    );
}

/// The Listen button of the call.
const LISTEN: &str = "button[data-action=\"listen\"][data-call=\"browser-call-1\"]";

/// Clicks `css` and returns the page's message line that answers it, as `class: text`.
fn click_and_read(b: &Browser, css: &str) -> String {
    b.js(
        "var m = document.getElementById('message'); m.textContent = ''; m.className = ''; return null;",
        vec![],
    );
    b.click(css);
    let changed = b.wait_js(
        Duration::from_secs(10),
        "return document.getElementById('message').textContent !== '';",
        vec![],
    );
    assert!(changed, "no message on the page after clicking {css}");
    b.js(
        "var m = document.getElementById('message'); return m.className + ': ' + m.textContent;",
        vec![],
    )
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// The page was not reloaded since the marker was set (a reload starts a new window object).
fn still_same_page(b: &Browser) {
    let marker = b.js("return window.cfTestMarker || null;", vec![]);
    assert_eq!(marker, json!("set once"), "the panel page was reloaded");
}

/// Console entries at level SEVERE (errors, CSP violations, failed requests).
fn errors(console: &[String]) -> Vec<&String> {
    console.iter().filter(|l| l.starts_with("SEVERE")).collect()
}

/// Waits until `phone`'s log shows `n` calls ended.
fn wait_ended(phone: &Phone, n: usize, limit: Duration) -> bool {
    wait_until(limit, || {
        phone.log().matches("terminated (duration").count() >= n
    })
    .is_some()
}

#[test]
fn a_supervisor_watches_an_agent_in_the_browser_and_listens_in_across_nodes() {
    let _serial = serial();
    let dir = workdir("browser");
    let pg = Pg::fresh("browser");
    // Node A holds the call; node B serves the panel and, as a browser's host would, trusts
    // no loopback peer: the browser's session is its only credential. The nodes sign the
    // forwarded listen-in request with the cluster secret every test node has.
    let nodes = [
        node(&dir, "main-a", 1, &pg.url, ""),
        node(&dir, "main-b", 2, &pg.url, "trust_loopback = false\n"),
    ];
    wait_alive(&nodes[0], 2);
    let db = Db::connect(&pg.url);
    device_add(&nodes[0], AGENT_PHONE, "pw-agent", false);
    device_add(&nodes[0], SUPERVISOR_PHONE, "pw-sup", false);
    // The agent's phone rings until the test answers it, so the ringing state can be seen.
    let agent_phone =
        Phone::start_manual_with_ctrl(&dir, &ip(10), AGENT_PHONE, "pw-agent", &nodes[0], 4444);
    let supervisor = Phone::start(&dir, &ip(11), SUPERVISOR_PHONE, "pw-sup", &nodes[1]);
    for (device, phone) in [(AGENT_PHONE, &agent_phone), (SUPERVISOR_PHONE, &supervisor)] {
        let ok = wait_until(Duration::from_secs(15), || db.registered(device));
        assert!(ok.is_some(), "{device} did not register:\n{}", phone.log());
    }
    db.add_agent(AGENT, "1234");
    let hostile = callfleet_store::Agent::new(
        HOSTILE_AGENT,
        HOSTILE_NAME,
        &callfleet_store::pin::hash(HOSTILE_AGENT, "1234").expect("hash the PIN"),
        callfleet::now_ms(),
    );
    db.block(db.store.upsert_agent(&hostile))
        .expect("add the hostile agent");
    db.add_queue(&queue("sales", "ringall"));
    db.add_member(&member("sales", AGENT, 0, 0));
    db.add_member(&member("sales", HOSTILE_AGENT, 0, 1));
    db.login(AGENT, AGENT_PHONE);
    support::user_add(
        &nodes[1],
        USER,
        "supervisor",
        PASSWORD,
        Some(SUPERVISOR_PHONE),
    );

    let shots = shots_dir();
    let b = Browser::start(&dir, &shots);
    let panel = format!("http://{}/", nodes[1].http);

    // Log in on node B: the panel without a session sends the browser to the login page.
    b.goto(&panel);
    assert!(b.url().contains("/login"), "no session: {}", b.url());
    b.type_into("#name", USER);
    b.type_into("#password", PASSWORD);
    b.screenshot("01-login");
    b.click("#login");
    let shown = b.wait_js(
        Duration::from_secs(10),
        "return !!document.getElementById('agents-grid');",
        vec![],
    );
    assert!(shown, "the panel did not open after login: {}", b.url());
    let login_console = b.console();
    assert!(
        errors(&login_console).is_empty(),
        "errors in the login page's console: {login_console:?}"
    );
    b.js("window.cfTestMarker = 'set once'; return null;", vec![]);

    // Live from node B's own snapshot; the agent is available.
    let live = b.wait_js(
        Duration::from_secs(10),
        "var s = document.getElementById('status'); return !!s && s.textContent.indexOf('live (served by main-b') === 0;",
        vec![],
    );
    assert!(
        live,
        "status: {}",
        b.js(
            "return document.getElementById('status').textContent;",
            vec![]
        )
    );
    wait_tile(&b, &["available"], "available", Duration::from_secs(10));
    let device = b.js("return document.getElementById('my-device').value;", vec![]);
    assert_eq!(
        device,
        json!(SUPERVISOR_PHONE),
        "the listen-in phone is the user's"
    );
    b.screenshot("02-available");

    // The hostile name is text in the DOM, never an element, and no alert opened.
    let shown = b.js(
        "var t = document.querySelector('[data-testid=\"agent-' + arguments[0] + '\"] .who');\
         return [t ? t.textContent : null, document.querySelectorAll('main img').length];",
        vec![json!(HOSTILE_AGENT)],
    );
    assert_eq!(
        shown,
        json!([format!("{HOSTILE_AGENT} {HOSTILE_NAME}"), 0]),
        "the hostile name must show as text"
    );
    assert_eq!(b.alert_text(), None, "an alert opened");

    // A caller on node A: the same tile goes to ringing, then (answered) in call.
    let caller = Caller::call(&nodes[0]);
    wait_tile(
        &b,
        &["ringing", "reserved"],
        "ringing",
        Duration::from_secs(10),
    );
    still_same_page(&b);
    let not_yet = b.wait_js(
        Duration::from_secs(5),
        "var l = document.querySelector(arguments[0]); return !!l && l.disabled;",
        vec![json!(LISTEN)],
    );
    assert!(not_yet, "Listen must be disabled until an agent answers");
    b.screenshot("03-ringing");
    agent_phone.accept();
    wait_tile(&b, &["in_call"], "in call", Duration::from_secs(10));
    still_same_page(&b);
    let row = b.wait_js(
        Duration::from_secs(10),
        "var r = document.querySelector('tr[data-call=\"' + arguments[0] + '\"]');\
         var q = document.querySelector('[data-testid=\"queue-sales\"]');\
         return !!r && !!q && r.cells[0].textContent === 'main-a' && r.cells[3].textContent === 'talking'\
           && r.cells[5].textContent === arguments[1] && q.cells[1].textContent === '0';",
        vec![json!(CALL_ID), json!(AGENT)],
    );
    assert!(
        row,
        "the call row (held by main-a, talking to agent {AGENT}, nobody waiting): {}",
        b.js(
            "return document.getElementById('calls-body').textContent + ' | ' + document.getElementById('queues-body').textContent;",
            vec![]
        )
    );
    b.screenshot("04-in-call");
    // The row links to the live call's SIP ladder, served by node B from node A's memory.
    let ladder = b.js_async(
        "const done = arguments[arguments.length - 1]; \
         const a = document.querySelector('[data-testid=\"trace-' + arguments[0] + '\"]'); \
         if (!a) { done(null); return; } \
         fetch(a.href).then(async r => done([new URL(a.href).pathname, r.status, \
           (await r.text()).includes('INVITE')])).catch(e => done(String(e)));",
        vec![json!(CALL_ID)],
        Duration::from_secs(10),
    );
    assert_eq!(
        ladder,
        json!([format!("/calls/{CALL_ID}/trace"), 200, true]),
        "the live call's trace link"
    );
    // Redrawn from the stream, the hostile name is still text.
    let imgs = b.js(
        "return document.querySelectorAll('main img').length;",
        vec![],
    );
    assert_eq!(imgs, json!(0), "an element made from an agent's name");

    // Listen with somebody else's phone: a supervisor's audio goes to their own phone only,
    // and the refusal shows on the page.
    b.retype("#my-device", "2999");
    let message = click_and_read(&b, LISTEN);
    assert!(
        message.starts_with("error: refused (403): ") && message.contains("your own phone"),
        "listen-in with another phone: {message}"
    );
    // The browser logs every refused request; this one and nothing else.
    let console = b.console();
    let refused = format!("/api/v1/calls/{CALL_ID}/listen - Failed to load resource: the server responded with a status of 403");
    assert!(
        errors(&console).len() == 1 && errors(&console)[0].contains(&refused),
        "the console after the refusal: {console:?}"
    );
    // Listen: node B forwards to node A, which dials the supervisor's phone.
    b.retype("#my-device", SUPERVISOR_PHONE);
    let message = click_and_read(&b, LISTEN);
    assert_eq!(
        message,
        format!(": listening on {SUPERVISOR_PHONE}"),
        "listen-in from the panel"
    );
    let joined = wait_until(Duration::from_secs(8), || {
        supervisor.calls_with("caller") == 1
    });
    assert!(
        joined.is_some(),
        "the supervisor's phone did not take the call:\n{}",
        supervisor.log()
    );
    b.screenshot("05-listening");
    std::thread::sleep(Duration::from_secs(5));

    // The caller hangs up: the supervisor's phone gets BYE; the agent is freed.
    caller.hang_up();
    assert!(
        wait_ended(&supervisor, 1, Duration::from_secs(8)),
        "the call's end must BYE the supervisor:\n{}",
        supervisor.log()
    );
    // baresip's words for a BYE from the other side.
    assert!(
        supervisor
            .log()
            .contains("sip:caller@127.0.14.1:5060: session closed: Connection reset by peer"),
        "node A ends the supervisor's leg with a BYE:\n{}",
        supervisor.log()
    );
    let mut files = vec![];
    wait_until(Duration::from_secs(10), || {
        files = supervisor.heard_files();
        !files.is_empty()
    });
    let path = files
        .last()
        .unwrap_or_else(|| panic!("no recording by the supervisor's phone"));
    let (rate, heard) = wav_samples(path);
    assert_eq!(rate, 8000, "{}", path.display());
    let tail = &heard[heard.len() / 3..];
    let (s1000, s600) = (
        tone_share(tail, 1000.0, 8000),
        tone_share(tail, 600.0, 8000),
    );
    eprintln!("supervisor heard 1000 Hz {s1000:.3}, 600 Hz {s600:.3}");
    // The agent's phone plays a full-scale tone, the caller one at a quarter of that.
    assert!(
        s1000 > 0.02 && s600 > 0.3,
        "the supervisor hears the caller (1000 Hz {s1000:.3}) and the agent (600 Hz {s600:.3})"
    );
    wait_tile(&b, &["wrap_up", "available"], "", Duration::from_secs(10));
    let gone = b.wait_js(
        Duration::from_secs(10),
        "return !document.querySelector('tr[data-call=\"' + arguments[0] + '\"]');",
        vec![json!(CALL_ID)],
    );
    assert!(gone, "the ended call is still listed");
    still_same_page(&b);
    b.screenshot("06-after-the-call");

    // The tile's buttons work from the page too: pause, then unpause.
    let pause = format!("[data-testid=\"pause-{AGENT}\"]");
    let message = click_and_read(&b, &pause);
    assert_eq!(message, format!(": paused {AGENT}"));
    wait_tile(&b, &["paused"], "paused", Duration::from_secs(10));
    let message = click_and_read(&b, &pause);
    assert_eq!(message, format!(": unpaused {AGENT}"));
    wait_tile(&b, &["available"], "available", Duration::from_secs(10));
    still_same_page(&b);

    let console = b.console();
    eprintln!("console on the panel: {console:?}");
    assert!(
        errors(&console).is_empty(),
        "errors in the panel's console: {console:?}"
    );

    // Logging out ends the session: the panel sends the browser back to the login page.
    b.click("form[action=\"/logout\"] button");
    let out = b.wait_js(
        Duration::from_secs(10),
        "return location.pathname === '/login';",
        vec![],
    );
    assert!(out, "after log out: {}", b.url());
    b.goto(&panel);
    assert!(b.url().contains("/login"), "the session ended: {}", b.url());
    eprintln!("screenshots in {}", shots.display());
}
