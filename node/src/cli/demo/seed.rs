//! The demo's call centre, written through the store's typed methods: two queues (`sales` and
//! `support`) with members in tiers, five agents (four with a simulated phone, one left for the
//! visitor's own softphone), the phones' credentials, a VIP caller, and the agents with phones
//! logged in on them. Written on every start, so the demo always begins from this call centre
//! (rows the visitor added are kept).

use anyhow::Context as _;
use callfleet_store::{Agent, Fallback, Member, Queue, Store, Strategy};

use crate::registrar::credentials;

/// The digest realm of the demo's nodes (the config default).
pub const REALM: &str = "callfleet";
/// The queue most callers dial.
pub const SALES: &str = "sales";
/// The other queue.
pub const SUPPORT: &str = "support";
/// A caller number that is VIP in `sales`.
pub const VIP_CALLER: &str = "+15550100";
/// The demo admin's phone: listen-in from the panel dials it, and the demo answers it.
pub const SUPERVISOR_PHONE: &str = "2900";

/// One agent of the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentDef {
    pub ext: &'static str,
    pub name: &'static str,
    pub pin: &'static str,
    /// The simulated phone the agent is logged in on; `None`: free for a real softphone.
    pub phone: Option<&'static str>,
}

/// The agents: 1001-1004 on simulated phones 2001-2004, 1005 for a softphone of your own.
pub const AGENTS: [AgentDef; 5] = [
    AgentDef {
        ext: "1001",
        name: "Alice Moreau",
        pin: "1111",
        phone: Some("2001"),
    },
    AgentDef {
        ext: "1002",
        name: "Bilal Haddad",
        pin: "2222",
        phone: Some("2002"),
    },
    AgentDef {
        ext: "1003",
        name: "Chen Wei",
        pin: "3333",
        phone: Some("2003"),
    },
    AgentDef {
        ext: "1004",
        name: "Dana Kowalski",
        pin: "4444",
        phone: Some("2004"),
    },
    AgentDef {
        ext: "1005",
        name: "Erin Walsh",
        pin: "5555",
        phone: None,
    },
];

/// `(queue, agent, tier, may take VIP callers)`.
pub const MEMBERS: [(&str, &str, i64, bool); 8] = [
    (SALES, "1001", 0, true),
    (SALES, "1002", 0, false),
    (SALES, "1003", 1, false),
    (SALES, "1005", 1, false),
    (SUPPORT, "1003", 0, false),
    (SUPPORT, "1004", 0, true),
    (SUPPORT, "1002", 1, false),
    (SUPPORT, "1005", 1, false),
];

/// The two queues: `sales` rings the agent idle longest and sends callers on to `support`
/// after two minutes; `support` rings every free agent of its best tier at once and ends in
/// Dana's voicemail.
pub fn queues() -> [Queue; 2] {
    let queue = |name: &str, strategy: Strategy, fallback: Fallback, target: &str| Queue {
        name: name.to_owned(),
        strategy,
        ring_timeout_ms: 15_000,
        max_wait_ms: 120_000,
        announce_interval_ms: 30_000,
        moh_class: "default".to_owned(),
        wrapup_ms: 5_000,
        fallback,
        fallback_target: Some(target.to_owned()),
        rr_last: None,
        recording: Default::default(),
        recording_prompt: false,
    };
    [
        queue(SALES, Strategy::LeastRecent, Fallback::Queue, SUPPORT),
        queue(SUPPORT, Strategy::RingAll, Fallback::Voicemail, "1004"),
    ]
}

/// A simulated phone's credentials for this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneLogin {
    pub ext: String,
    pub password: String,
}

/// What the seeding did that the visitor should know about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seeded {
    /// The simulated phones (agents' and the supervisor's), with fresh passwords.
    pub phones: Vec<PhoneLogin>,
    /// Agents that could not be logged in (still tied to a call from an earlier run: the
    /// node that held it frees them when it starts).
    pub not_logged_in: Vec<String>,
}

/// Writes the call centre. Phone passwords are made new on every start (only their digests
/// are stored) and returned for the simulated phones.
pub async fn seed(store: &Store, now_ms: i64) -> anyhow::Result<Seeded> {
    for q in queues() {
        store
            .upsert_queue(&q)
            .await
            .with_context(|| format!("write queue {}", q.name))?;
    }
    let mut phones = Vec::new();
    for a in AGENTS {
        let pin_hash = callfleet_store::pin::hash(a.ext, a.pin).context("hash a demo PIN")?;
        store
            .upsert_agent(&Agent::new(a.ext, a.name, &pin_hash, now_ms))
            .await
            .with_context(|| format!("write agent {}", a.ext))?;
        if let Some(phone) = a.phone {
            let name = format!("{}'s phone", a.name);
            phones.push(device(store, phone, &name, now_ms).await?);
        }
    }
    phones.push(device(store, SUPERVISOR_PHONE, "Supervisor's phone", now_ms).await?);
    for (queue, agent, tier, vip_allowed) in MEMBERS {
        let member = Member {
            queue: queue.to_owned(),
            agent: agent.to_owned(),
            tier,
            vip_allowed,
            weight: 1,
            position: 0,
        };
        store
            .upsert_member(&member)
            .await
            .with_context(|| format!("add agent {agent} to queue {queue}"))?;
    }
    store
        .add_vip(VIP_CALLER, SALES)
        .await
        .context("write the VIP caller")?;
    let mut not_logged_in = Vec::new();
    for a in AGENTS {
        let Some(phone) = a.phone else { continue };
        let ok = store
            .login_agent(a.ext, phone, now_ms)
            .await
            .with_context(|| format!("log agent {} in", a.ext))?;
        if !ok {
            not_logged_in.push(a.ext.to_owned());
        }
    }
    Ok(Seeded {
        phones,
        not_logged_in,
    })
}

/// Writes device `ext` with a new random password; returns its login.
async fn device(store: &Store, ext: &str, name: &str, now_ms: i64) -> anyhow::Result<PhoneLogin> {
    let password = callfleet_web::auth::random_hex(12);
    let row = credentials::device(ext, REALM, &password, name, now_ms)
        .with_context(|| format!("make device {ext}"))?;
    store
        .upsert_device(&row)
        .await
        .with_context(|| format!("write device {ext}"))?;
    Ok(PhoneLogin {
        ext: ext.to_owned(),
        password,
    })
}

#[cfg(test)]
mod tests;
