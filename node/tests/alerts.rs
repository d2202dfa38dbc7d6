//! Alerts end to end: real nodes, a real lockd over memcached, real PostgreSQL servers, and
//! the notifications caught by an SMTP sink and a webhook receiver of the test's own.
//!
//! - `kill -9` of a node: one e-mail and one webhook naming it within 30 s, from one of the
//!   two main nodes (never both), every panel showing the alert; then one "resolved" of each
//!   after it starts again.
//! - PostgreSQL stopped (a server of the test's own): each node sends its own
//!   "database unreachable", then its end when the server is back; the webhook refuses the
//!   first POST (503) and gets it again.

mod support;

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use support::browser::Browser;
use support::lockd::{memcached, Lockd};
use support::pgserver::PgServer;
use support::sinks::{Mail, Post, SmtpSink, WebhookSink};
use support::{
    http_get, serial, user_add, wait_alive, wait_until, workdir, NodeProc, NodeSpec, Pg,
};

const SECRET: &str = "alert-test-secret-0123456789";

/// `[alerts]` for test nodes: evaluations every second, node down after 3 s, resolved after
/// 3 s clear; disks alert only when full, so the host's disks never get in the way.
fn alerts_toml(smtp: &SmtpSink, hook: &WebhookSink, lock_urls: &[&str]) -> String {
    let urls: Vec<String> = lock_urls.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "[lock]\nurls = [{}]\n\
         [alerts]\ninterval = \"1s\"\nclear_after = \"3s\"\nnode_down_after = \"3s\"\n\
         database_after = \"3s\"\nlockd_after = \"3s\"\ndisk_warning_pct = 100.0\n\
         disk_critical_pct = 100.0\n\
         [alerts.email]\nserver = \"{}\"\nport = {}\nfrom = \"callfleet <cf@example.com>\"\n\
         to = [\"oncall@example.com\"]\ntimeout = \"5s\"\n\
         [[alerts.webhook]]\nurl = \"{}\"\nsecret = \"{SECRET}\"\ntimeout = \"3s\"\n",
        urls.join(", "),
        smtp.addr().ip(),
        smtp.addr().port(),
        hook.url(),
    )
}

/// The notices of every webhook POST delivered (answered 200), each signature checked.
fn notices(hook: &WebhookSink) -> Vec<serde_json::Value> {
    hook.delivered().iter().flat_map(checked).collect()
}

fn checked(post: &Post) -> Vec<serde_json::Value> {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("HMAC key");
    mac.update(&post.body);
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        post.header("x-callfleet-signature"),
        Some(want.as_str()),
        "webhook signature over the body"
    );
    assert_eq!(post.header("content-type"), Some("application/json"));
    let json = post.json();
    assert_eq!(json["source"], "callfleet");
    json["alerts"].as_array().cloned().unwrap_or_default()
}

fn count(notices: &[serde_json::Value], kind: &str, subject: &str, status: &str) -> usize {
    notices
        .iter()
        .filter(|n| n["kind"] == kind && n["subject"] == subject && n["status"] == status)
        .count()
}

fn mails_with(mails: &[Mail], needle: &str) -> usize {
    mails.iter().filter(|m| m.data.contains(needle)).count()
}

/// Waits `limit` for `f`, failing with `what` and the notifications seen.
fn expect(
    limit: Duration,
    what: &str,
    hook: &WebhookSink,
    smtp: &SmtpSink,
    f: impl FnMut() -> bool,
) {
    if wait_until(limit, f).is_none() {
        panic!(
            "{what} within {limit:?}; webhooks: {:#?}; mails: {:#?}",
            notices(hook),
            smtp.mails()
        );
    }
}

#[test]
fn a_killed_node_is_reported_once_by_mail_and_webhook_then_resolved() {
    let _serial = serial();
    let dir = workdir("alerts-node-down");
    let pg = Pg::fresh("alerts");
    let lockd = Lockd::start(
        &dir,
        "127.0.30.10:7070",
        &format!("memcached://{}", memcached()),
    );
    let smtp = SmtpSink::start("127.0.30.20:2525");
    let hook = WebhookSink::start("127.0.30.21:8080");
    let extra = alerts_toml(&smtp, &hook, &[&lockd.url]);
    let spec = |name, role, ip| NodeSpec {
        name,
        role,
        ip,
        db: &pg.url,
        capacity: 10,
        extra: &extra,
    };
    let a = NodeProc::start(&dir, spec("alert-a", "main", "127.0.30.1"));
    let b = NodeProc::start(&dir, spec("alert-b", "main", "127.0.30.2"));
    let mut c = NodeProc::start(&dir, spec("alert-c", "extra", "127.0.30.3"));
    wait_alive(&a, 3);
    wait_alive(&b, 3);

    // A supervisor has node b's panel open: the strip appears and goes with the alert.
    user_add(&b, "sup", "supervisor", "sup-password-1", None);
    let browser = Browser::start(&dir, &dir.join("shots"));
    browser.goto(&format!("http://{}/", b.http));
    browser.type_into("#name", "sup");
    browser.type_into("#password", "sup-password-1");
    browser.click("#login");
    let strip_hidden = "const s = document.getElementById('alerts'); return !!s && s.hidden;";
    assert!(
        browser.wait_js(Duration::from_secs(10), strip_hidden, vec![]),
        "the panel opens with no alert shown"
    );

    c.kill9();
    let killed = Instant::now();
    expect(
        Duration::from_secs(30),
        "a node_down webhook and e-mail naming alert-c",
        &hook,
        &smtp,
        || {
            count(&notices(&hook), "node_down", "alert-c", "firing") > 0
                && mails_with(&smtp.mails(), "node alert-c stopped heartbeating") > 0
        },
    );
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(30), "alerted after {took:?}");
    let firing = notices(&hook);
    let notice = firing
        .iter()
        .find(|n| n["kind"] == "node_down")
        .expect("the node_down notice");
    assert_eq!(notice["node"], "alert-c");
    assert_eq!(notice["severity"], "critical");
    let mail = smtp.mails().into_iter().next().expect("the e-mail");
    assert!(
        mail.subject()
            .contains("CRITICAL: node alert-c stopped heartbeating"),
        "{mail:?}"
    );
    assert_eq!(mail.to, vec!["<oncall@example.com>".to_owned()]);

    // Every panel shows it, whichever node serves it.
    for node in [&a, &b] {
        let ok = wait_until(Duration::from_secs(5), || {
            http_get(node.http, "/api/v1/panel/snapshot").is_some_and(|(_, body)| {
                let snap: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                snap["alerts"].as_array().is_some_and(|alerts| {
                    alerts
                        .iter()
                        .any(|a| a["kind"] == "node_down" && a["subject"] == "alert-c")
                })
            })
        });
        assert!(ok.is_some(), "{} shows the alert on its panel", node.name);
    }

    let shown = "const li = document.querySelector('[data-testid=\"alert-node_down-alert-c\"]'); \
                 return !!li && !document.getElementById('alerts').hidden \
                 && li.textContent.includes('node alert-c stopped heartbeating');";
    assert!(
        browser.wait_js(Duration::from_secs(5), shown, vec![]),
        "the panel's alerts strip shows the alert"
    );
    browser.screenshot("alerts-strip");

    // Both main nodes see it for several more evaluations: still one of each.
    let more = wait_until(Duration::from_secs(5), || {
        count(&notices(&hook), "node_down", "alert-c", "firing") > 1
            || mails_with(&smtp.mails(), "node alert-c stopped heartbeating") > 1
    });
    assert!(more.is_none(), "sent twice: {:#?}", notices(&hook));

    c.spawn();
    expect(
        Duration::from_secs(30),
        "a resolved webhook and e-mail for alert-c",
        &hook,
        &smtp,
        || {
            count(&notices(&hook), "node_down", "alert-c", "resolved") > 0
                && smtp
                    .mails()
                    .iter()
                    .any(|m| m.subject().contains("RESOLVED: node alert-c"))
        },
    );
    let again = wait_until(Duration::from_secs(5), || {
        count(&notices(&hook), "node_down", "alert-c", "resolved") > 1
    });
    assert!(again.is_none(), "resolved twice: {:#?}", notices(&hook));
    assert!(
        browser.wait_js(Duration::from_secs(5), strip_hidden, vec![]),
        "the strip is hidden again once the alert is resolved"
    );
    let console = browser.console();
    assert!(
        !console.iter().any(|l| l.contains("SEVERE")),
        "errors in the panel's console: {console:?}"
    );

    let all = notices(&hook);
    assert_eq!(all.len(), 2, "one raise, one end, nothing else: {all:#?}");
    assert_eq!(smtp.mails().len(), 2, "{:#?}", smtp.mails());
    let sent: f64 = [&a, &b]
        .iter()
        .map(|n| {
            n.metric("callfleet_alert_notifications_total{channel=\"webhook\",outcome=\"sent\"}")
        })
        .sum();
    assert_eq!(
        sent, 2.0,
        "the two main nodes sent two webhooks between them"
    );
    let rows = pg.query("SELECT count(*) FROM alerts");
    assert_eq!(rows, vec!["0".to_owned()], "no alert left firing");
}

#[test]
fn nodes_report_the_database_unreachable_and_back() {
    let _serial = serial();
    let dir = workdir("alerts-database");
    let server = PgServer::start("127.0.31.5", 5544);
    let smtp = SmtpSink::start("127.0.31.20:2525");
    let hook = WebhookSink::failing_first("127.0.31.21:8080", 1);
    let extra = alerts_toml(&smtp, &hook, &[]);
    let spec = |name, ip| NodeSpec {
        name,
        role: "main",
        ip,
        db: &server.url,
        capacity: 10,
        extra: &extra,
    };
    let a = NodeProc::start(&dir, spec("db-a", "127.0.31.1"));
    let b = NodeProc::start(&dir, spec("db-b", "127.0.31.2"));
    wait_alive(&a, 2);

    server.stop();
    expect(
        Duration::from_secs(30),
        "database_unreachable from both nodes",
        &hook,
        &smtp,
        || {
            let n = notices(&hook);
            count(&n, "database_unreachable", "db-a", "firing") == 1
                && count(&n, "database_unreachable", "db-b", "firing") == 1
                && mails_with(&smtp.mails(), "node db-a cannot reach the database") == 1
                && mails_with(&smtp.mails(), "node db-b cannot reach the database") == 1
        },
    );
    let posts = hook.posts();
    assert_eq!(posts[0].status, 503, "the first POST was refused");
    assert!(
        posts[1..]
            .iter()
            .any(|p| p.status == 200 && p.body == posts[0].body),
        "and sent again as it was"
    );
    let stray = notices(&hook);
    assert!(
        stray.iter().all(|n| n["kind"] == "database_unreachable"),
        "no node is called down while nobody can read heartbeats: {stray:#?}"
    );

    server.start_again();
    expect(
        Duration::from_secs(30),
        "the database alerts resolved",
        &hook,
        &smtp,
        || {
            let n = notices(&hook);
            count(&n, "database_unreachable", "db-a", "resolved") == 1
                && count(&n, "database_unreachable", "db-b", "resolved") == 1
                && smtp
                    .mails()
                    .iter()
                    .filter(|m| m.subject().contains("RESOLVED"))
                    .count()
                    == 2
        },
    );
    // The panel rows of the outage are gone once it is over.
    let clean = wait_until(Duration::from_secs(10), || {
        http_get(a.http, "/api/v1/panel/snapshot").is_some_and(|(_, body)| {
            let snap: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            snap["stale"] == false && snap["alerts"].as_array().is_some_and(Vec::is_empty)
        })
    });
    assert!(clean.is_some(), "the panel shows no alert after the outage");
    drop(b);
}
