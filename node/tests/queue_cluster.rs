//! The cluster queue with real peers (issue 3): two main nodes on PostgreSQL, two lockd over
//! the shared memcached, agents on baresip phones (registered with digest auth, auto-answer),
//! callers placed by SIPp through the Kamailio carrier. What is checked comes from the queue
//! events the nodes write (enqueue, offer, answer, complete): every call reaches exactly one
//! agent, no agent has two calls at once, a free agent goes to the first call cluster-wide,
//! losing a lockd or a node does not stop (or double-book) agents, hot-desking moves calls, and
//! the strategy, tier, VIP and daily-limit rules hold end to end.
//!
//! SIPp's hold time (`-d`) runs from the queue's answer, not the agent's: a caller hangs up
//! that long after it entered the queue, whether an agent took it or not. Bursts are paced so
//! that every caller is still there when its agent frees up, and a call an agent never took
//! shows up as a missing `answer`, not as a SIPp failure.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use callfleet::now_ms;
use callfleet_store::AgentState;
use support::audio::{tone_share, wav_samples};
use support::lockd::{memcached, Lockd};
use support::phone::{device_add, Phone};
use support::queue::{inversions, member, overlaps, queue, traces, Db, Trace};
use support::uac::Uac;
use support::{
    carrier_calls, serial, wait_alive, wait_until, workdir, Burst, Carrier, NodeProc, NodeSpec, Pg,
};

/// The two lockd of every test (one cluster at a time: tests take `serial()`).
const LOCKD: [&str; 2] = ["127.0.8.21:7070", "127.0.8.22:7070"];
/// Mirrors `queue::caller::LEASE_MARGIN`: an agent's lease outlives the ring timeout by this
/// much until its first renewal.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
const PIN: &str = "1234";

/// A test's block of loopback addresses: nodes at +1 and +2, the carrier at +3, phones from
/// +10, SIPp and raw callers from +20.
#[derive(Clone, Copy)]
struct Net {
    prefix: &'static str,
    base: u8,
}

impl Net {
    fn ip(&self, n: u8) -> String {
        format!("{}.{}", self.prefix, self.base + n)
    }
}

/// Two main nodes, two lockd, the carrier, and phones. Fields drop in order: phones first,
/// while the nodes still answer their un-REGISTER, the database last.
struct Cluster {
    phones: Vec<Phone>,
    carrier: Carrier,
    nodes: Vec<NodeProc>,
    lockd: Vec<Lockd>,
    db: Db,
    dir: PathBuf,
    net: Net,
    _pg: Pg,
}

impl Cluster {
    fn start(test: &str, net: Net, capacity: u32) -> Cluster {
        let dir = workdir(test);
        let pg = Pg::fresh(&test.replace('-', "_"));
        let backend = format!("memcached://{}", memcached());
        let lockd: Vec<Lockd> = LOCKD
            .iter()
            .map(|l| Lockd::start(&dir, l, &backend))
            .collect();
        let urls: Vec<String> = lockd.iter().map(|l| format!("\"{}\"", l.url)).collect();
        let extra = format!(
            "voicemail_dir = \"{}\"\n[lock]\nurls = [{}]\n",
            dir.join("voicemail").display(),
            urls.join(", ")
        );
        let nodes: Vec<NodeProc> = [("main-a", 1), ("main-b", 2)]
            .into_iter()
            .map(|(name, host)| {
                NodeProc::start(
                    &dir,
                    NodeSpec {
                        name,
                        role: "main",
                        ip: &net.ip(host),
                        db: &pg.url,
                        capacity,
                        extra: &extra,
                    },
                )
            })
            .collect();
        wait_alive(&nodes[0], 2);
        let carrier = Carrier::start(
            &dir,
            &format!("{}:5070", net.ip(3)),
            &[nodes[0].sip, nodes[1].sip],
        );
        let db = Db::connect(&pg.url);
        Cluster {
            phones: vec![],
            carrier,
            nodes,
            lockd,
            db,
            dir,
            net,
            _pg: pg,
        }
    }

    /// A baresip phone for `device`, registered through node `registrar` (0 or 1); with a
    /// ctrl_tcp port when `ctrl`. Returns its index in `phones`.
    fn phone(&mut self, device: &str, registrar: usize, ctrl: bool) -> usize {
        let password = format!("pw-{device}");
        device_add(&self.nodes[0], device, &password, false);
        let ip = self.net.ip(10 + self.phones.len() as u8);
        let node = &self.nodes[registrar];
        let phone = if ctrl {
            Phone::start_with_ctrl(&self.dir, &ip, device, &password, node, 4444)
        } else {
            Phone::start(&self.dir, &ip, device, &password, node)
        };
        let ok = wait_until(Duration::from_secs(15), || self.db.registered(device));
        assert!(
            ok.is_some(),
            "phone {device} did not register:\n{}",
            phone.log()
        );
        self.phones.push(phone);
        self.phones.len() - 1
    }

    /// Agents logged in on phones of their own (device = `2` + the agent's last three digits),
    /// registered alternately through node A and node B.
    fn agents(&mut self, exts: &[&str]) {
        for (i, ext) in exts.iter().enumerate() {
            let device = format!("2{}", &ext[ext.len() - 3..]);
            self.phone(&device, i % 2, false);
            self.db.add_agent(ext, PIN);
            self.db.login(ext, &device);
        }
    }

    /// Waits until every node reloaded queues and agents at the current config version
    /// (polled every second).
    fn settle(&self) {
        for node in &self.nodes {
            self.db.wait_reloaded(node);
        }
    }

    /// SIPp calls to `service` through the carrier from caller address `+n`.
    fn sipp(&self, tag: &str, service: &str, n: u8, burst: Burst) -> support::SippStats {
        carrier_calls(
            &self.dir,
            tag,
            self.carrier.addr,
            service,
            (&self.net.ip(n), 5061),
            burst,
        )
    }

    /// [`Cluster::sipp`] on a thread of its own: `calls` calls a second, each held `hold_ms`.
    fn sipp_async(
        &self,
        tag: &str,
        service: &str,
        n: u8,
        calls: u32,
        hold_ms: u32,
    ) -> std::thread::JoinHandle<support::SippStats> {
        let (dir, carrier, ip) = (self.dir.clone(), self.carrier.addr, self.net.ip(n));
        let (tag, service) = (tag.to_string(), service.to_string());
        let burst = Burst {
            calls,
            every_ms: 1000,
            hold_ms,
        };
        std::thread::spawn(move || carrier_calls(&dir, &tag, carrier, &service, (&ip, 5061), burst))
    }

    /// Calls of queues in `queues` since `since_ms`, once `n` of them have ended (completed,
    /// abandoned or timed out) or `limit` passed.
    fn traces(&self, since_ms: i64, queues: &[&str], n: usize, limit: Duration) -> Vec<Trace> {
        let mut t = vec![];
        wait_until(limit, || {
            t = traces(&self.db.events(since_ms))
                .into_iter()
                .filter(|t| queues.contains(&t.queue.as_str()))
                .collect();
            t.iter()
                .filter(|t| t.completed_ms.is_some() || !t.lost.is_empty())
                .count()
                >= n
        });
        t
    }

    fn logs(&self) -> String {
        format!("(logs in {})", self.dir.display())
    }
}

/// Every call of `t` reached exactly one agent and completed; `n` calls in all.
fn assert_served(t: &[Trace], n: usize, c: &Cluster) {
    for t in t {
        let at = |ms: Option<i64>| ms.map_or("-".into(), |ms| ms.to_string());
        eprintln!(
            "{} {} enqueued {} offers {:?} answers {:?} completed {} lost {:?}",
            t.call_id,
            t.node,
            at(t.enqueued_ms),
            t.offers,
            t.answers,
            at(t.completed_ms),
            t.lost
        );
    }
    let bad: Vec<&Trace> = t
        .iter()
        .filter(|t| t.agent().is_none() || t.completed_ms.is_none() || !t.lost.is_empty())
        .collect();
    assert!(
        t.len() == n && bad.is_empty(),
        "{n} calls, each answered by one agent: {} calls, not served: {bad:#?} {}",
        t.len(),
        c.logs()
    );
}

fn assert_no_overlaps(t: &[Trace], c: &Cluster) {
    let o = overlaps(t);
    assert!(
        o.is_empty(),
        "agents with two calls at once: {o:#?} {}",
        c.logs()
    );
}

/// Each call's CDR (written by the node that held it) names the agent that answered it.
fn assert_cdrs_name_agents(t: &[Trace], since_ms: i64, c: &Cluster) {
    let mut cdrs = vec![];
    wait_until(Duration::from_secs(10), || {
        cdrs =
            c.db.block(c.db.store.cdrs_since(since_ms))
                .expect("read CDRs");
        t.iter()
            .all(|t| cdrs.iter().any(|r| r.call_id == t.call_id))
    });
    for t in t {
        let cdr = cdrs.iter().find(|r| r.call_id == t.call_id);
        let got = cdr.map(|r| (r.node.as_str(), r.queue.as_deref(), r.agent.as_deref()));
        assert_eq!(
            got,
            Some((t.node.as_str(), Some(t.queue.as_str()), t.agent())),
            "CDR of {} {}",
            t.call_id,
            c.logs()
        );
    }
}

/// Both nodes enqueued calls (the carrier and the nodes' 302s spread them).
fn assert_both_nodes(t: &[Trace], c: &Cluster) {
    for n in &c.nodes {
        let here = t.iter().filter(|t| t.node == n.name).count();
        assert!(
            here > 0,
            "{} enqueued none of {} calls {}",
            n.name,
            t.len(),
            c.logs()
        );
    }
}

fn burst_cluster(test: &str, base: u8, agents: &[&str]) -> Cluster {
    let mut c = Cluster::start(
        test,
        Net {
            prefix: "127.0.8",
            base,
        },
        10,
    );
    c.agents(agents);
    c.db.add_queue(&queue("burst", "ringall"));
    for (i, a) in agents.iter().enumerate() {
        c.db.add_member(&member("burst", a, 0, i as i64));
    }
    c.settle();
    c
}

/// 12 callers, one a second, each staying 8 s, for 3 agents: up to 5 wait at once, and each
/// agent frees up 3 s before the caller three places behind would leave.
const BURST: Burst = Burst {
    calls: 12,
    every_ms: 1000,
    hold_ms: 8000,
};

#[test]
fn a_burst_on_both_nodes_reaches_agents_one_call_at_a_time() {
    let _serial = serial();
    let agents = ["3101", "3102", "3103"];
    let c = burst_cluster("qc-burst", 40, &agents);
    let since = now_ms();
    let stats = c.sipp("burst", "burst", 20, BURST);
    assert_eq!((stats.successful, stats.failed), (12, 0), "{stats:?}");
    let t = c.traces(since, &["burst"], 12, Duration::from_secs(15));
    assert_served(&t, 12, &c);
    assert_no_overlaps(&t, &c);
    assert_both_nodes(&t, &c);
    assert_cdrs_name_agents(&t, since, &c);
    for a in agents {
        let took = t.iter().filter(|t| t.agent() == Some(a)).count();
        assert!(took > 0, "agent {a} took no call {}", c.logs());
    }
    assert!(
        c.db.wait_available(&agents, Duration::from_secs(5)),
        "agents free again after the burst {}",
        c.logs()
    );
}

#[test]
fn one_agent_serves_the_callers_of_both_nodes_in_enqueue_order() {
    let _serial = serial();
    let mut c = Cluster::start(
        "qc-order",
        Net {
            prefix: "127.0.8",
            base: 80,
        },
        6,
    );
    c.agents(&["3201"]);
    c.db.add_queue(&queue("order", "ringall"));
    c.db.add_member(&member("order", "3201", 0, 0));
    c.settle();
    let paused = c.db.block(c.db.store.set_paused("3201", true, now_ms()));
    assert!(paused.expect("pause the agent"));
    // Six callers 400 ms apart wait while the agent is paused. It resumes at 4 s, once all of
    // them are waiting, and takes one every 3 s: caller i leaves at 4 s + 3 s * (i + 1), so each
    // talks for a while if it is served in its turn, and one served out of turn shows as an
    // inversion or as a caller gone before an agent took it.
    let (since, start) = (now_ms(), Instant::now());
    let callers: Vec<_> = (0..6u32)
        .map(|i| {
            let at = start + Duration::from_millis(400 * u64::from(i));
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            let hold_ms = 4000 + 3000 * (i + 1) - 400 * i;
            c.sipp_async(&format!("order-{i}"), "order", 20 + i as u8, 1, hold_ms)
        })
        .collect();
    let waiting = wait_until(Duration::from_secs(10), || {
        c.db.events(since)
            .iter()
            .filter(|e| e.event.as_str() == "enqueue")
            .count()
            == 6
    });
    assert!(waiting.is_some(), "six callers waiting {}", c.logs());
    std::thread::sleep((start + Duration::from_secs(4)).saturating_duration_since(Instant::now()));
    let resumed_at = now_ms();
    let resumed = c.db.block(c.db.store.set_paused("3201", false, resumed_at));
    assert!(resumed.expect("resume the agent"));
    for (i, h) in callers.into_iter().enumerate() {
        let stats = h.join().expect("sipp thread");
        assert_eq!(
            (stats.successful, stats.failed),
            (1, 0),
            "caller {i}: {stats:?}"
        );
    }
    let t = c.traces(since, &["order"], 6, Duration::from_secs(10));
    assert_served(&t, 6, &c);
    assert_both_nodes(&t, &c);
    assert_no_overlaps(&t, &c);
    assert!(
        t.iter().all(|t| t.answers[0].0 >= resumed_at),
        "an answer before the agent resumed at {resumed_at}"
    );
    let order: Vec<(String, Option<i64>, i64)> = t
        .iter()
        .map(|t| (t.node.clone(), t.enqueued_ms, t.answers[0].0))
        .collect();
    assert_eq!(
        inversions(&t),
        0,
        "answers out of enqueue order (node, enqueued, answered): {order:#?} {}",
        c.logs()
    );
}

#[test]
fn killing_one_lockd_during_a_burst_leaves_assignment_going_without_overlaps() {
    let _serial = serial();
    let agents = ["3301", "3302", "3303"];
    let mut c = burst_cluster("qc-lockd-kill", 120, &agents);
    let since = now_ms();
    let burst = c.sipp_async("burst", "burst", 20, BURST.calls, BURST.hold_ms);
    std::thread::sleep(Duration::from_secs(5));
    // The first lockd is every node's preferred one: its clients must fail over.
    c.lockd[0].kill9();
    let killed = now_ms();
    let stats = burst.join().expect("sipp thread");
    assert_eq!((stats.successful, stats.failed), (12, 0), "{stats:?}");
    let t = c.traces(since, &["burst"], 12, Duration::from_secs(15));
    assert_served(&t, 12, &c);
    assert_no_overlaps(&t, &c);
    let after = t.iter().filter(|t| t.answers[0].0 > killed).count();
    assert!(
        after >= 5,
        "only {after} calls were answered after lockd {} died {}",
        LOCKD[0],
        c.logs()
    );
    assert!(
        c.db.wait_available(&agents, Duration::from_secs(5)),
        "agents free again after the burst {}",
        c.logs()
    );
}

/// Waits for the `answer` of `call_id` since `since_ms`; its time and agent.
fn answer_of(c: &Cluster, call_id: &str, since_ms: i64, limit: Duration) -> Option<(i64, String)> {
    let mut found = None;
    wait_until(limit, || {
        found =
            c.db.events(since_ms)
                .into_iter()
                .find(|e| e.call_id == call_id && e.event.as_str() == "answer")
                .map(|e| (e.at_ms, e.agent.unwrap_or_default()));
        found.is_some()
    });
    found
}

/// One agent, its phone registered through node B (which survives), queue `lease` with a
/// ring timeout of `ring`.
fn lease_cluster(ring: Duration) -> Cluster {
    let mut c = Cluster::start(
        "qc-lease",
        Net {
            prefix: "127.0.8",
            base: 160,
        },
        100,
    );
    c.phone("2401", 1, false);
    c.db.add_agent("3401", PIN);
    c.db.login("3401", "2401");
    c.db.add_queue(&callfleet_store::Queue {
        ring_timeout_ms: ring.as_millis() as i64,
        ..queue("lease", "ringall")
    });
    c.db.add_member(&member("lease", "3401", 0, 0));
    c.settle();
    c
}

#[test]
fn the_lease_of_a_killed_node_frees_its_agent_within_the_lease_ttl() {
    let _serial = serial();
    let ring = Duration::from_secs(5);
    let mut c = lease_cluster(ring);
    let since = now_ms();
    let mut first = Uac::new(&c.net.ip(20), c.nodes[0].sip);
    first
        .answered("lease", "lease-first", Duration::from_secs(5))
        .expect("node A answers the first caller");
    let (answered, agent) = answer_of(&c, "lease-first", since, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the agent never answered on node A {}", c.logs()));
    assert_eq!(agent, "3401");
    let held = c.db.agent("3401");
    assert_eq!(
        (held.state, held.current_node.as_deref()),
        (AgentState::InCall, Some("main-a")),
        "{held:?}"
    );
    c.nodes[0].kill9();
    let killed = now_ms();
    // A caller on node B waits for the agent node A held when it died.
    let mut second = Uac::new(&c.net.ip(21), c.nodes[1].sip);
    let ok = second
        .answered("lease", "lease-second", Duration::from_secs(5))
        .expect("node B answers the second caller");
    let ttl = ring + LEASE_MARGIN;
    let took = answer_of(&c, "lease-second", since, ttl + Duration::from_secs(15));
    let agent = c.db.agent("3401");
    let Some((at, by)) = took else {
        panic!(
            "the agent held by the killed node never took a new call within {:?} \
             (lease TTL {ttl:?}); it is still {:?} on {:?} {}",
            ttl + Duration::from_secs(15),
            agent.state,
            agent.current_node,
            c.logs()
        );
    };
    assert_eq!(by, "3401");
    eprintln!(
        "agent taken again {} ms after the kill, {} ms after its first answer (lease TTL {ttl:?})",
        at - killed,
        at - answered
    );
    // Not before the dead node's lease ran out (it was taken before the answer, never renewed),
    // and not long after.
    assert!(
        at >= answered + ttl.as_millis() as i64 - 2000,
        "agent taken at +{} ms after the first answer, before the lease TTL {ttl:?}",
        at - answered
    );
    assert!(
        at - killed <= (ttl + Duration::from_secs(8)).as_millis() as i64,
        "agent free {} ms after the kill (lease TTL {ttl:?}) {}",
        at - killed,
        c.logs()
    );
    // A real conversation on node B: the caller hears the phone's 600 Hz tone.
    let heard = second.talk(Uac::media_addr(&ok), 1000.0, Duration::from_secs(3));
    let share = tone_share(&heard[heard.len().saturating_sub(12_000)..], 600.0, 8000);
    assert!(share > 0.3, "caller on node B hears the agent: {share:.3}");
    second.in_dialog("BYE", "lease-second", &ok, None);
    assert!(
        c.db.wait_available(&["3401"], Duration::from_secs(5)),
        "agent free after the call {}",
        c.logs()
    );
}

/// Logs agent `ext` in on phone `p` by dialling `*11*EXT*PIN` through node `via`.
fn hot_desk_login(c: &Cluster, p: usize, via: usize, ext: &str, device: &str) {
    let uri = format!("sip:*11*{ext}*{PIN}@{}", c.nodes[via].sip);
    c.phones[p].dial(&uri);
    let moved = wait_until(Duration::from_secs(10), || {
        c.db.agent(ext).device.as_deref() == Some(device)
    });
    assert!(
        moved.is_some(),
        "{ext} not logged in on {device} by {uri}: {:?}\n{}",
        c.db.agent(ext),
        c.phones[p].log()
    );
}

/// One SIPp call to queue `q` through the carrier, held 3 s; its trace once it ended.
fn one_call(c: &Cluster, tag: &str, q: &str) -> Trace {
    let since = now_ms();
    let one = Burst {
        calls: 1,
        every_ms: 1000,
        hold_ms: 3000,
    };
    let stats = c.sipp(tag, q, 20, one);
    assert_eq!((stats.successful, stats.failed), (1, 0), "{tag}: {stats:?}");
    let mut t = c.traces(since, &[q], 1, Duration::from_secs(10));
    assert_served(&t, 1, c);
    t.remove(0)
}

#[test]
fn hot_desking_moves_calls_and_a_logged_out_agent_gets_voicemail() {
    let _serial = serial();
    let mut c = Cluster::start(
        "qc-hotdesk",
        Net {
            prefix: "127.0.9",
            base: 40,
        },
        100,
    );
    let p1 = c.phone("2001", 0, true);
    let p2 = c.phone("2002", 1, true);
    c.db.add_agent("1001", PIN);
    c.db.add_queue(&queue("desk", "ringall"));
    c.db.add_member(&member("desk", "1001", 0, 0));
    c.settle();

    hot_desk_login(&c, p1, 0, "1001", "2001");
    let t = one_call(&c, "desk-1", "desk");
    assert_eq!(t.agent(), Some("1001"));
    let rang = |p: usize| c.phones[p].calls_with("sipp");
    assert_eq!((rang(p1), rang(p2)), (1, 0), "the call rang phone 1");

    assert!(c.db.wait_available(&["1001"], Duration::from_secs(5)));
    hot_desk_login(&c, p2, 1, "1001", "2002");
    let t = one_call(&c, "desk-2", "desk");
    assert_eq!(t.agent(), Some("1001"));
    assert_eq!((rang(p1), rang(p2)), (1, 1), "the next call rang phone 2");

    assert!(c.db.wait_available(&["1001"], Duration::from_secs(5)));
    c.phones[p2].dial(&format!("sip:*12@{}", c.nodes[1].sip));
    let out = wait_until(Duration::from_secs(10), || {
        c.db.agent("1001").state == AgentState::LoggedOut
    });
    assert!(out.is_some(), "*12 logs out: {:?}", c.db.agent("1001"));

    leaves_a_voicemail(&c, "1001");
}

/// A call to agent `ext`'s own number reaches voicemail: greeting, beep, then the caller's
/// 1000 Hz tone recorded under `media.voicemail_dir` and listed in SQL.
fn leaves_a_voicemail(c: &Cluster, ext: &str) {
    let since = now_ms();
    let mut caller = Uac::new(&c.net.ip(21), c.nodes[0].sip);
    let ok = caller
        .answered(ext, "vm-1", Duration::from_secs(5))
        .expect("voicemail answers");
    caller.talk(Uac::media_addr(&ok), 1000.0, Duration::from_secs(5));
    caller.in_dialog("BYE", "vm-1", &ok, None);
    let mut vms = vec![];
    wait_until(Duration::from_secs(10), || {
        vms =
            c.db.block(c.db.store.voicemails(Some(ext)))
                .expect("read voicemails");
        !vms.is_empty()
    });
    let [vm] = vms.as_slice() else {
        panic!("one voicemail for {ext}: {vms:?} {}", c.logs());
    };
    assert_eq!((vm.caller.as_str(), vm.node.as_str()), ("caller", "main-a"));
    assert!(vm.created_at_ms >= since, "{vm:?}");
    let path = PathBuf::from(&vm.path);
    assert!(
        path.starts_with(c.dir.join("voicemail")),
        "under media.voicemail_dir: {vm:?}"
    );
    let (rate, samples) = wav_samples(&path);
    let secs = samples.len() as f64 / f64::from(rate);
    let share = tone_share(&samples, 1000.0, rate);
    assert!(
        secs >= 2.5 && vm.duration_ms >= 2500,
        "message of {secs:.1} s ({} ms in SQL)",
        vm.duration_ms
    );
    assert!(
        share > 0.3,
        "the caller's 1000 Hz tone is in the message: {share:.3}"
    );
}

/// Queue members as (agent, tier, position, vip_allowed).
type Members<'a> = &'a [(&'a str, i64, i64, bool)];

/// Three agents and a queue per rule: daily limit, linear, leastrecent, tiers, VIP (SIPp's
/// caller number `sipp` is a VIP of `vipq`).
fn rules_cluster(all: [&str; 3]) -> Cluster {
    let mut c = Cluster::start(
        "qc-rules",
        Net {
            prefix: "127.0.9",
            base: 80,
        },
        100,
    );
    let [a1, a2, a3] = all;
    c.agents(&all);
    let queues: [(&str, &str, Members); 5] = [
        // (queue, strategy, [(agent, tier, position, vip_allowed)])
        ("lim", "ringall", &[(a2, 0, 0, false), (a3, 1, 1, false)]),
        (
            "lin",
            "linear",
            &[(a1, 0, 1, false), (a2, 0, 2, false), (a3, 0, 0, false)],
        ),
        ("lr", "leastrecent", &[(a1, 0, 1, false), (a3, 0, 0, false)]),
        ("tiers", "ringall", &[(a1, 0, 0, false), (a2, 1, 1, false)]),
        ("vipq", "ringall", &[(a1, 0, 0, false), (a3, 1, 1, true)]),
    ];
    for (name, strategy, members) in queues {
        c.db.add_queue(&queue(name, strategy));
        for &(agent, tier, position, vip_allowed) in members {
            c.db.add_member(&callfleet_store::Member {
                vip_allowed,
                ..member(name, agent, tier, position)
            });
        }
    }
    let store = &c.db.store;
    assert!(c.db.block(store.add_vip("sipp", "vipq")).expect("add VIP"));
    assert!(c
        .db
        .block(store.set_daily_limit(a2, Some(1)))
        .expect("limit"));
    c.settle();
    c
}

#[test]
fn strategies_tiers_vip_and_daily_limits_pick_the_expected_agents() {
    let _serial = serial();
    let all = ["3601", "3602", "3603"];
    let [a1, a2, a3] = all;
    let c = rules_cluster(all);
    let store = &c.db.store;
    let call = |tag: &str, q: &str| {
        assert!(c.db.wait_available(&all, Duration::from_secs(5)), "{tag}");
        one_call(&c, tag, q)
    };
    let picked = |t: &Trace| (t.offers.clone(), t.agent().map(str::to_string));
    let only = |a: &str| (vec![a.to_string()], Some(a.to_string()));

    // Daily limit: a2 (tier 0) takes one call, then drops below a3 (tier 1).
    assert_eq!(
        picked(&call("lim-1", "lim")),
        only(a2),
        "a2 under its limit"
    );
    assert_eq!(picked(&call("lim-2", "lim")), only(a3), "a2 at its limit");
    assert!(c
        .db
        .block(store.set_daily_limit(a2, None))
        .expect("unlimit"));
    // linear: first by position (a3), not by extension.
    assert_eq!(picked(&call("lin", "lin")), only(a3), "linear");
    // leastrecent: a1 never took a call, a3 just did (a3 comes first by position).
    assert_eq!(picked(&call("lr", "lr")), only(a1), "leastrecent");
    // VIP caller: only the VIP-allowed a3 rings, though a1 is free and of a better tier.
    assert_eq!(picked(&call("vip", "vipq")), only(a3), "VIP");

    // Tiers: the tier-1 agent rings only while the tier-0 one is busy.
    assert!(c.db.wait_available(&all, Duration::from_secs(5)));
    let since = now_ms();
    let two = Burst {
        calls: 2,
        every_ms: 1500,
        hold_ms: 4000,
    };
    let stats = c.sipp("tiers", "tiers", 20, two);
    assert_eq!((stats.successful, stats.failed), (2, 0), "{stats:?}");
    let t = c.traces(since, &["tiers"], 2, Duration::from_secs(10));
    assert_served(&t, 2, &c);
    assert_eq!(picked(&t[0]), only(a1), "tier 0 first");
    assert_eq!(picked(&t[1]), only(a2), "tier 1 while tier 0 is busy");
}
