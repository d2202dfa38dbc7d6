//! The pictures of `docs/tutorial.md`, taken from the live demo in headless Chromium so they
//! stay current (`docs/img/tutorial-*.png`), and the tutorial's steps done as a visitor does
//! them: log in as `admin`, watch the panel alive with the demo's traffic, click Listen on a
//! talking call (the demo's phone 2900 answers), add a phone with `callfleet device add`,
//! register a softphone (baresip) and log agent 1005 in by dialling `*11*1005*5555`, and read
//! the CDRs with the tutorial's `sqlite3` query. Addresses: the demo's, baresip on 127.0.0.40.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::browser::Browser;
use support::demo::Demo;
use support::phone::Phone;
use support::{require, serial, wait_until, workdir};

const PANEL: &str = "http://127.0.0.11:8080/";
const SOFTPHONE_IP: &str = "127.0.0.40";

/// `docs/img` in the checkout.
fn img_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/img")
}

/// JS: the calls table shows calls on more than one node, a caller waiting and one talking.
const LIVELY: &str = "var rows = Array.prototype.slice.call(document.querySelectorAll('#calls-body tr[data-call]'));\
    var nodes = {}; var states = [];\
    rows.forEach(function (r) { nodes[r.cells[0].textContent] = 1; states.push(r.cells[3].textContent); });\
    return Object.keys(nodes).length > 1 && states.indexOf('waiting') >= 0 && states.indexOf('talking') >= 0;";

/// Grows the window to the page's full height, then saves `docs/img/NAME.png`.
fn full_page(b: &Browser, name: &str) {
    for _ in 0..2 {
        let size = b.js(
            "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];",
            vec![],
        );
        let page = size[0].as_u64().unwrap_or(900).clamp(600, 4000);
        let chrome = size[1].as_u64().unwrap_or(0).min(400);
        b.resize(1280, (page + chrome) as u32);
    }
    let path = b.screenshot(name);
    eprintln!("saved {}", path.display());
}

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

#[test]
fn the_tutorial_works_on_the_live_demo_and_its_pictures_are_taken() {
    let _serial = serial();
    require("sqlite3", "sqlite3");
    let dir = workdir("tutorial");
    let mut demo = Demo::start(&dir);
    demo.wait_lively(Duration::from_secs(20))
        .unwrap_or_else(|why| panic!("the demo did not come alive: {why}"));
    let b = Browser::start(&dir, &img_dir());

    // Log in.
    b.goto(PANEL);
    assert!(b.url().contains("/login"), "no session: {}", b.url());
    b.type_into("#name", "admin");
    b.type_into("#password", &demo.admin_password());
    b.resize(1280, 560);
    b.screenshot("tutorial-login");
    b.resize(1280, 900);
    b.click("#login");
    let panel = b.wait_js(
        Duration::from_secs(10),
        "return !!document.getElementById('agents-grid');",
        vec![],
    );
    assert!(panel, "the panel did not open after login: {}", b.url());

    // The panel, alive: calls on several nodes, callers waiting, agents talking.
    let lively = b.wait_js(Duration::from_secs(20), LIVELY, vec![]);
    assert!(
        lively,
        "the panel's calls: {}",
        b.js(
            "return document.getElementById('calls-body').textContent;",
            vec![]
        )
    );

    // Listen: the user's phone (2900, the demo's) is filled in; the demo's phone answers.
    let device = b.js("return document.getElementById('my-device').value;", vec![]);
    assert_eq!(device, json!("2900"), "admin's phone");
    let listen = "button[data-action=\"listen\"]:not([disabled])";
    let enabled = b.wait_js(
        Duration::from_secs(20),
        "return !!document.querySelector(arguments[0]);",
        vec![json!(listen)],
    );
    assert!(enabled, "no talking call to listen to");
    let message = click_and_read(&b, listen);
    assert_eq!(message, ": listening on 2900");
    let answered = wait_until(Duration::from_secs(10), || {
        demo.traffic_log()
            .contains("phone 2900 (supervisor) answered a listen-in call")
    });
    assert!(answered.is_some(), "{}", demo.traffic_log());
    b.screenshot("tutorial-listen");

    // A softphone: add its device, register it, log agent 1005 in with *11*1005*5555.
    let add = Command::new(env!("CARGO_BIN_EXE_callfleet"))
        .args(["device", "add", "--config"])
        .arg(dir.join("main-a.toml"))
        .args(["--ext", "2005", "--password", "tutorial-2005"])
        .output()
        .expect("run callfleet device add");
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let registrar = "127.0.0.11:5060".parse().expect("address");
    let phone =
        Phone::start_with_ctrl_at(&dir, SOFTPHONE_IP, "2005", "tutorial-2005", registrar, 4446);
    assert!(
        phone.wait_registered(Duration::from_secs(15)),
        "the softphone did not register:\n{}",
        phone.log()
    );
    phone.dial("sip:*11*1005*5555@127.0.0.11:5060");
    let tile = "[data-testid=\"agent-1005\"]";
    let logged_in = b.wait_js(
        Duration::from_secs(20),
        "var t = document.querySelector(arguments[0]); return !!t && t.getAttribute('data-state') !== 'logged_out';",
        vec![json!(tile)],
    );
    assert!(logged_in, "agent 1005 is not logged in:\n{}", phone.log());
    b.js(
        "document.querySelector(arguments[0]).scrollIntoView({block: 'center'}); return null;",
        vec![json!(tile)],
    );
    b.screenshot("tutorial-softphone-agent");

    // The whole panel once the nodes' sparklines have a few points (10 s each), still busy.
    let sparks = b.wait_js(
        Duration::from_secs(40),
        "var p = document.querySelectorAll('#nodes-body svg.sparkline path'); if (p.length < 3) { return false; }\
         for (var i = 0; i < p.length; i++) { if ((p[i].getAttribute('d').match(/L/g) || []).length < 2) { return false; } }\
         return true;",
        vec![],
    );
    assert!(sparks, "the nodes' sparklines stayed empty");
    b.wait_js(Duration::from_secs(20), LIVELY, vec![]);
    b.js("window.scrollTo(0, 0); return null;", vec![]);
    full_page(&b, "tutorial-panel");

    // The CDRs, with the tutorial's query (the *11 call above has ended by now, or soon).
    let cdrs = || {
        let out = Command::new("sqlite3")
            .args(["-header", "-column"])
            .arg(dir.join("cluster.db"))
            .arg(
                "SELECT node, from_uri, to_uri, queue, agent, hangup_cause, hangup_side, \
                 (ended_at_ms - started_at_ms) / 1000 AS secs, redirected_from \
                 FROM cdrs ORDER BY id DESC LIMIT 5",
            )
            .output()
            .expect("run sqlite3");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let mut text = String::new();
    let read = wait_until(Duration::from_secs(20), || {
        text = cdrs();
        text.starts_with("node") && text.lines().count() >= 3
    });
    assert!(read.is_some(), "CDRs: {text}");
    eprintln!("{text}");

    drop(phone);
    drop(b);
    let status = demo.interrupt();
    assert!(status.success(), "demo exit status {status}");
}
