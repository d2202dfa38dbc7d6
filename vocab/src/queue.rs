//! The queue's words: how it picks agents (`queues.strategy`), where a caller goes at maximum
//! wait (`queues.fallback`), and what happened to a queued call (`queue_events.event`).

words! {
    /// How a queue chooses among its eligible free members (the names are Asterisk's).
    pub enum Strategy ("ring strategy") {
        /// Every eligible member rings at once; the first to answer takes the call.
        RingAll = "ringall",
        /// The member whose last call ended longest ago (never called first).
        LeastRecent = "leastrecent",
        /// The member with the fewest calls today.
        FewestCalls = "fewestcalls",
        /// A member chosen uniformly at random.
        Random = "random",
        /// Round robin with memory: the next member after the last one offered (`rr_last`).
        RrMemory = "rrmemory",
        /// Always the first member by (position, extension).
        Linear = "linear",
        /// A member chosen at random in proportion to its weight (weight 0 counts as 1).
        WRandom = "wrandom",
    }
}

words! {
    /// Where a caller goes once the queue's maximum wait has passed (after the all-busy
    /// prompt). `Voicemail` and `Queue` need the queue's `fallback_target`.
    pub enum Fallback ("queue fallback") {
        /// The target agent's mailbox.
        Voicemail = "voicemail",
        /// Another queue (the target), entered afresh.
        Queue = "queue",
        /// The call ends.
        Hangup = "hangup",
    }
}

/// `ringall`, what the admin form offers first.
impl Default for Strategy {
    fn default() -> Strategy {
        Strategy::RingAll
    }
}

/// `hangup`, what the admin form offers first.
impl Default for Fallback {
    fn default() -> Fallback {
        Fallback::Hangup
    }
}

impl Fallback {
    /// Whether this fallback needs a target (a mailbox or a queue).
    pub fn needs_target(self) -> bool {
        matches!(self, Fallback::Voicemail | Fallback::Queue)
    }
}

words! {
    /// One thing that happened to a queued call (`queue_events.event`).
    pub enum QueueEventKind ("queue event") {
        /// The call entered the queue (detail `vip` for a VIP caller).
        Enqueue = "enqueue",
        /// An agent was rung for it.
        Offer = "offer",
        /// An offered agent did not answer (detail: the SIP status).
        NoAnswer = "noanswer",
        /// An agent answered: the call is bridged.
        Answer = "answer",
        /// The caller hung up while waiting or ringing.
        Abandon = "abandon",
        /// The maximum wait passed: the fallback follows.
        Timeout = "timeout",
        /// The bridged call ended (detail: the side that hung up).
        Complete = "complete",
        /// A supervisor started listening in (detail `listen:DEVICE` or `whisper:DEVICE`).
        Listen = "listen",
        /// The bridged agent's phone transferred the caller (a blind REFER); the agent's part
        /// of the call is `complete` next. Detail: the target, `agent:EXT`, `queue:NAME` or
        /// `number:DID`.
        Transfer = "transfer",
    }
}

impl QueueEventKind {
    /// The caller left the queue without an agent: abandoned or timed out.
    pub fn is_lost(self) -> bool {
        matches!(self, QueueEventKind::Abandon | QueueEventKind::Timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::check::words;

    #[test]
    fn the_stored_texts() {
        words(
            &Strategy::ALL,
            &[
                "ringall",
                "leastrecent",
                "fewestcalls",
                "random",
                "rrmemory",
                "linear",
                "wrandom",
            ],
        );
        words(&Fallback::ALL, &["voicemail", "queue", "hangup"]);
        words(
            &QueueEventKind::ALL,
            &[
                "enqueue", "offer", "noanswer", "answer", "abandon", "timeout", "complete",
                "listen", "transfer",
            ],
        );
    }

    #[test]
    fn fallbacks_with_targets_and_lost_calls() {
        let needs: Vec<_> = Fallback::ALL
            .into_iter()
            .filter(|f| f.needs_target())
            .collect();
        assert_eq!(needs, [Fallback::Voicemail, Fallback::Queue]);
        let lost: Vec<_> = QueueEventKind::ALL
            .into_iter()
            .filter(|k| k.is_lost())
            .collect();
        assert_eq!(lost, [QueueEventKind::Abandon, QueueEventKind::Timeout]);
    }
}
