//! The queued call as a sans-IO state machine: events in (the dispatcher's offer and what the
//! shell could take of it, agents' answers and failures, the caller's and the agent's ends,
//! prompts done, time passing), actions out (music, announcements, queue events, CANCEL,
//! BYE, release, bridge, wrap-up, the fallback, the end). [`super::caller`] is the tokio shell:
//! it performs the actions (SIP, media, SQL, lockd) and feeds back what happened; every
//! decision of the lifecycle is here, with time given as milliseconds, and table-tested.
//!
//! A call is made of legs ([`Leg`]): the caller's, each agent's phone being rung or bridged,
//! the supervisors listening in, whispering or barging, and a recorder. The machine names the
//! leg every action is for: with the bridge it opens the listeners' leg and, when the queue's
//! policy drew this call, the recorder ([`Action::Open`]); it closes them (the recording
//! stored) before the agent wraps up, whether the conversation ended or was transferred, and
//! opens them again on the leg an attended transfer hands over ([`Action::Close`]).
//!
//! ```text
//!  Waiting ──offer (agents taken)──▶ Offering ──first answer, others settled──▶ Bridged
//!    ▲  │ max wait: fallback              │ nobody answered                      │ either
//!    │  │ caller left: abandon            │ (or caller left: abandon, Over)       │ side's
//!    │  ▼                                 ▼                                       ▼ end
//!    └──── Waiting ◀──────────────────────┘                           wrap-up, Over
//! ```
//!
//! Bridged, the agent's phone may transfer the caller ([`Event::AgentTransferred`], a blind
//! REFER accepted by [`super::transfer`]): the agent's leg ends and the agent wraps up as
//! after any call, and the call leaves the queue for the transfer's target
//! ([`Action::Transfer`]), which the dialplan routes.

use callfleet_store::{AgentState, HangupCause, HangupSide, Queue, QueueEventKind};

use super::transfer::TransferTo;
use crate::sip::call::Ended;

/// One party of a call: its own SIP dialog and media leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leg {
    /// The caller, answered by this node.
    Caller,
    /// An agent's phone (by agent extension), rung or bridged.
    Agent(String),
    /// Supervisors' phones listening in, whispering or barging: any number, joined from the
    /// panel while the conversation is open to them.
    Listeners,
    /// The recording of the conversation (both sides, a stereo WAV).
    Recorder,
}

/// The rules of the queue the call waits in, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// How long the caller waits before the fallback.
    pub max_wait_ms: i64,
    /// Position announcements this often; 0 = never.
    pub announce_every_ms: i64,
    /// The agent's wrap-up after the call.
    pub wrapup_ms: i64,
    /// Whether the conversation is recorded (the queue's policy, drawn for this call).
    pub record: bool,
}

impl Rules {
    /// A queue's rules; announcements at most once a second.
    pub fn of(queue: &Queue) -> Rules {
        Rules {
            max_wait_ms: queue.max_wait_ms.max(0),
            announce_every_ms: match queue.announce_interval_ms {
                ms if ms > 0 => ms.max(1000),
                _ => 0,
            },
            wrapup_ms: queue.wrapup_ms.max(0),
            record: false,
        }
    }

    /// The same rules, recording the conversation or not.
    pub fn recorded(self, record: bool) -> Rules {
        Rules { record, ..self }
    }
}

/// Where the call is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// In the queue: music on hold, or a position announcement playing.
    Waiting { announcing: bool },
    /// Agents' phones ring. `ringing`: legs not settled yet; `winner`: the agent that answered
    /// first, bridged once the others are settled; `caller_gone`: the caller left meanwhile.
    Offering {
        ringing: Vec<String>,
        winner: Option<String>,
        caller_gone: Option<Ended>,
    },
    /// The caller's leg and the agent's are bridged.
    Bridged { agent: String },
    /// Over for the queue: ended, or handed to the fallback.
    Over,
}

/// What happened, as the shell saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The dispatcher's offer was claimed; `taken` are the agents the shell took (lease and
    /// guarded update held, INVITE sent), possibly none.
    Offered { taken: Vec<String> },
    /// An agent's phone answered (200 with usable SDP).
    Answered { agent: String },
    /// An agent's ring ended without an answer: its final status (408 at the ring timeout,
    /// 487 once CANCELled).
    NotAnswered { agent: String, status: u16 },
    /// The announcement playing ended.
    PromptDone,
    /// The caller's dialog ended (its BYE, `call.max_duration`, node shutdown).
    CallerEnded(Ended),
    /// The bridged agent's dialog ended: its BYE (`hung_up`) or a failure.
    AgentEnded { hung_up: bool },
    /// The bridged agent's phone transferred the caller to `to` (its REFER accepted).
    AgentTransferred { to: TransferTo },
    /// The bridged agent's phone transferred the caller to the callee of its other call (its
    /// REFER with Replaces accepted): `by`, that call's agent leg, was handed over.
    AgentReplaced { by: String },
    /// Time passed (to the `now_ms` given with it).
    Tick,
}

/// What the shell is to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Music on hold to the caller.
    Moh,
    /// The caller's position in the queue, announced.
    Announce,
    /// A queue event written (queued calls only), stamped `at_ms` when given, else when it is
    /// written.
    Log {
        kind: QueueEventKind,
        agent: Option<String>,
        detail: Option<String>,
        at_ms: Option<i64>,
    },
    /// CANCEL the INVITE ringing this agent's phone.
    Cancel(String),
    /// BYE on a leg.
    Bye(Leg),
    /// The agent goes back: `from` → available, lease released.
    Release { agent: String, from: AgentState },
    /// The entry goes back to waiting: nobody took the call.
    Unclaim,
    /// The caller bridged to the agent: agent `ringing → in_call`, entry bridged, media
    /// relayed between the legs.
    Bridge(String),
    /// A leg starts beside the conversation: [`Leg::Listeners`], supervisors may join it from
    /// now on; [`Leg::Recorder`], the recording starts (both sides of the bridge).
    Open(Leg),
    /// That leg ends: listeners get BYE; the recording is closed and stored (its MP3 job
    /// queued).
    Close(Leg),
    /// The entry leaves the cluster queue.
    Dequeue,
    /// "All agents are busy", then the queue's fallback.
    Fallback,
    /// The agent's call counted, its wrap-up until `until_ms`; then available, lease released.
    WrapUp { agent: String, until_ms: i64 },
    /// The call is over for the queue, ended this way.
    End(Ended),
    /// The caller bridged to `agent`'s leg, handed over by the transferring phone's other
    /// call (the agent who transferred already wrapped up).
    Replace(String),
    /// The final NOTIFY of the agent's REFER (`200 OK`): the caller is handed on.
    ReferDone(String),
    /// The call leaves the queue for the transfer's target (the dialplan routes it).
    Transfer(TransferTo),
}

/// One queued call (or direct call to an agent, which starts at [`Phase::Offering`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedCall {
    rules: Rules,
    entered_ms: i64,
    next_announce_ms: Option<i64>,
    phase: Phase,
}

impl QueuedCall {
    /// A call entering the queue at `now_ms` (its entry's enqueue time, which its enqueue event
    /// carries: the time the cluster serves it by); `vip` as the enqueue event says.
    pub fn enter(rules: Rules, now_ms: i64, vip: bool) -> (QueuedCall, Vec<Action>) {
        let call = QueuedCall {
            rules,
            entered_ms: now_ms,
            next_announce_ms: (rules.announce_every_ms > 0)
                .then_some(now_ms + rules.announce_every_ms),
            phase: Phase::Waiting { announcing: false },
        };
        let enqueue = Action::Log {
            kind: QueueEventKind::Enqueue,
            agent: None,
            detail: vip.then(|| "vip".to_string()),
            at_ms: Some(now_ms),
        };
        let actions = vec![enqueue, Action::Moh];
        (call, actions)
    }

    /// A direct call to agents already taken: no queue, no waiting, no wrap-up.
    pub fn direct(now_ms: i64, taken: Vec<String>) -> (QueuedCall, Vec<Action>) {
        let rules = Rules {
            max_wait_ms: 0,
            announce_every_ms: 0,
            wrapup_ms: 0,
            record: false,
        };
        let mut call = QueuedCall {
            rules,
            entered_ms: now_ms,
            next_announce_ms: None,
            phase: Phase::Waiting { announcing: false },
        };
        let actions = call.on(now_ms, Event::Offered { taken });
        (call, actions)
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// When the machine next wants a [`Event::Tick`]: the maximum wait or the next
    /// announcement while waiting; nothing otherwise (ringing is bounded by each leg's ring
    /// timeout, a conversation by the caller's dialog).
    pub fn deadline(&self) -> Option<i64> {
        match self.phase {
            Phase::Waiting { .. } => {
                let max_wait = self.entered_ms + self.rules.max_wait_ms;
                Some(self.next_announce_ms.map_or(max_wait, |a| a.min(max_wait)))
            }
            _ => None,
        }
    }

    /// Feeds one event at `now_ms`; returns the actions to perform, in order.
    pub fn on(&mut self, now_ms: i64, event: Event) -> Vec<Action> {
        let phase = std::mem::replace(&mut self.phase, Phase::Over);
        let (phase, actions) = match phase {
            Phase::Waiting { announcing } => self.waiting(announcing, now_ms, event),
            Phase::Offering {
                ringing,
                winner,
                caller_gone,
            } => offering(ringing, winner, caller_gone, self.rules.record, event),
            Phase::Bridged { agent } => self.bridged(agent, now_ms, event),
            Phase::Over => (Phase::Over, vec![]),
        };
        self.phase = phase;
        actions
    }

    fn waiting(&mut self, announcing: bool, now_ms: i64, event: Event) -> (Phase, Vec<Action>) {
        let stay = |announcing| Phase::Waiting { announcing };
        match event {
            Event::Tick if now_ms >= self.entered_ms + self.rules.max_wait_ms => (
                Phase::Over,
                vec![
                    log(QueueEventKind::Timeout, None, None),
                    Action::Dequeue,
                    Action::Fallback,
                ],
            ),
            Event::Tick => match self.next_announce_ms {
                Some(at) if now_ms >= at => {
                    let every = self.rules.announce_every_ms;
                    // Missed announcements are not caught up: the next is one interval on.
                    let missed = (now_ms - at) / every;
                    self.next_announce_ms = Some(at + (missed + 1) * every);
                    (stay(true), vec![Action::Announce])
                }
                _ => (stay(announcing), vec![]),
            },
            Event::PromptDone if announcing => (stay(false), vec![Action::Moh]),
            Event::Offered { taken } if taken.is_empty() => {
                (stay(false), vec![Action::Unclaim, Action::Moh])
            }
            Event::Offered { taken } => {
                let actions = taken
                    .iter()
                    .map(|a| log(QueueEventKind::Offer, Some(a), None))
                    .collect();
                let phase = Phase::Offering {
                    ringing: taken,
                    winner: None,
                    caller_gone: None,
                };
                (phase, actions)
            }
            Event::CallerEnded(ended) => (Phase::Over, abandon(ended)),
            // Nothing rings and nothing is bridged: stray answers or ends change nothing.
            Event::PromptDone
            | Event::Answered { .. }
            | Event::NotAnswered { .. }
            | Event::AgentEnded { .. }
            | Event::AgentTransferred { .. }
            | Event::AgentReplaced { .. } => (stay(announcing), vec![]),
        }
    }

    fn bridged(&mut self, agent: String, now_ms: i64, event: Event) -> (Phase, Vec<Action>) {
        let (ended, other) = match event {
            Event::CallerEnded(ended) => (ended, Leg::Agent(agent.clone())),
            Event::AgentEnded { hung_up: true } => (
                Ended::new(HangupCause::Normal, HangupSide::Agent),
                Leg::Caller,
            ),
            Event::AgentEnded { hung_up: false } => (
                Ended::new(HangupCause::AgentLegFailed, HangupSide::Node),
                Leg::Caller,
            ),
            Event::AgentTransferred { to } => {
                return (Phase::Over, self.transferred(agent, now_ms, to))
            }
            Event::AgentReplaced { by } => {
                let actions = self.replaced(agent, now_ms, &by);
                return (Phase::Bridged { agent: by }, actions);
            }
            _ => return (Phase::Bridged { agent }, vec![]),
        };
        let mut actions = vec![Action::Bye(other)];
        actions.extend(close_beside(self.rules.record));
        actions.extend(self.agent_done(&agent, now_ms, ended.side));
        actions.push(Action::End(ended));
        (Phase::Over, actions)
    }

    /// The agent's part of the call is over (`side` ended it): its wrap-up, its `complete`
    /// event, the entry out of the queue.
    fn agent_done(&self, agent: &str, now_ms: i64, side: HangupSide) -> [Action; 3] {
        [
            Action::WrapUp {
                agent: agent.to_string(),
                until_ms: now_ms + self.rules.wrapup_ms,
            },
            log(
                QueueEventKind::Complete,
                Some(agent),
                Some(side.to_string()),
            ),
            Action::Dequeue,
        ]
    }

    /// The agent transferred the caller: the transfer logged, the REFER's final NOTIFY, the
    /// agent's leg ended and the agent's part of the call completed (wrap-up as after any
    /// call), then the caller leaves the queue for `to` (its dialog stays up).
    fn transferred(&self, agent: String, now_ms: i64, to: TransferTo) -> Vec<Action> {
        let mut actions = vec![
            log(QueueEventKind::Transfer, Some(&agent), Some(to.to_string())),
            Action::ReferDone(agent.clone()),
            Action::Bye(Leg::Agent(agent.clone())),
        ];
        actions.extend(close_beside(self.rules.record));
        actions.extend(self.agent_done(&agent, now_ms, HangupSide::Agent));
        actions.push(Action::Transfer(to));
        actions
    }

    /// The agent's phone handed the caller to `by` (attended transfer): logged as a transfer
    /// to `by`'s extension, the REFER's final NOTIFY, the agent's leg ended and the agent
    /// wrapped up, then the caller bridged to `by`'s leg; the entry stays until `by` is done.
    /// The listeners and the recording of the first conversation close with it, and open
    /// again on the second (a recording of its own).
    fn replaced(&self, agent: String, now_ms: i64, by: &str) -> Vec<Action> {
        let to = TransferTo::Agent(by.to_string());
        let mut actions = vec![
            log(QueueEventKind::Transfer, Some(&agent), Some(to.to_string())),
            Action::ReferDone(agent.clone()),
            Action::Bye(Leg::Agent(agent.clone())),
        ];
        actions.extend(close_beside(self.rules.record));
        actions.extend([
            Action::WrapUp {
                agent: agent.clone(),
                until_ms: now_ms + self.rules.wrapup_ms,
            },
            log(
                QueueEventKind::Complete,
                Some(&agent),
                Some(HangupSide::Agent.to_string()),
            ),
            Action::Replace(by.to_string()),
        ]);
        actions.extend(open_beside(self.rules.record));
        actions
    }
}

/// Agents ringing: the first answer wins, the others are CANCELled; once every leg is
/// settled the winner is bridged, or the call waits again (or ends, if the caller left).
fn offering(
    mut ringing: Vec<String>,
    mut winner: Option<String>,
    mut caller_gone: Option<Ended>,
    record: bool,
    event: Event,
) -> (Phase, Vec<Action>) {
    let mut actions = vec![];
    match event {
        Event::Answered { agent } if ringing.contains(&agent) => {
            ringing.retain(|a| *a != agent);
            if winner.is_none() && caller_gone.is_none() {
                actions.extend(ringing.iter().cloned().map(Action::Cancel));
                winner = Some(agent);
            } else {
                // A second answer, or one after the caller left: that leg ends at once.
                actions.push(Action::Bye(Leg::Agent(agent.clone())));
                actions.push(release(agent));
            }
        }
        Event::NotAnswered { agent, status } if ringing.contains(&agent) => {
            ringing.retain(|a| *a != agent);
            actions.push(log(
                QueueEventKind::NoAnswer,
                Some(&agent),
                Some(status.to_string()),
            ));
            actions.push(release(agent));
        }
        Event::CallerEnded(ended) if caller_gone.is_none() => {
            actions.extend(ringing.iter().cloned().map(Action::Cancel));
            if let Some(w) = winner.take() {
                actions.push(Action::Bye(Leg::Agent(w.clone())));
                actions.push(release(w));
            }
            caller_gone = Some(ended);
        }
        _ => {}
    }
    if !ringing.is_empty() {
        let phase = Phase::Offering {
            ringing,
            winner,
            caller_gone,
        };
        return (phase, actions);
    }
    let phase = match (caller_gone, winner) {
        (Some(ended), _) => {
            actions.extend(abandon(ended));
            Phase::Over
        }
        (None, Some(agent)) => {
            actions.push(Action::Bridge(agent.clone()));
            actions.extend(open_beside(record));
            actions.push(log(QueueEventKind::Answer, Some(&agent), None));
            Phase::Bridged { agent }
        }
        (None, None) => {
            actions.push(Action::Unclaim);
            actions.push(Action::Moh);
            Phase::Waiting { announcing: false }
        }
    };
    (phase, actions)
}

/// The legs beside the conversation, opened with the bridge: the listeners, then the
/// recorder when the call is recorded.
fn open_beside(record: bool) -> Vec<Action> {
    let mut actions = vec![Action::Open(Leg::Listeners)];
    if record {
        actions.push(Action::Open(Leg::Recorder));
    }
    actions
}

/// Those legs closed, the recorder first (what it wrote is stored).
fn close_beside(record: bool) -> Vec<Action> {
    let mut actions = vec![];
    if record {
        actions.push(Action::Close(Leg::Recorder));
    }
    actions.push(Action::Close(Leg::Listeners));
    actions
}

fn abandon(ended: Ended) -> Vec<Action> {
    vec![
        log(QueueEventKind::Abandon, None, None),
        Action::Dequeue,
        Action::End(ended),
    ]
}

fn release(agent: String) -> Action {
    Action::Release {
        agent,
        from: AgentState::Ringing,
    }
}

fn log(kind: QueueEventKind, agent: Option<&str>, detail: Option<String>) -> Action {
    Action::Log {
        kind,
        agent: agent.map(str::to_string),
        detail,
        at_ms: None,
    }
}

#[cfg(test)]
mod tests;
