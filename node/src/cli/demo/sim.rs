//! The simulated traffic's shell: starts the agents' and the supervisor's phones and the
//! carrier on their loopback addresses, then places the scheduled calls until the demo stops.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::carrier::{Carrier, CALLER_VOICE};
use super::events::Events;
use super::media::Voice;
use super::phone::{Phone, Role};
use super::seed::{Seeded, AGENTS, SUPERVISOR_PHONE};
use super::sip::{serve_dialogs, Ua};
use super::traffic::{self, Schedule};

/// The carrier's SIP address.
pub const CARRIER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 30)), 5060);
/// The supervisor's phone's SIP address.
pub const SUPERVISOR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 29)), 5060);
/// The agents' phones are on 127.0.0.21, .22, ... in the order of [`AGENTS`].
const FIRST_PHONE: u8 = 21;
/// The agents' voices, in the order of [`AGENTS`]: tones apart from each other and from the
/// callers' 440 Hz, so a listener's phone can tell them apart.
const AGENT_TONES: [f32; 4] = [587.0, 659.0, 740.0, 831.0];
/// How long the demo waits for calls in progress to hang up when it stops.
const STOP_WAIT: Duration = Duration::from_secs(8);

/// A demo node as the simulator sees it.
#[derive(Debug, Clone)]
pub struct NodeAddr {
    pub name: String,
    pub sip: SocketAddr,
    pub main: bool,
}

/// The running simulation.
pub struct Sim {
    stop: CancellationToken,
    tasks: TaskTracker,
    pub events: Events,
}

impl Sim {
    /// Starts the phones (each registering with a node in turn) and the carrier (calling the
    /// main nodes), and the calls of `seed`'s schedule.
    pub async fn start(
        log: &std::path::Path,
        seeded: &Seeded,
        nodes: &[NodeAddr],
        seed: u64,
    ) -> anyhow::Result<Sim> {
        let names = nodes.iter().map(|n| (n.sip.ip(), n.name.clone())).collect();
        let events = Events::open(log, names)?;
        events.line(format!("traffic starts (seed {seed})"));
        let sim = Sim {
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            events,
        };
        let registrars: Vec<SocketAddr> = nodes.iter().map(|n| n.sip).collect();
        let mut n = 0usize;
        let mut voices = vec![(CALLER_VOICE.freq, "the caller".to_owned())];
        for (i, agent) in AGENTS.iter().enumerate() {
            let (Some(phone), Some(&freq)) = (agent.phone, AGENT_TONES.get(i)) else {
                continue;
            };
            let addr = SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, FIRST_PHONE + i as u8)),
                5060,
            );
            let role = Role::Agent {
                name: agent.name.to_owned(),
                plan: Box::new(Mutex::new(traffic::Agent::new(seed, phone))),
                voice: agent_voice(freq),
            };
            sim.phone(addr, phone, seeded, pick(&registrars, n), role)
                .await?;
            voices.push((freq, agent.name.to_owned()));
            n += 1;
        }
        let role = Role::Supervisor { voices };
        sim.phone(
            SUPERVISOR,
            SUPERVISOR_PHONE,
            seeded,
            pick(&registrars, n),
            role,
        )
        .await?;
        let (ua, incoming) = Ua::start(CARRIER, "carrier").await?;
        sim.tasks.spawn(serve_dialogs(
            ua.dialogs.clone(),
            incoming,
            sim.stop.clone(),
        ));
        let mains = nodes.iter().filter(|n| n.main).map(|n| n.sip).collect();
        let carrier = Carrier::new(ua, mains, sim.events.clone());
        sim.tasks.spawn(place_calls(
            carrier,
            seed,
            sim.events.clone(),
            sim.tasks.clone(),
            sim.stop.clone(),
        ));
        Ok(sim)
    }

    async fn phone(
        &self,
        addr: SocketAddr,
        ext: &str,
        seeded: &Seeded,
        registrar: SocketAddr,
        role: Role,
    ) -> anyhow::Result<()> {
        let password = seeded
            .phones
            .iter()
            .find(|p| p.ext == ext)
            .map(|p| p.password.clone())
            .with_context(|| format!("no credentials for phone {ext}"))?;
        let (phone, incoming) =
            Phone::start(addr, ext, &password, registrar, role, self.events.clone())
                .await
                .with_context(|| format!("start the simulated phone {ext}"))?;
        self.tasks
            .spawn(phone.run(incoming, self.tasks.clone(), self.stop.clone()));
        Ok(())
    }

    /// Hangs up every call, unregisters the phones (bounded in time) and returns the summary.
    pub async fn stop(self) -> String {
        self.stop.cancel();
        self.tasks.close();
        if tokio::time::timeout(STOP_WAIT, self.tasks.wait())
            .await
            .is_err()
        {
            self.events
                .line("some calls did not end in time; stopping anyway");
        }
        let summary = self.events.stats.summary();
        self.events.line(format!("traffic stopped: {summary}"));
        summary
    }
}

/// An agent's voice: speaks 1 s in every 2.6 s, half a cycle after the callers.
fn agent_voice(freq: f32) -> Voice {
    Voice {
        freq,
        on_ms: 1_000,
        off_ms: 1_600,
        offset_ms: 1_300,
    }
}

fn pick(list: &[SocketAddr], n: usize) -> SocketAddr {
    list.get(n % list.len().max(1))
        .copied()
        .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060))
}

/// Places the schedule's calls at their times until `stop`.
async fn place_calls(
    carrier: std::sync::Arc<Carrier>,
    seed: u64,
    events: Events,
    tasks: TaskTracker,
    stop: CancellationToken,
) {
    let start = tokio::time::Instant::now();
    for arrival in Schedule::new(seed) {
        tokio::select! {
            _ = tokio::time::sleep_until(start + arrival.at) => {}
            _ = stop.cancelled() => return,
        }
        events.stats.placed();
        let carrier = carrier.clone();
        let stop = stop.clone();
        tasks.spawn(async move { carrier.call(arrival, stop).await });
    }
}
