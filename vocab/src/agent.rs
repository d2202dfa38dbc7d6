//! Where an agent is in its day (`agents.state`).

words! {
    /// Where an agent is in its day.
    pub enum AgentState ("agent state") {
        LoggedOut = "logged_out",
        Available = "available",
        /// Picked for a call, not rung yet.
        Reserved = "reserved",
        Ringing = "ringing",
        InCall = "in_call",
        WrapUp = "wrap_up",
        Paused = "paused",
    }
}

impl AgentState {
    /// `reserved`, `ringing` or `in_call`: the agent is tied to a call.
    pub fn holds_call(self) -> bool {
        matches!(
            self,
            AgentState::Reserved | AgentState::Ringing | AgentState::InCall
        )
    }

    /// The label the panel shows (`reserved` shows as ringing).
    pub fn label(self) -> &'static str {
        match self {
            AgentState::LoggedOut => "logged out",
            AgentState::Available => "available",
            AgentState::Reserved | AgentState::Ringing => "ringing",
            AgentState::InCall => "in call",
            AgentState::WrapUp => "wrap-up",
            AgentState::Paused => "paused",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_texts() {
        crate::words::check::words(
            &AgentState::ALL,
            &[
                "logged_out",
                "available",
                "reserved",
                "ringing",
                "in_call",
                "wrap_up",
                "paused",
            ],
        );
        let holding: Vec<_> = AgentState::ALL
            .into_iter()
            .filter(|s| s.holds_call())
            .collect();
        assert_eq!(
            holding,
            [
                AgentState::Reserved,
                AgentState::Ringing,
                AgentState::InCall
            ]
        );
    }
}
