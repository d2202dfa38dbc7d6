//! The CRM API end to end (issue 4): two main nodes on PostgreSQL, Python's stdlib
//! `xmlrpc.client` (`crm_client.py`) driving every XML-RPC method against node B, and tuning
//! made through node B changing who gets the next call held by node A, with real baresip
//! agent phones: a VIP caller goes only to the VIP-allowed agent, a demoted agent rings only
//! when no better one is free. Also the faults of bad calls, with their stable codes.
//!
//! The client sends a CRM token made with `callfleet token add`, as a CRM would.
//!
//! Addresses: 127.0.13.1 and .2 the nodes, .21 the lockd, .10 and .11 the phones, .20 on the
//! raw caller.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use callfleet::now_ms;
use callfleet_store::Member;
use serde_json::{json, Value};
use support::lockd::{memcached, Lockd};
use support::phone::{device_add, Phone};
use support::queue::{member, queue, traces, Db, Trace};
use support::uac::Uac;
use support::{require, serial, wait_alive, wait_until, workdir, NodeProc, NodeSpec, Pg};

const NET: &str = "127.0.13";
const QUEUE: &str = "crmq";
/// A queue with no members, for the "not a member" fault.
const EMPTY_QUEUE: &str = "crmq-empty";
/// Agents: A1 at tier 0, not VIP-allowed; A2 at tier 0, VIP-allowed.
const A1: &str = "4351";
const A2: &str = "4352";
const D1: &str = "2351";
const D2: &str = "2352";
/// The raw caller's number (`support::uac` sends `From: <sip:caller@..>`).
const CALLER: &str = "caller";

/// Fields drop in order: phones first, while the nodes still answer their un-REGISTER.
struct Cluster {
    /// The CRM's API token (`callfleet token add`), sent by `crm_client.py`.
    token: String,
    phones: Vec<Phone>,
    nodes: Vec<NodeProc>,
    _lockd: Lockd,
    db: Db,
    dir: PathBuf,
    _pg: Pg,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = workdir("crm");
        let pg = Pg::fresh("crm");
        let lockd = Lockd::start(
            &dir,
            &format!("{NET}.21:7070"),
            &format!("memcached://{}", memcached()),
        );
        let extra = format!(
            "voicemail_dir = \"{}\"\n[lock]\nurls = [\"{}\"]\n",
            dir.join("voicemail").display(),
            lockd.url
        );
        let nodes: Vec<NodeProc> = [("main-a", 1), ("main-b", 2)]
            .into_iter()
            .map(|(name, host)| {
                let mut node = NodeProc::configure(
                    &dir,
                    NodeSpec {
                        name,
                        role: "main",
                        ip: &format!("{NET}.{host}"),
                        db: &pg.url,
                        capacity: 100,
                        extra: &extra,
                    },
                );
                if name == "main-b" {
                    // The CRM talks to node B: there a loopback client is nobody, so only the
                    // token lets it in.
                    let text = std::fs::read_to_string(&node.config).expect("read config");
                    let text = text.replacen("[http]\n", "[http]\ntrust_loopback = false\n", 1);
                    std::fs::write(&node.config, text).expect("write config");
                }
                node.spawn();
                node
            })
            .collect();
        wait_alive(&nodes[0], 2);
        let db = Db::connect(&pg.url);
        let token = token_add(&nodes[1], "crm-test");
        let mut c = Cluster {
            token,
            phones: vec![],
            nodes,
            _lockd: lockd,
            db,
            dir,
            _pg: pg,
        };
        // Phones registered through node A and node B; agents not logged in: the CRM does it.
        for (i, device) in [D1, D2].into_iter().enumerate() {
            let password = format!("pw-{device}");
            device_add(&c.nodes[0], device, &password, false);
            let ip = format!("{NET}.{}", 10 + i);
            let phone = Phone::start(&c.dir, &ip, device, &password, &c.nodes[i]);
            let ok = wait_until(Duration::from_secs(15), || c.db.registered(device));
            assert!(
                ok.is_some(),
                "phone {device} did not register:\n{}",
                phone.log()
            );
            c.phones.push(phone);
        }
        c.db.add_agent(A1, "1234");
        c.db.add_agent(A2, "1234");
        c.db.add_queue(&queue(QUEUE, "ringall"));
        c.db.add_queue(&queue(EMPTY_QUEUE, "ringall"));
        c.db.add_member(&member(QUEUE, A1, 0, 0));
        c.db.add_member(&Member {
            vip_allowed: true,
            ..member(QUEUE, A2, 0, 1)
        });
        c
    }

    fn logs(&self) -> String {
        format!("(logs in {})", self.dir.display())
    }

    /// Node B's HTTP base URL: every CRM call goes there.
    fn base(&self) -> String {
        format!("http://{}", self.nodes[1].http)
    }

    /// Runs `crm_client.py` against node B and parses what it prints.
    fn client(&self, args: &[&str]) -> Value {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/crm_client.py");
        let out = Command::new("python3")
            .arg(&script)
            .arg(self.base())
            .args(args)
            .env("CALLFLEET_TOKEN", &self.token)
            .output()
            .expect("run python3 crm_client.py");
        assert!(
            out.status.success(),
            "crm_client.py {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "crm_client.py {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// One XML-RPC call through Python; parameters as JSON text.
    fn call(&self, method: &str, params: &[Value]) -> Value {
        let params: Vec<String> = params.iter().map(Value::to_string).collect();
        let mut args = vec!["call", method];
        args.extend(params.iter().map(String::as_str));
        self.client(&args)
    }

    /// A caller on node A dials the queue; the agent's phone answers by itself, the caller
    /// hangs up after `talk`; returns the call's queue trace once it completed.
    fn queued_call(&self, call_id: &str, talk: Duration, during: impl FnOnce()) -> Trace {
        assert!(
            self.db.wait_available(&[A1, A2], Duration::from_secs(10)),
            "agents free before {call_id} {}",
            self.logs()
        );
        let since = now_ms();
        let mut caller = Uac::new(&format!("{NET}.20"), self.nodes[0].sip);
        let ok = caller
            .answered(QUEUE, call_id, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("node A answers {call_id} {}", self.logs()));
        let answered = wait_until(Duration::from_secs(10), || {
            self.trace(call_id, since)
                .is_some_and(|t| !t.answers.is_empty())
        });
        assert!(
            answered.is_some(),
            "an agent answered {call_id} {}",
            self.logs()
        );
        during();
        std::thread::sleep(talk);
        caller.in_dialog("BYE", call_id, &ok, None);
        let mut trace = None;
        wait_until(Duration::from_secs(10), || {
            trace = self.trace(call_id, since);
            trace.as_ref().is_some_and(|t| t.completed_ms.is_some())
        });
        trace.unwrap_or_else(|| panic!("no trace of {call_id} {}", self.logs()))
    }

    fn trace(&self, call_id: &str, since: i64) -> Option<Trace> {
        traces(&self.db.events(since))
            .into_iter()
            .find(|t| t.call_id == call_id)
    }
}

/// Creates a CRM API token with `callfleet token add` and returns it.
fn token_add(node: &NodeProc, name: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_callfleet"))
        .args(["token", "add", "--config"])
        .arg(&node.config)
        .args(["--name", name])
        .output()
        .expect("run callfleet token add");
    assert!(
        out.status.success(),
        "token add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(token.starts_with("cft_"), "token add printed {token:?}");
    token
}

fn fault(code: i64) -> impl Fn(&Value) -> bool {
    move |v: &Value| {
        v["fault"] == json!(code) && v["message"].as_str().is_some_and(|m| !m.is_empty())
    }
}

#[test]
fn python_xmlrpc_drives_every_method_and_tuning_on_node_b_steers_calls_on_node_a() {
    let _serial = serial();
    require("python3", "python3");
    require("baresip", "baresip");
    let c = Cluster::start();

    // Without the token node B refuses the CRM (a loopback address is not trusted there).
    let (status, _) =
        support::http_post_json(c.nodes[1].http, "/RPC2", "").expect("node B answers");
    assert_eq!(status, 401, "XML-RPC without a token");

    // Every method from Python's xmlrpc.client, against node B.
    let r = c.client(&["all", A1, A2, D1, D2, QUEUE, EMPTY_QUEUE]);
    eprintln!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
    let methods = r["listMethods"].as_array().expect("system.listMethods");
    assert_eq!(methods.len(), 16, "{methods:?}");
    let queues: Vec<&str> = r["queue.list"]
        .as_array()
        .expect("queue.list")
        .iter()
        .filter_map(|q| q["name"].as_str())
        .collect();
    assert_eq!(queues, [QUEUE, EMPTY_QUEUE]);
    assert_eq!(r["queue.list"][0]["members"], 2);
    for step in [
        "login1",
        "login2",
        "pause1",
        "unpause1",
        "setTier",
        "setTier.back",
        "setDailyLimit",
        "clearDailyLimit",
        "vip.add",
        "vip.remove",
        "department.remove",
        "logout2",
        "login2.again",
    ] {
        assert_eq!(r[step], json!(true), "{step}: {}", r[step]);
    }
    assert_eq!(
        (
            r["status1"]["state"].clone(),
            r["status1"]["device"].clone()
        ),
        (json!("available"), json!(D1))
    );
    let paused = &r["stats.paused"];
    assert_eq!(
        (
            paused["agents_available"].clone(),
            paused["agents_paused"].clone(),
            paused["serving"].clone()
        ),
        (json!(1), json!(1), json!(true)),
        "{paused}"
    );
    let stats = &r["stats"];
    assert_eq!(
        json!([
            stats["waiting"],
            stats["longest_wait_s"],
            stats["agents_available"],
            stats["agents_busy"],
            stats["agents_paused"],
            stats["serving"]
        ]),
        json!([0, 0, 2, 0, 0, true]),
        "{stats}"
    );
    assert_eq!(r["status2.tier"]["queues"][0]["tier"], 2);
    assert_eq!(
        r["status1.int"]["extension"],
        json!(A1),
        "an extension sent as an int"
    );
    assert_eq!(r["status1.limit"]["daily_limit"], 5);
    assert!(r["status1.nolimit"].get("daily_limit").is_none());
    assert_eq!(
        (r["sale1"].clone(), r["sale2"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(
        (r["vip.add.again"].clone(), r["vip.remove.again"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(
        r["department.set"]["queues"],
        json!([QUEUE]),
        "{}",
        r["department.set"]
    );
    assert_eq!(r["department.list"][0]["name"], "front");
    assert_eq!(r["call.list"], json!([]));
    assert_eq!(r["status2.out"]["state"], "logged_out");
    for (step, code) in [
        ("f.arity", 1),
        ("f.type.ext", 1),
        ("f.type.paused", 1),
        ("f.tier.range", 1),
        ("f.limit.type", 1),
        ("f.unknown.agent", 2),
        ("f.unknown.queue", 3),
        ("f.unknown.device", 4),
        ("f.not.member", 7),
        ("f.unknown.method", 10),
        ("f.malformed", 9),
        ("f.not.utf8", 9),
    ] {
        assert!(
            fault(code)(&r[step]),
            "{step}: want fault {code}, got {}",
            r[step]
        );
    }
    assert!(r["f.type.ext"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("`ext`")));
    assert!(r["f.type.paused"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("`paused`")));

    // No daily limit for the calls below (the script set one and cleared it; clear again).
    assert_eq!(
        c.call("agent.setDailyLimit", &[json!(A1), Value::Null]),
        json!(true)
    );

    // A VIP caller, made one through node B, goes only to the VIP-allowed A2 on node A,
    // though A1 is free and of the same tier. While A2 talks, it cannot be logged out, and
    // node B lists the call held by node A.
    assert_eq!(
        c.call("vip.add", &[json!(CALLER), json!(QUEUE)]),
        json!(true)
    );
    std::thread::sleep(Duration::from_millis(1500));
    let mut during = Value::Null;
    let mut busy_logout = Value::Null;
    let t = c.queued_call("crm-vip", Duration::from_millis(500), || {
        during = c.call("call.list", &[]);
        busy_logout = c.call("agent.logout", &[json!(A2)]);
    });
    assert_eq!(t.node, "main-a", "the call was held by node A {}", c.logs());
    assert_eq!(
        (t.offers.clone(), t.agent()),
        (vec![A2.to_string()], Some(A2)),
        "VIP caller offered only to the VIP-allowed agent {}",
        c.logs()
    );
    let live = during.as_array().expect("call.list during the call");
    let ours = live
        .iter()
        .find(|l| l["call_id"] == "crm-vip")
        .unwrap_or_else(|| panic!("call.list on node B lists node A's call: {during}"));
    assert_eq!(
        json!([
            ours["node"],
            ours["queue"],
            ours["agent"],
            ours["answered"],
            ours["caller"]
        ]),
        json!(["main-a", QUEUE, A2, true, CALLER]),
        "{ours}"
    );
    assert!(
        fault(5)(&busy_logout),
        "logout of an agent in a call: {busy_logout}"
    );

    // Not a VIP any more, and A2 demoted to tier 5 through node B: the next call on node A
    // goes to A1 alone (ringall rings only the best tier with a free agent).
    assert_eq!(
        c.call("vip.remove", &[json!(CALLER), json!(QUEUE)]),
        json!(true)
    );
    assert_eq!(
        c.call("agent.setTier", &[json!(A2), json!(QUEUE), json!(5)]),
        json!(true)
    );
    std::thread::sleep(Duration::from_millis(1500));
    let t = c.queued_call("crm-demoted", Duration::from_millis(200), || {});
    assert_eq!(
        (t.offers.clone(), t.agent()),
        (vec![A1.to_string()], Some(A1)),
        "the demoted agent is not rung while a better one is free {}",
        c.logs()
    );

    // A1 paused through node B: the demoted A2 is now the best free agent and gets the call.
    assert_eq!(
        c.call("agent.pause", &[json!(A1), json!(true)]),
        json!(true)
    );
    let stats = c.call("queue.stats", &[json!(QUEUE)]);
    assert_eq!(
        (stats["agents_paused"].clone(), stats["serving"].clone()),
        (json!(1), json!(true))
    );
    assert!(
        c.db.wait_available(&[A2], Duration::from_secs(10)),
        "A2 free {}",
        c.logs()
    );
    let since = now_ms();
    let mut caller = Uac::new(&format!("{NET}.20"), c.nodes[0].sip);
    let ok = caller
        .answered(QUEUE, "crm-paused", Duration::from_secs(5))
        .expect("node A answers");
    let mut t = None;
    wait_until(Duration::from_secs(10), || {
        t = c.trace("crm-paused", since);
        t.as_ref().is_some_and(|t| !t.answers.is_empty())
    });
    caller.in_dialog("BYE", "crm-paused", &ok, None);
    let t = t.unwrap_or_else(|| panic!("no trace of crm-paused {}", c.logs()));
    assert_eq!(
        (t.offers.clone(), t.agent()),
        (vec![A2.to_string()], Some(A2)),
        "with A1 paused the demoted A2 takes the call {}",
        c.logs()
    );
}
