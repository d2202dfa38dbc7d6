//! A ring group's words: how its members are rung (`ring_groups.strategy`) and what each
//! member is (`ring_group_members.kind`).

words! {
    /// How a ring group rings its members.
    pub enum GroupStrategy ("ring group strategy") {
        /// Every member rings at once, for the group's ring time; the first to answer takes
        /// the call and the others are CANCELled.
        All = "all",
        /// One member after another, each for the group's ring time, in the members' order.
        Ordered = "ordered",
    }
}

/// `all`, what the admin form offers first.
impl Default for GroupStrategy {
    fn default() -> GroupStrategy {
        GroupStrategy::All
    }
}

words! {
    /// What a ring group member names.
    pub enum MemberKind ("ring group member kind") {
        /// An agent's extension: the phone the agent is logged in on, skipped while the agent
        /// is logged out or not available (on a call, ringing, paused, in wrap-up).
        Agent = "agent",
        /// A phone's device extension, rung directly (no agent, no lease).
        Device = "device",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::check::words;

    #[test]
    fn the_stored_texts() {
        words(&GroupStrategy::ALL, &["all", "ordered"]);
        words(&MemberKind::ALL, &["agent", "device"]);
    }
}
