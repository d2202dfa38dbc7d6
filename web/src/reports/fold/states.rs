//! Agents' time per state over a window, from the store's sums per agent and state: logged
//! in, paused, available, ringing, talking and wrapping up, and their occupancy.

use std::collections::BTreeMap;

use callfleet_store::{AgentState, StateTime};

/// One agent's time in each state within a window, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateTimes {
    /// Every state but `logged_out`.
    pub logged_in_ms: i64,
    /// `paused`.
    pub paused_ms: i64,
    /// `available`: waiting for a call.
    pub available_ms: i64,
    /// `reserved` and `ringing`: a call offered.
    pub ringing_ms: i64,
    /// `in_call`.
    pub talking_ms: i64,
    /// `wrap_up`.
    pub wrap_up_ms: i64,
}

impl StateTimes {
    /// Handling calls (talking and wrapping up) as a share of the time the agent was ready
    /// for them (logged in and not paused), in percent; `None` without such time.
    pub fn occupancy_pct(&self) -> Option<f64> {
        let handling = self.talking_ms + self.wrap_up_ms;
        let ready = handling + self.available_ms + self.ringing_ms;
        (ready > 0).then(|| handling as f64 * 100.0 / ready as f64)
    }

    fn add(&mut self, state: AgentState, ms: i64) {
        let slot = match state {
            AgentState::LoggedOut => return,
            AgentState::Paused => &mut self.paused_ms,
            AgentState::Available => &mut self.available_ms,
            AgentState::Reserved | AgentState::Ringing => &mut self.ringing_ms,
            AgentState::InCall => &mut self.talking_ms,
            AgentState::WrapUp => &mut self.wrap_up_ms,
        };
        *slot += ms;
        self.logged_in_ms += ms;
    }
}

/// Per agent, the time in each state, from the store's sums per agent and state (which
/// clip each change to the window). Every agent of `rows` is there, even with no time.
pub fn state_times(rows: impl IntoIterator<Item = StateTime>) -> BTreeMap<String, StateTimes> {
    let mut out: BTreeMap<String, StateTimes> = BTreeMap::new();
    for r in rows {
        let times = out.entry(r.agent).or_default();
        if r.ms > 0 {
            times.add(r.state, r.ms);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use AgentState::*;

    fn t(agent: &str, state: AgentState, ms: i64) -> StateTime {
        StateTime {
            agent: agent.into(),
            state,
            ms,
        }
    }

    #[test]
    fn states_grouped_into_the_columns() {
        let got = state_times([
            t("1001", Available, 250),
            t("1001", Reserved, 10),
            t("1001", Ringing, 40),
            t("1001", InCall, 300),
            t("1001", WrapUp, 100),
            t("1001", Paused, 100),
            // Logged out: not logged-in time.
            t("1001", LoggedOut, 100),
            // An agent logged out all along, and one there for no time at all.
            t("1002", LoggedOut, 900),
            t("1003", Available, 0),
        ]);
        assert_eq!(
            got["1001"],
            StateTimes {
                logged_in_ms: 800,
                paused_ms: 100,
                available_ms: 250,
                ringing_ms: 50,
                talking_ms: 300,
                wrap_up_ms: 100,
            }
        );
        // Ready 700 ms (800 logged in less 100 paused), handling 400 of them.
        assert_eq!(got["1001"].occupancy_pct(), Some(400.0 * 100.0 / 700.0));
        assert_eq!(got["1002"], StateTimes::default());
        assert_eq!(got["1003"], StateTimes::default());
        assert_eq!(got["1003"].occupancy_pct(), None);
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn a_paused_agent_has_no_occupancy() {
        let got = state_times([t("1001", Paused, 3_600_000)]);
        assert_eq!(got["1001"].paused_ms, 3_600_000);
        assert_eq!(got["1001"].occupancy_pct(), None);
    }
}
