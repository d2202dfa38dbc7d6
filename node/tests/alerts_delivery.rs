//! Alert delivery and the node-local rules end to end: real nodes on PostgreSQL, an SMTP sink
//! and a webhook receiver of the test's own.
//!
//! - E-mail over STARTTLS to a relay whose certificate comes from a private CA: delivered over
//!   TLS when `alerts.email.ca_file` names the CA; refused without it, and refused by a node
//!   that requires STARTTLS (`tls = "starttls"`) from a relay that does not offer it.
//! - Disk nearly full: a small tmpfs in `alerts.disk_dirs` filled past the critical threshold
//!   raises the alert by e-mail and webhook; emptied, it is resolved.
//! - A carrier of the `carriers` table silent for `alerts.carrier_silence` (seconds here)
//!   during open hours: alerted by e-mail and webhook, resolved by its next call.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::sinks::{Mail, SmtpSink, WebhookSink};
use support::tls::TestCa;
use support::{
    carrier_calls, serial, wait_alive, wait_until, workdir, Burst, NodeProc, NodeSpec, Pg,
};

const SECRET: &str = "alert-delivery-secret-0123456789";

/// `[alerts]` with quick timings; `disk` holds the disk keys.
fn alerts_toml(disk: &str, email: &str, hook: Option<&WebhookSink>) -> String {
    let hook = hook
        .map(|h| {
            format!(
                "[[alerts.webhook]]\nurl = \"{}\"\nsecret = \"{SECRET}\"\ntimeout = \"3s\"\n",
                h.url()
            )
        })
        .unwrap_or_default();
    format!(
        "[alerts]\ninterval = \"1s\"\nclear_after = \"3s\"\n{disk}\n\
         [alerts.email]\nfrom = \"callfleet <cf@example.com>\"\nto = [\"oncall@example.com\"]\n\
         timeout = \"5s\"\n{email}\n{hook}"
    )
}

/// `[alerts.email]` keys for `sink`, with `keys` added.
fn email_to(sink: &SmtpSink, keys: &str) -> String {
    format!(
        "server = \"{}\"\nport = {}\n{keys}",
        sink.addr().ip(),
        sink.addr().port()
    )
}

/// A main node `name` on `ip` with the alert `rules`, `email` and the webhook `hook`.
fn alert_node(
    dir: &Path,
    db: &str,
    (name, ip): (&str, &str),
    (rules, email): (&str, &str),
    hook: Option<&WebhookSink>,
) -> NodeProc {
    let extra = alerts_toml(rules, email, hook);
    let spec = NodeSpec {
        name,
        role: "main",
        ip,
        db,
        capacity: 10,
        extra: &extra,
    };
    NodeProc::start(dir, spec)
}

/// `dir` watched with thresholds every real disk is above: the disk alert fires at the first
/// evaluation.
fn any_disk(dir: &Path) -> String {
    format!(
        "disk_dirs = [\"{}\"]\ndisk_warning_pct = 0.5\ndisk_critical_pct = 0.5",
        dir.display()
    )
}

fn disk_mails(mails: &[Mail]) -> Vec<&Mail> {
    mails
        .iter()
        .filter(|m| m.subject().contains("CRITICAL: file system of"))
        .collect()
}

#[test]
fn alert_mail_goes_over_starttls_to_a_relay_with_a_private_ca_and_only_then() {
    let _serial = serial();
    let dir = workdir("alerts-starttls");
    let pg = Pg::fresh("alerts_starttls");
    let ca = TestCa::new(&dir, "smtp");
    let (cert, key) = ca.issue("relay", &["127.0.37.20", "127.0.37.21"]);
    let trusted = SmtpSink::with_starttls("127.0.37.20:2525", &cert, &key);
    let untrusted = SmtpSink::with_starttls("127.0.37.21:2525", &cert, &key);
    let plain = SmtpSink::start("127.0.37.22:2525");
    let with_ca = format!("ca_file = \"{}\"", ca.pem.display());
    let cases = [
        (
            ("tls-a", "127.0.37.1"),
            email_to(&trusted, &format!("tls = \"starttls\"\n{with_ca}")),
        ),
        (
            ("tls-b", "127.0.37.2"),
            email_to(&untrusted, "tls = \"opportunistic\"\nattempts = 1"),
        ),
        (
            ("tls-c", "127.0.37.3"),
            email_to(
                &plain,
                &format!("tls = \"starttls\"\n{with_ca}\nattempts = 1"),
            ),
        ),
    ];
    let started = Instant::now();
    let rules = any_disk(&dir);
    let nodes: Vec<NodeProc> = cases
        .iter()
        .map(|(who, email)| alert_node(&dir, &pg.url, *who, (&rules, email), None))
        .collect();
    wait_alive(&nodes[0], 3);

    let delivered = wait_until(Duration::from_secs(20), || {
        !disk_mails(&trusted.mails()).is_empty()
    })
    .map(|_| started.elapsed());
    let got = trusted.mails();
    assert!(delivered.is_some(), "no alert mail over TLS: {got:#?}");
    let mail = disk_mails(&got)[0].clone();
    assert!(mail.tls, "the mail came after STARTTLS: {mail:?}");
    assert!(mail.data.contains("tls-a"), "{mail:?}");

    let failed = "callfleet_alert_notifications_total{channel=\"email\",outcome=\"failed\"}";
    for (node, why) in [
        (&nodes[1], "invalid peer certificate: UnknownIssuer"),
        (&nodes[2], "STARTTLS is not supported"),
    ] {
        let given_up = wait_until(Duration::from_secs(20), || node.metric(failed) >= 1.0);
        assert!(
            given_up.is_some(),
            "{} gave the mail up: {}",
            node.name,
            node.log_text()
        );
        let log = node.log_text();
        let line = log
            .lines()
            .find(|l| l.contains("alert notification given up"))
            .unwrap_or_default();
        assert!(line.contains(why), "{}: {line}", node.name);
    }
    assert_eq!(untrusted.mails().len(), 0, "{:#?}", untrusted.mails());
    assert_eq!(plain.mails().len(), 0, "{:#?}", plain.mails());
    println!(
        "starttls: alert mail over TLS with alerts.email.ca_file {:?} after the nodes' start; \
         refused without the CA and by a required STARTTLS the relay does not offer",
        delivered.unwrap_or_default()
    );
}

/// A tmpfs of `size` mounted on `at` for the test's life.
struct Tmpfs<'a> {
    at: &'a Path,
}

impl<'a> Tmpfs<'a> {
    fn mount(at: &'a Path, size: &str) -> Tmpfs<'a> {
        std::fs::create_dir_all(at).expect("mount point");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0777"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount a tmpfs (the test runs as root, as scripts/test.sh does): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { at }
    }
}

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.at).status();
    }
}

/// The webhook notices delivered, each POST's signature checked.
fn notices(hook: &WebhookSink) -> Vec<serde_json::Value> {
    use hmac::{Hmac, Mac};
    hook.delivered()
        .iter()
        .flat_map(|post| {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
            mac.update(&post.body);
            let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
            assert_eq!(post.header("x-callfleet-signature"), Some(want.as_str()));
            post.json()["alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

fn count(notices: &[serde_json::Value], kind: &str, status: &str) -> usize {
    notices
        .iter()
        .filter(|n| n["kind"] == kind && n["status"] == status)
        .count()
}

#[test]
fn a_nearly_full_disk_is_alerted_then_resolved_once_emptied() {
    let _serial = serial();
    let dir = workdir("alerts-disk");
    let pg = Pg::fresh("alerts_disk");
    let mnt = dir.join("recordings");
    let _tmpfs = Tmpfs::mount(&mnt, "8m");
    let smtp = SmtpSink::start("127.0.37.30:2525");
    let hook = WebhookSink::start("127.0.37.31:8080");
    let disk = format!(
        "disk_dirs = [\"{}\"]\ndisk_warning_pct = 80.0\ndisk_critical_pct = 90.0",
        mnt.display()
    );
    let email = email_to(&smtp, "");
    let who = ("disk-a", "127.0.37.32");
    let node = alert_node(&dir, &pg.url, who, (&disk, &email), Some(&hook));
    wait_alive(&node, 1);
    // Quiet while the tmpfs is empty.
    let early = wait_until(Duration::from_secs(3), || !notices(&hook).is_empty());
    assert!(early.is_none(), "{:#?}", notices(&hook));

    let filler = mnt.join("filler");
    std::fs::write(&filler, vec![0u8; 15 * 512 * 1024]).expect("fill the tmpfs to 94 %");
    let filled = Instant::now();
    let raised = wait_until(Duration::from_secs(15), || {
        count(&notices(&hook), "disk_full", "firing") == 1
            && smtp
                .mails()
                .iter()
                .any(|m| m.subject().contains("CRITICAL: file system of"))
    });
    assert!(
        raised.is_some(),
        "disk alert by webhook and mail: {:#?} {:#?}",
        notices(&hook),
        smtp.mails()
    );
    let raised_after = filled.elapsed();
    let notice = notices(&hook)
        .into_iter()
        .find(|n| n["kind"] == "disk_full")
        .expect("the notice");
    assert_eq!(notice["severity"], "critical");
    assert_eq!(notice["node"], "disk-a");
    let message = notice["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains(&mnt.display().to_string()), "{message}");

    std::fs::remove_file(&filler).expect("empty the tmpfs");
    let emptied = Instant::now();
    let resolved = wait_until(Duration::from_secs(15), || {
        count(&notices(&hook), "disk_full", "resolved") == 1
            && smtp
                .mails()
                .iter()
                .any(|m| m.subject().contains("RESOLVED: file system of"))
    });
    assert!(
        resolved.is_some(),
        "resolved by webhook and mail: {:#?}",
        notices(&hook)
    );
    let resolved_after = emptied.elapsed();
    let all = notices(&hook);
    assert_eq!(all.len(), 2, "one raise, one end: {all:#?}");
    println!(
        "disk: {message:?} raised {raised_after:?} after the fill, resolved {resolved_after:?} \
         after emptying (clear_after 3s)"
    );
}

/// One call from the carrier's address; when it ended.
fn carrier_call(dir: &Path, node: &NodeProc, tag: &str) -> Instant {
    let burst = Burst {
        calls: 1,
        every_ms: 100,
        hold_ms: 500,
    };
    carrier_calls(dir, tag, node.sip, "100", ("127.0.37.53", 5061), burst);
    Instant::now()
}

/// Whether exactly one webhook notice of `kind` with `status` came, and a mail telling it.
fn carrier_told(hook: &WebhookSink, smtp: &SmtpSink, kind: &str, status: &str) -> bool {
    let label = if status == "firing" {
        "WARNING"
    } else {
        "RESOLVED"
    };
    count(&notices(hook), kind, status) == 1
        && smtp.mails().iter().any(|m| {
            m.subject().contains("carrier acme sent no call for") && m.subject().contains(label)
        })
}

/// Seconds of silence that raise `carrier_silent` in the test.
const SILENCE: Duration = Duration::from_secs(6);

#[test]
fn a_carrier_silent_during_open_hours_is_alerted_then_resolved_by_its_next_call() {
    let _serial = serial();
    let dir = workdir("alerts-carrier");
    let pg = Pg::fresh("alerts_carrier");
    let smtp = SmtpSink::start("127.0.37.50:2525");
    let hook = WebhookSink::start("127.0.37.51:8080");
    let rules = format!(
        "carrier_silence = \"{}s\"\nopen_hours = \"00:00-24:00\"\ntime_zone = \"UTC\"\n\
         open_days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]",
        SILENCE.as_secs()
    );
    let email = email_to(&smtp, "");
    let who = ("carrier-a", "127.0.37.52");
    let node = alert_node(&dir, &pg.url, who, (&rules, &email), Some(&hook));
    wait_alive(&node, 1);
    pg.query(&format!(
        "INSERT INTO carriers (name, network, created_at_ms) VALUES ('acme', '127.0.37.53/32', {})",
        callfleet::now_ms()
    ));
    let heard = carrier_call(&dir, &node, "first");
    let silent = |status| carrier_told(&hook, &smtp, "carrier_silent", status);
    let raised = wait_until(SILENCE + Duration::from_secs(10), || silent("firing"));
    assert!(
        raised.is_some(),
        "carrier_silent by webhook and mail: {:#?} {:#?}",
        notices(&hook),
        smtp.mails()
    );
    let raised_after = heard.elapsed();
    assert!(
        raised_after >= SILENCE,
        "not before {SILENCE:?} of silence: {raised_after:?}"
    );
    let notice = notices(&hook)
        .into_iter()
        .find(|n| n["kind"] == "carrier_silent")
        .expect("the notice");
    assert_eq!(
        (notice["subject"].as_str(), notice["severity"].as_str()),
        (Some("acme"), Some("warning"))
    );
    let message = notice["message"].as_str().unwrap_or_default().to_owned();

    let again = carrier_call(&dir, &node, "again");
    let resolved = wait_until(Duration::from_secs(15), || silent("resolved"));
    assert!(
        resolved.is_some(),
        "resolved by webhook and mail after the carrier's next call: {:#?}",
        notices(&hook)
    );
    println!(
        "carrier: {message:?} raised {raised_after:?} after its last call (carrier_silence \
         {SILENCE:?}), resolved {:?} after its next one (clear_after 3s)",
        again.elapsed()
    );
    assert_eq!(notices(&hook).len(), 2, "{:#?}", notices(&hook));
}
