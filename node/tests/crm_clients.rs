//! The CRM API from stock XML-RPC clients in other languages: Perl's `RPC::XML` and PHP's
//! xmlrpc extension send extensions, phones, queue names and caller numbers as integers when
//! they are digits (Perl even `<int>+4930999</int>` and `<int>0100</int>`). Against a real
//! node with a CRM token, every call that names something by an integer works, a sign and
//! leading zeros are kept, and a parameter of another type is still fault 1. Address:
//! 127.0.42.1.

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};
use support::phone::device_add;
use support::queue::{member, queue, Db};
use support::{require, serial, workdir, NodeProc, NodeSpec, Pg};

const EXT: &str = "4361";
const DEVICE: &str = "2361";
/// A queue whose name is digits, so the clients send it as an integer too.
const QUEUE: &str = "700";

/// Checks that `module` loads in Perl, or fails with the package to install.
fn require_perl(module: &str, package: &str) {
    require("perl", "perl");
    let ok = Command::new("perl")
        .args(["-e", &format!("use {module}; 1")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the Perl module {module} is not installed: apt-get install {package} (or run scripts/test.sh)"
    );
}

/// Checks that PHP has its xmlrpc extension, or fails with the package to install.
fn require_php_xmlrpc() {
    require("php", "php-cli");
    let ok = Command::new("php")
        .args([
            "-r",
            "exit(function_exists('xmlrpc_encode_request') ? 0 : 1);",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "PHP's xmlrpc extension is missing: apt-get install php-xmlrpc (or run scripts/test.sh)"
    );
}

/// Runs a client script and parses the JSON it prints.
fn run(program: &str, script: &str, base: &str, token: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let out = Command::new(program)
        .arg(&path)
        .args([base, EXT, DEVICE, QUEUE])
        .env("CALLFLEET_TOKEN", token)
        .output()
        .unwrap_or_else(|e| panic!("run {program} {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn fault(v: &Value) -> Option<i64> {
    v.get("fault").and_then(Value::as_i64)
}

/// True as each client prints it (Perl: 1, PHP: true).
fn truthy(v: &Value) -> bool {
    matches!(v, Value::Bool(true)) || v.as_i64() == Some(1)
}

#[test]
fn perl_and_php_clients_name_agents_phones_queues_and_callers_with_integers() {
    let _serial = serial();
    require_perl("RPC::XML::Client", "librpc-xml-perl");
    require_php_xmlrpc();
    let dir = workdir("crm_clients");
    let pg = Pg::fresh("crm_clients");
    let mut node = NodeProc::configure(
        &dir,
        NodeSpec {
            name: "crm-clients",
            role: "main",
            ip: "127.0.42.1",
            db: &pg.url,
            capacity: 20,
            extra: "",
        },
    );
    // The clients are remote CRMs: their token is what lets them in.
    let text = std::fs::read_to_string(&node.config).expect("read the node config");
    std::fs::write(
        &node.config,
        text.replacen("[http]\n", "[http]\ntrust_loopback = false\n", 1),
    )
    .expect("write the node config");
    node.spawn();
    let db = Db::connect(&pg.url);
    device_add(&node, DEVICE, "pw-crm-clients", false);
    db.add_agent(EXT, "1234");
    db.add_queue(&queue(QUEUE, "ringall"));
    db.add_member(&member(QUEUE, EXT, 0, 0));
    let (ok, token, err) = support::cli(&node, &["token", "add", "--name", "crm-clients"], "");
    assert!(ok, "token add: {err}");
    let token = token.trim().to_owned();
    let base = format!("http://{}", node.http);

    // Perl: every name an integer as RPC::XML makes it.
    check_perl(&run("perl", "crm_client.pl", &base, &token), &db);
    // PHP: integers where the program holds integers.
    check_php(&run("php", "crm_client.php", &base, &token), &db);
    assert!(!node.log_text().contains("panicked"), "{}", node.log_text());
}

/// What `crm_client.pl` saw, and what its calls stored.
fn check_perl(r: &Value, db: &Db) {
    eprintln!("perl: {r:#}");
    let xml = r["xml.login"].as_str().unwrap_or_default();
    assert!(
        xml.contains(&format!("<int>{EXT}</int>")) && xml.contains(&format!("<int>{DEVICE}</int>")),
        "RPC::XML sends the extension and phone as <int>: {xml}"
    );
    for step in ["login", "setTier", "vip.plus", "vip.zero", "logout"] {
        assert!(truthy(&r[step]), "perl {step}: {}", r[step]);
    }
    assert_eq!(
        (
            r["status"]["extension"].clone(),
            r["status"]["device"].clone()
        ),
        (json!(EXT), json!(DEVICE)),
        "perl status: {}",
        r["status"]
    );
    assert_eq!(r["sale"], json!(1));
    assert_eq!(r["stats"]["queue"], json!(QUEUE));
    assert_eq!(fault(&r["f.unknown"]), Some(2), "{}", r["f.unknown"]);
    assert_eq!(
        fault(&r["f.i8"]),
        Some(2),
        "an <i8> names too: {}",
        r["f.i8"]
    );
    for step in ["f.boolean", "f.double"] {
        assert_eq!(fault(&r[step]), Some(1), "perl {step}: {}", r[step]);
        let message = r[step]["message"].as_str().unwrap_or_default();
        assert!(message.contains("`ext`"), "{message}");
    }
    // What was stored is what was written: the sign and the leading zero stay.
    for number in ["+4930999", "0100"] {
        assert!(
            db.block(db.store.is_vip(number, QUEUE)).expect("read VIP"),
            "VIP {number} as written"
        );
    }
    for altered in ["4930999", "100"] {
        assert!(!db.block(db.store.is_vip(altered, QUEUE)).expect("read VIP"));
    }
    let tiers = db.block(db.store.members(Some(QUEUE))).expect("members");
    assert_eq!(tiers[0].tier, 3, "the tier Perl set");
}

/// What `crm_client.php` saw, and what its calls stored.
fn check_php(r: &Value, db: &Db) {
    eprintln!("php: {r:#}");
    let xml = r["xml.login"].as_str().unwrap_or_default();
    assert!(
        xml.contains(&format!("<int>{EXT}</int>")),
        "PHP sends the extension as <int>: {xml}"
    );
    for step in ["login", "setTier", "vip", "logout"] {
        assert!(truthy(&r[step]), "php {step}: {}", r[step]);
    }
    assert_eq!(r["status"]["extension"], json!(EXT), "{}", r["status"]);
    assert_eq!(r["status"]["state"], json!("available"), "{}", r["status"]);
    assert_eq!(r["stats"]["queue"], json!(QUEUE));
    assert_eq!(fault(&r["f.unknown"]), Some(2), "{}", r["f.unknown"]);
    assert_eq!(fault(&r["f.boolean"]), Some(1), "{}", r["f.boolean"]);
    let tiers = db.block(db.store.members(Some(QUEUE))).expect("members");
    assert_eq!(tiers[0].tier, 5, "the tier PHP set");
    assert!(db
        .block(db.store.is_vip("+4930888", QUEUE))
        .expect("read VIP"));
}
