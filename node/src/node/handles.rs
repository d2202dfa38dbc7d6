//! The node's handles: each subsystem is given the few parts it uses, never the whole node.
//! [`super::build`] makes the parts in dependency order and assembles these from them; every
//! handle is a cheap clone (shared parts behind `Arc`s or handles of their own).
//!
//! - [`Base`]: configuration, run state, database, metrics: what every subsystem reads
//!   (background jobs such as MP3 conversion and the SIP trace writer take only this).
//! - [`Cluster`]: the other nodes: the balancer's view, the signer, the agent leases.
//! - [`MediaKit`]: RTP ports, music on hold, prompts (built-in and uploaded), the track counter.
//! - [`Pins`]: hot-desk PIN checks (their throttle, the agents' rows, the guard metrics).
//! - [`Leases`]: agents taken under their leases (the agents' rows, the lease client, the run
//!   state): releasing an agent and ending its wrap-up, also after the call is gone.
//! - [`Legs`]: what a call that rings agents through the queue's legs uses: the base parts,
//!   the live-call table with the record writer and the SIP trace (what a call leaves), the
//!   media kit, the cluster, the configuration cache, the local queue and the listenable
//!   calls. The queue's flow (`queue::caller`, `legs`, `take`, `hold`, `transfer`,
//!   `attended`, `xnode`), a direct call to an agent and a ring group (`dialplan`) take it;
//!   they cannot reach the registrar or the PIN checks.
//! - [`CallKit`]: every part a call may come to use: the [`Legs`], the registrar (the calling
//!   phone identified, `sip::phone`) and the PIN checks (the hot-desk codes). It stays where a
//!   call is dispatched (`sip::call`, `dialplan::run`), which hands each other flow its handle
//!   (made from the [`Legs`], but [`HotDesk`] from the kit itself):
//! - [`Answering`]: what answering an INVITE and watching the answered call's life use;
//!   [`Dialling`]: what an outbound call uses (`crate::outbound`); [`Menus`]: what a number's
//!   schedule and IVR menus use (`dialplan::flow`); [`Mailboxes`]: what leaving a voicemail
//!   uses (`queue::voicemail`); [`HotDesk`]: what the hot-desk codes use (`dialplan`).
//! - [`Recordings`], [`Quality`]: what recording a call and storing a leg's RTP quality use
//!   (made from the [`Legs`] where the call opens its recorder or ends a leg; an outbound
//!   call's quality from its [`Answering`]).
//! - [`Peers`]: what asking the node that holds a call uses (`crate::holder`).
//! - [`Listening`]: listen-in (`crate::listen`); [`LiveTraces`]: live SIP traces
//!   (`crate::trace::remote`); both handed out by the HTTP layer.
//! - [`Edge`]: the SIP edge (front, TCP and TLS, inbound checks, admission, transaction
//!   dispatch): what it reads itself, and a [`CallStarter`] that runs each call it admits
//!   with a [`CallKit`] the edge cannot reach into.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use callfleet_lb::{Balancer, LocalLoad};
use callfleet_store::Store;
use callfleet_web::Metrics;

use crate::calls::CallTable;
use crate::config::Config;
use crate::lifecycle::Lifecycle;
use crate::media::{moh::Library, ports::PortPool, prompts::Prompts, uploaded::Uploaded};
use crate::records::Recorder;
use crate::registrar::Registrar;
use crate::throttle::Throttle;

/// Configuration, run state, database and metrics.
#[derive(Clone)]
pub struct Base {
    pub cfg: Arc<Config>,
    /// Draining, refusing, the shed level, the stop and hang-up tokens (`crate::lifecycle`).
    pub life: Arc<Lifecycle>,
    pub store: Store,
    pub metrics: Metrics,
}

impl Base {
    /// Whether optional background work may start an item now ([`Lifecycle::background_allowed`]).
    pub fn background_allowed(&self) -> bool {
        self.life.background_allowed()
    }
}

/// The other nodes of the cluster.
#[derive(Clone)]
pub struct Cluster {
    /// The view of the heartbeats: who is alive, where, with which load.
    pub balancer: Balancer,
    /// Signs this node's requests to other nodes with the cluster secret.
    pub signer: Arc<callfleet_sign::Signer>,
    /// Agent leases (lockd, or in-process on one host).
    pub locks: callfleet_lockd::LockClient,
}

/// What calls play and send media with.
#[derive(Clone)]
pub struct MediaKit {
    pub ports: PortPool,
    pub moh: Library,
    pub prompts: Prompts,
    /// Prompts uploaded on the admin pages, read from SQL once per upload.
    pub uploads: Arc<Uploaded>,
    /// Counts calls, to spread callers over the music-on-hold tracks.
    pub seq: Arc<AtomicUsize>,
}

/// Hot-desk PIN checks (`dialplan::pin`).
#[derive(Clone)]
pub struct Pins {
    /// Wrong PINs per phone and per agent (a std mutex, never held across an `.await`).
    pub throttle: Arc<Mutex<Throttle<String>>>,
    /// The agents' rows (their PIN hashes).
    pub store: Store,
    pub metrics: Metrics,
}

/// Agents taken under their leases (`queue::legs`, `queue::fence`): their rows, changed under
/// the lease's fencing token, the lease client, and the run state (a wrap-up's retries end
/// when the node stops).
#[derive(Clone)]
pub struct Leases {
    pub store: Store,
    pub locks: callfleet_lockd::LockClient,
    pub life: Arc<Lifecycle>,
}

/// What a call that rings agents through the queue's legs uses: the queue's flow
/// (`queue::caller`, `legs`, `take`, `hold`, `transfer`, `attended`, `xnode`), a direct call
/// to an agent and a ring group (`dialplan`). Every part a call may come to use but the
/// registrar and the PIN checks, which these flows cannot reach.
///
/// A waiting caller is queued in the store and the local queue, hears the cache's music and
/// the prompts; an agent is taken under its lease (the cluster's lock client, the run state's
/// generation), found registered (the store, the local queue's reachability), dialled (RTP
/// ports, the dialog layer, the tracer); the bridge is listenable, recorded and measured (the
/// listenable calls, the record writer, the live-call table, the metrics); a transfer routes
/// by the cache, and an attended one across nodes uses the balancer and the signer.
#[derive(Clone)]
pub struct Legs {
    pub cfg: Arc<Config>,
    pub life: Arc<Lifecycle>,
    pub store: Store,
    pub metrics: Metrics,
    /// The live calls of this node.
    pub calls: Arc<CallTable>,
    /// The record writer's queue (CDRs, queue events, recordings, quality).
    pub recorder: Recorder,
    /// Every call's SIP messages (`crate::trace`).
    pub trace: crate::trace::Tracer,
    pub media: MediaKit,
    pub cluster: Cluster,
    /// Queues, agents, menus, carriers, cached from SQL.
    pub realtime: Arc<crate::realtime::Realtime>,
    /// Calls of this node waiting in the cluster queue, and the legs handed between calls.
    pub queue: Arc<crate::queue::Local>,
    /// Bridged calls of this node that supervisors may listen to.
    pub listen: Arc<crate::listen::Listenable>,
}

impl Legs {
    /// What answering an INVITE and the answered call's life use.
    pub fn answering(&self) -> Answering {
        Answering {
            cfg: self.cfg.clone(),
            life: self.life.clone(),
            metrics: self.metrics.clone(),
            calls: self.calls.clone(),
            recorder: self.recorder.clone(),
        }
    }

    /// What an outbound call uses.
    pub fn dialling(&self) -> Dialling {
        Dialling {
            answering: self.answering(),
            store: self.store.clone(),
            trace: self.trace.clone(),
            ports: self.media.ports.clone(),
        }
    }

    /// What a number's schedule and IVR menus use.
    pub fn menus(&self) -> Menus {
        Menus {
            cfg: self.cfg.clone(),
            store: self.store.clone(),
            realtime: self.realtime.clone(),
            prompts: self.media.prompts.clone(),
            uploads: self.media.uploads.clone(),
        }
    }

    /// What leaving a voicemail uses.
    pub fn mailboxes(&self) -> Mailboxes {
        Mailboxes {
            cfg: self.cfg.clone(),
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            recorder: self.recorder.clone(),
            prompts: self.media.prompts.clone(),
        }
    }

    /// What releasing an agent and ending its wrap-up use.
    pub fn leases(&self) -> Leases {
        Leases {
            store: self.store.clone(),
            locks: self.cluster.locks.clone(),
            life: self.life.clone(),
        }
    }

    /// What recording this call uses.
    pub fn recordings(&self) -> Recordings {
        Recordings {
            cfg: self.cfg.clone(),
            metrics: self.metrics.clone(),
            recorder: self.recorder.clone(),
        }
    }

    /// What storing this call's legs' quality uses (the [`Answering`] parts hold all of it).
    pub fn quality(&self) -> Quality {
        self.answering().quality()
    }
}

/// Every part a call may come to use: what a call is dispatched with (`sip::call`,
/// `dialplan::run`), which hands each flow the narrow handle made here or from the [`Legs`].
/// Only dispatch reaches the registrar (the calling phone identified by its address,
/// `sip::phone`) and the PIN checks (the hot-desk codes, [`HotDesk`]); the queue's flow, a
/// direct call and a ring group are handed the [`Legs`].
#[derive(Clone)]
pub struct CallKit {
    /// What the queue's flow, a direct call and a ring group use: all of the rest.
    pub legs: Legs,
    /// Phones' registrations: a phone's INVITE is checked against its address.
    pub registrar: Registrar,
    pub pins: Pins,
}

impl CallKit {
    /// What the hot-desk codes use.
    pub fn hot_desk(&self) -> HotDesk {
        HotDesk {
            store: self.legs.store.clone(),
            pins: self.pins.clone(),
            prompts: self.legs.media.prompts.clone(),
        }
    }
}

/// What answering an INVITE and watching the answered call's life use (`sip::call`'s
/// answer steps, [`crate::sip::ctx::CallCtx`]): the configuration (our Contact, the node's
/// name, `call.max_duration`), the run state (shutdown hangs up), the metrics (answered
/// calls), the live-call table (the call's state and caller) and the record writer (its
/// live-call row, its answer).
#[derive(Clone)]
pub struct Answering {
    pub cfg: Arc<Config>,
    pub life: Arc<Lifecycle>,
    pub metrics: Metrics,
    pub calls: Arc<CallTable>,
    pub recorder: Recorder,
}

impl Answering {
    /// What storing the call's legs' quality uses (all of it among these parts).
    pub fn quality(&self) -> Quality {
        Quality {
            cfg: self.cfg.clone(),
            calls: self.calls.clone(),
            metrics: self.metrics.clone(),
            recorder: self.recorder.clone(),
        }
    }
}

/// What an outbound call uses (`crate::outbound`): what answering the phone uses (with the
/// `outbound` section, the RTP metrics, the call's agent in the live-call table, the legs'
/// quality), the store (the agent logged in on the phone), the tracer (the trunk's leg linked
/// to the call) and the RTP ports (the phone's and the trunk's legs).
#[derive(Clone)]
pub struct Dialling {
    pub answering: Answering,
    pub store: Store,
    pub trace: crate::trace::Tracer,
    pub ports: PortPool,
}

/// What a number's schedule and IVR menus use (`dialplan::flow`): the configuration cache
/// (numbers, menus, where they lead, uploaded prompts' versions), the store and the uploaded
/// prompts (read once per upload), the `media.prompts_dir` of the configuration and the
/// node's own prompts.
#[derive(Clone)]
pub struct Menus {
    pub cfg: Arc<Config>,
    pub store: Store,
    pub realtime: Arc<crate::realtime::Realtime>,
    pub prompts: Prompts,
    pub uploads: Arc<Uploaded>,
}

/// What leaving a voicemail uses (`queue::voicemail`): the `media` section (quota, longest
/// message, the voicemail directory) and the node's name, the store (the mailbox's use), the
/// metrics (full mailboxes), the record writer (the message's row) and the prompts.
#[derive(Clone)]
pub struct Mailboxes {
    pub cfg: Arc<Config>,
    pub store: Store,
    pub metrics: Metrics,
    pub recorder: Recorder,
    pub prompts: Prompts,
}

/// What the hot-desk codes use (`dialplan`'s login and logout): the store (the calling
/// phone's registrations, the agents' logins), the PIN checks and the prompts.
#[derive(Clone)]
pub struct HotDesk {
    pub store: Store,
    pub pins: Pins,
    pub prompts: Prompts,
}

/// What recording a call uses (`crate::recording::start` and `finish`): the `recording`
/// section and the node's name, the recording metrics, and the record writer that stores the
/// row with its MP3 job.
#[derive(Clone)]
pub struct Recordings {
    pub cfg: Arc<Config>,
    pub metrics: Metrics,
    pub recorder: Recorder,
}

/// What storing a leg's RTP quality uses (`crate::quality::record`): the live-call table (the
/// call's start names its record), the node's name, the media histograms, the record writer.
#[derive(Clone)]
pub struct Quality {
    pub cfg: Arc<Config>,
    pub calls: Arc<CallTable>,
    pub metrics: Metrics,
    pub recorder: Recorder,
}

/// What asking the node that holds a call uses (`crate::holder`): this node's configuration
/// (its name, the TLS settings of the node-to-node client), the database's live calls, the
/// cluster view (who is alive, where) and the signer of node-to-node requests.
#[derive(Clone)]
pub struct Peers {
    pub cfg: Arc<Config>,
    pub store: Store,
    pub balancer: Balancer,
    pub signer: Arc<callfleet_sign::Signer>,
}

/// What listen-in uses (`crate::listen`): the holder lookup and the supervisors'
/// registrations ([`Peers`]), the calls held here (bridged ones in `listen`), an RTP port and
/// the dialog layer (in the local queue) to dial the supervisor, the SIP trace to link the
/// supervisor's leg to the call, the record writer for the queue's `listen` event, the run
/// state (hang-up) and the metrics.
#[derive(Clone)]
pub struct Listening {
    pub peers: Peers,
    pub life: Arc<Lifecycle>,
    pub metrics: Metrics,
    pub calls: Arc<CallTable>,
    pub listen: Arc<crate::listen::Listenable>,
    pub ports: PortPool,
    pub queue: Arc<crate::queue::Local>,
    pub trace: crate::trace::Tracer,
    pub recorder: Recorder,
}

/// What a live SIP trace uses (`crate::trace::remote`): this node's collector, and the holder
/// lookup for a call held elsewhere.
#[derive(Clone)]
pub struct LiveTraces {
    pub peers: Peers,
    pub trace: crate::trace::Tracer,
}

/// What the SIP edge uses, and how it starts the calls it admits.
#[derive(Clone)]
pub struct Edge {
    pub cfg: Arc<Config>,
    pub life: Arc<Lifecycle>,
    pub metrics: Metrics,
    /// The live calls: admitted INVITEs are added here, and in-dialog requests checked.
    pub calls: Arc<CallTable>,
    pub trace: crate::trace::Tracer,
    /// Where an INVITE goes (here, another node, refused), and the peers' probes.
    pub balancer: Balancer,
    /// Carriers allowed (`realtime`), and phones registered here (`registrar`).
    pub realtime: Arc<crate::realtime::Realtime>,
    pub registrar: Registrar,
    /// Calls from carriers' addresses, for the alert rules.
    pub alerts: Arc<crate::alerts::Inputs>,
    /// The CDR of an admitted INVITE no handler took (the watchdog's).
    pub recorder: Recorder,
    /// Starts each admitted call.
    pub starter: CallStarter,
}

/// How the SIP edge starts the calls it admits: the [`CallKit`] each call runs with, which
/// the edge itself never reads.
#[derive(Clone)]
pub struct CallStarter(CallKit);

impl CallStarter {
    pub fn new(kit: CallKit) -> Self {
        CallStarter(kit)
    }

    /// Runs the call of an admitted INVITE to its end (`sip::call::run`).
    pub async fn run(
        self,
        dialogs: Arc<rsipstack::dialog::dialog_layer::DialogLayer>,
        tx: rsipstack::transaction::transaction::Transaction,
    ) {
        crate::sip::call::run(self.0, dialogs, tx).await;
    }

    /// Gives the calls the dialog layer their agent legs are dialled through (also the
    /// supervisors' legs of listen-in); `false` when one was given before.
    pub fn set_dialogs(&self, dialogs: Arc<rsipstack::dialog::dialog_layer::DialogLayer>) -> bool {
        self.0.legs.queue.dialogs.set(dialogs).is_ok()
    }
}

impl Edge {
    /// This node's live load, read per INVITE.
    pub fn local_load(&self) -> LocalLoad {
        LocalLoad {
            calls: self.calls.active(),
            capacity: self.cfg.node.capacity,
            refusing: self.life.is_refusing(),
            draining: self.life.is_draining(),
        }
    }
}
