//! Table tests for the routing rule.

use std::time::Duration;

use super::*;
use crate::testutil::{node, NodeExt, NOW};
use crate::view::NodeStatus;

const TTL: Duration = Duration::from_secs(6);
const ME: &str = "main-a";

/// Expected outcome, naming the redirect target.
enum Want {
    Handle,
    Redirect(&'static str),
    Refuse,
}

struct Case {
    what: &'static str,
    role: Role,
    marked: bool,
    local: LocalLoad,
    rows: Vec<NodeStatus>,
    pending: &'static [(&'static str, u32)],
    down: &'static [&'static str],
    band: Band,
    want: Want,
}

impl Case {
    /// A main node, unmarked INVITE, band 10 % + 1 call, no pending redirects, no peer down.
    fn main(what: &'static str, local: LocalLoad, rows: Vec<NodeStatus>, want: Want) -> Self {
        Case {
            what,
            role: Role::Main,
            marked: false,
            local,
            rows,
            pending: &[],
            down: &[],
            band: Band {
                relative: 0.10,
                calls: 1,
            },
            want,
        }
    }
    fn role(self, role: Role) -> Self {
        Case { role, ..self }
    }
    fn marked(self) -> Self {
        Case {
            marked: true,
            ..self
        }
    }
    fn pending(self, pending: &'static [(&'static str, u32)]) -> Self {
        Case { pending, ..self }
    }
    fn down(self, down: &'static [&'static str]) -> Self {
        Case { down, ..self }
    }
    fn band(self, relative: f32, calls: u32) -> Self {
        Case {
            band: Band { relative, calls },
            ..self
        }
    }

    /// Runs the case; returns what `choose` decided and what the case wants, both as decisions.
    fn run(&self) -> (Decision, Decision) {
        let view = ClusterView::from_rows(self.rows.clone(), NOW, TTL);
        let mut pending = vec![0; view.nodes().len()];
        for (name, sent) in self.pending {
            if let Some(i) = view.position(name) {
                pending[i] = *sent;
            }
        }
        let down: Vec<bool> = view
            .nodes()
            .iter()
            .map(|n| self.down.contains(&n.name.as_str()))
            .collect();
        let peers = Peers {
            pending: &pending,
            down: &down,
        };
        let choice = choose(
            &view,
            ME,
            self.role,
            self.marked,
            self.local,
            peers,
            self.band,
        );
        let want = match self.want {
            Want::Handle => Decision::Handle,
            Want::Refuse => Decision::Refuse,
            Want::Redirect(name) => {
                let sip = view
                    .get(name)
                    .map(|n| n.sip)
                    .expect("case redirects to a node of its view");
                Decision::Redirect {
                    name: name.to_owned(),
                    sip,
                }
            }
        };
        (choice.to_decision(&view), want)
    }
}

fn local(calls: u32, capacity: u32) -> LocalLoad {
    LocalLoad {
        calls,
        capacity,
        refusing: false,
        draining: false,
    }
}

fn refusing(calls: u32, capacity: u32) -> LocalLoad {
    LocalLoad {
        refusing: true,
        ..local(calls, capacity)
    }
}

fn draining(calls: u32, capacity: u32) -> LocalLoad {
    LocalLoad {
        draining: true,
        ..local(calls, capacity)
    }
}

fn b(calls: u32, capacity: u32) -> NodeStatus {
    node("main-b", 12, calls, capacity)
}

fn c(calls: u32, capacity: u32) -> NodeStatus {
    node("main-c", 13, calls, capacity)
}

fn d(calls: u32, capacity: u32) -> NodeStatus {
    node("extra-d", 14, calls, capacity).role(Role::Extra)
}

fn check(cases: Vec<Case>) {
    for case in cases {
        let (got, want) = case.run();
        assert_eq!(got, want, "{}", case.what);
    }
}

#[test]
fn least_loaded_wins() {
    use Want::*;
    check(vec![
        Case::main(
            "least loaded peer wins",
            local(50, 100),
            vec![b(10, 100), c(30, 100)],
            Redirect("main-b"),
        ),
        Case::main(
            "extra peers are targets too",
            local(50, 100),
            vec![b(40, 100), d(5, 100)],
            Redirect("extra-d"),
        ),
        Case::main(
            "utilisation, not call count",
            local(60, 100),
            vec![b(50, 1000), c(10, 20)],
            Redirect("main-b"),
        ),
        Case::main(
            "self least loaded",
            local(5, 100),
            vec![b(10, 100), c(30, 100)],
            Handle,
        ),
    ]);
}

#[test]
fn the_band_keeps_self_within_it() {
    use Want::*;
    check(vec![
        Case::main(
            "10 % + 1 of the peer's 10 keeps 12",
            local(12, 100),
            vec![b(10, 100)],
            Handle,
        ),
        Case::main(
            "past 10 % + 1 of the peer's 10 redirects",
            local(13, 100),
            vec![b(10, 100)],
            Redirect("main-b"),
        ),
        Case::main(
            "the band scales with load: 100 vs 90",
            local(100, 500),
            vec![b(90, 500)],
            Handle,
        ),
        Case::main(
            "the band scales with load: 101 vs 90",
            local(101, 500),
            vec![b(90, 500)],
            Redirect("main-b"),
        ),
        Case::main(
            "a few calls: one more than the idle peer keeps",
            local(1, 500),
            vec![b(0, 500)],
            Handle,
        ),
        Case::main(
            "a few calls: two more than the idle peer redirects",
            local(2, 500),
            vec![b(0, 500)],
            Redirect("main-b"),
        ),
        Case::main(
            "band edge is inclusive (25 % of 8 + 0)",
            local(10, 64),
            vec![b(8, 64)],
            Handle,
        )
        .band(0.25, 0),
        Case::main(
            "just past the band redirects",
            local(11, 64),
            vec![b(8, 64)],
            Redirect("main-b"),
        )
        .band(0.25, 0),
        Case::main(
            "peer of another size: judged at our size",
            local(21, 100),
            vec![b(100, 1000)],
            Redirect("main-b"),
        ),
        Case::main(
            "no band, equal load keeps self",
            local(10, 100),
            vec![b(10, 100)],
            Handle,
        )
        .band(0.0, 0),
        Case::main(
            "no band, one call more redirects",
            local(11, 100),
            vec![b(10, 100)],
            Redirect("main-b"),
        )
        .band(0.0, 0),
        Case::main(
            "NaN relative band counts as 0",
            local(11, 100),
            vec![b(10, 100)],
            Redirect("main-b"),
        )
        .band(f32::NAN, 0),
        Case::main(
            "negative relative band counts as 0",
            local(10, 100),
            vec![b(10, 100)],
            Handle,
        )
        .band(-1.0, 0),
        Case::main("empty view, self fine", local(99, 100), vec![], Handle),
    ]);
}

#[test]
fn peers_found_down_by_probes_are_never_chosen() {
    use Want::*;
    check(vec![
        Case::main(
            "idle peer down: the next one",
            refusing(0, 100),
            vec![b(0, 100), c(50, 100)],
            Redirect("main-c"),
        )
        .down(&["main-b"]),
        Case::main(
            "every peer down: self keeps it",
            local(90, 100),
            vec![b(0, 100), c(0, 100)],
            Handle,
        )
        .down(&["main-b", "main-c"]),
        Case::main(
            "every peer down and self refusing: refused",
            refusing(0, 100),
            vec![b(0, 100)],
            Refuse,
        )
        .down(&["main-b"]),
        Case::main(
            "a name not in the view changes nothing",
            refusing(0, 100),
            vec![b(0, 100)],
            Redirect("main-b"),
        )
        .down(&["gone"]),
    ]);
}

#[test]
fn ties_break_by_name() {
    use Want::*;
    check(vec![
        Case::main(
            "equal peers, first name",
            refusing(0, 100),
            vec![c(10, 100), b(10, 100)],
            Redirect("main-b"),
        ),
        Case::main(
            "equal fractions, first name",
            refusing(0, 100),
            vec![c(10, 100), b(20, 200)],
            Redirect("main-b"),
        ),
        Case::main(
            "smaller fraction beats name",
            refusing(0, 100),
            vec![c(19, 200), b(10, 100)],
            Redirect("main-c"),
        ),
        Case::main(
            "extra-d sorts first",
            refusing(0, 100),
            vec![b(1, 10), d(1, 10)],
            Redirect("extra-d"),
        ),
    ]);
}

#[test]
fn pending_redirects_count_as_load() {
    use Want::*;
    check(vec![
        Case::main(
            "pending moves the choice",
            local(50, 100),
            vec![b(10, 100), c(25, 100)],
            Redirect("main-c"),
        )
        .pending(&[("main-b", 20)]),
        Case::main(
            "pending fills a node",
            refusing(0, 100),
            vec![b(95, 100), c(99, 100)],
            Redirect("main-c"),
        )
        .pending(&[("main-b", 5)]),
        Case::main(
            "pending fills every peer",
            refusing(0, 100),
            vec![b(95, 100)],
            Refuse,
        )
        .pending(&[("main-b", 5)]),
        Case::main(
            "pending on self's row is ignored",
            local(10, 100),
            vec![node(ME, 11, 0, 100), b(50, 100)],
            Handle,
        )
        .pending(&[(ME, 1000)]),
    ]);
}

#[test]
fn nodes_that_cannot_take_calls_are_skipped() {
    use Want::*;
    let stale = TTL.as_millis() as i64;
    check(vec![
        Case::main(
            "stale heartbeat skipped",
            refusing(0, 100),
            vec![b(0, 100).aged(stale), c(50, 100)],
            Redirect("main-c"),
        ),
        Case::main(
            "heartbeat one ms younger than ttl",
            refusing(0, 100),
            vec![b(0, 100).aged(stale - 1), c(50, 100)],
            Redirect("main-b"),
        ),
        Case::main(
            "draining skipped",
            refusing(0, 100),
            vec![b(0, 100).draining(), c(50, 100)],
            Redirect("main-c"),
        ),
        Case::main(
            "refusing skipped",
            refusing(0, 100),
            vec![b(0, 100).refusing(), c(50, 100)],
            Redirect("main-c"),
        ),
        Case::main(
            "shed level 3 skipped",
            refusing(0, 100),
            vec![b(0, 100).shed(3), c(50, 100)],
            Redirect("main-c"),
        ),
        Case::main(
            "full skipped",
            refusing(0, 100),
            vec![b(100, 100), c(99, 100)],
            Redirect("main-c"),
        ),
        Case::main(
            "over capacity skipped",
            refusing(0, 100),
            vec![b(150, 100), c(99, 100)],
            Redirect("main-c"),
        ),
        Case::main(
            "capacity 0 never chosen",
            refusing(0, 100),
            vec![b(0, 0)],
            Refuse,
        ),
    ]);
}

#[test]
fn self_that_cannot_take_calls_redirects() {
    use Want::*;
    check(vec![
        Case::main(
            "self capacity 0 redirects",
            local(0, 0),
            vec![b(99, 100)],
            Redirect("main-b"),
        ),
        Case::main(
            "self full redirects",
            local(100, 100),
            vec![b(99, 100)],
            Redirect("main-b"),
        ),
        Case::main(
            "self draining redirects",
            draining(0, 100),
            vec![b(90, 100)],
            Redirect("main-b"),
        ),
        Case::main(
            "self refusing redirects",
            refusing(0, 100),
            vec![b(90, 100)],
            Redirect("main-b"),
        ),
    ]);
}

#[test]
fn local_load_overrides_self_row() {
    use Want::*;
    let me = |calls, capacity| node(ME, 11, calls, capacity);
    check(vec![
        Case::main(
            "idle own row is never a target",
            local(100, 100),
            vec![me(0, 1000), b(50, 100)],
            Redirect("main-b"),
        ),
        Case::main(
            "only own row in view",
            refusing(0, 100),
            vec![me(0, 100)],
            Refuse,
        ),
        Case::main(
            "draining own row, live load fine",
            local(0, 100),
            vec![me(0, 100).draining(), b(0, 100)],
            Handle,
        ),
        Case::main(
            "stale own row, live load fine",
            local(0, 100),
            vec![me(0, 100).aged(60_000)],
            Handle,
        ),
    ]);
}

#[test]
fn no_candidate_refuses() {
    use Want::*;
    check(vec![
        Case::main(
            "self draining, peers stale",
            draining(0, 100),
            vec![b(0, 100).aged(60_000)],
            Refuse,
        ),
        Case::main(
            "self full, peers full",
            local(100, 100),
            vec![b(100, 100), c(7, 7)],
            Refuse,
        ),
        Case::main(
            "self refusing, empty view",
            refusing(0, 100),
            vec![],
            Refuse,
        ),
    ]);
}

#[test]
fn marked_invite_is_never_redirected() {
    use Want::*;
    check(vec![
        Case::main("marked, idle peer", local(90, 100), vec![b(0, 100)], Handle).marked(),
        Case::main(
            "marked, refusing",
            refusing(99, 100),
            vec![b(0, 100)],
            Handle,
        )
        .marked(),
        Case::main(
            "marked, draining",
            draining(0, 100),
            vec![b(0, 100)],
            Handle,
        )
        .marked(),
        Case::main(
            "marked, at capacity",
            local(100, 100),
            vec![b(0, 100)],
            Refuse,
        )
        .marked(),
        Case::main("marked, capacity 0", local(0, 0), vec![b(0, 100)], Refuse).marked(),
    ]);
}

#[test]
fn extra_never_redirects() {
    use Want::*;
    let extra = |what, local, want| {
        Case::main(what, local, vec![b(0, 100), c(0, 100)], want).role(Role::Extra)
    };
    check(vec![
        extra("extra, busier than peers", local(90, 100), Handle),
        extra("extra, refusing", refusing(0, 100), Refuse),
        extra("extra, draining", draining(0, 100), Refuse),
        extra("extra, at capacity", local(100, 100), Refuse),
        extra("extra, marked and refusing", refusing(50, 100), Handle).marked(),
        extra("extra, marked at capacity", local(100, 100), Refuse).marked(),
    ]);
}

#[test]
fn choice_outside_the_view_resolves_to_refuse() {
    let view = ClusterView::from_rows(vec![b(0, 1)], NOW, TTL);
    assert_eq!(
        Choice::Redirect(0).to_decision(&view),
        Decision::Redirect {
            name: "main-b".into(),
            sip: view.nodes()[0].sip
        }
    );
    assert_eq!(Choice::Redirect(1).to_decision(&view), Decision::Refuse);
}

#[test]
fn short_pending_slice_counts_missing_as_zero() {
    let view = ClusterView::from_rows(vec![b(10, 100), c(20, 100)], NOW, TTL);
    let choice = choose(
        &view,
        ME,
        Role::Main,
        false,
        refusing(0, 1),
        Peers::default(),
        Band::NONE,
    );
    assert_eq!(choice, Choice::Redirect(0));
}
