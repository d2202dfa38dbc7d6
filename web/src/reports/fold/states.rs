//! Agents' time per state over a window, from their state changes: logged in, paused,
//! available, ringing, talking and wrapping up, and their occupancy.

use std::collections::BTreeMap;

use callfleet_store::{AgentState, StateChange};

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

/// Folds agents' state changes, handed in order of agent, then time (as the store streams
/// them), into the time per state within `[from_ms, to_ms)`: each change lasts until the
/// agent's next one, the last until `to_ms` (give it the present for a window that has not
/// ended). Only the previous change is held, however long the history.
#[derive(Debug)]
pub struct StateFold {
    from_ms: i64,
    to_ms: i64,
    prev: Option<StateChange>,
    out: BTreeMap<String, StateTimes>,
}

impl StateFold {
    /// A fold over `[from_ms, to_ms)`.
    pub fn new(from_ms: i64, to_ms: i64) -> Self {
        StateFold {
            from_ms,
            to_ms,
            prev: None,
            out: BTreeMap::new(),
        }
    }

    /// The next change.
    pub fn push(&mut self, c: StateChange) {
        let next = (self.prev.as_ref())
            .filter(|p| p.agent == c.agent)
            .map(|_| c.since_ms);
        self.close(next);
        self.prev = Some(c);
    }

    /// Per agent, the time in each state.
    pub fn finish(mut self) -> BTreeMap<String, StateTimes> {
        self.close(None);
        self.out
    }

    /// Ends the previous change at `next` (the same agent's next change) or the window's end.
    fn close(&mut self, next: Option<i64>) {
        let Some(p) = self.prev.take() else { return };
        let end = next.unwrap_or(self.to_ms).min(self.to_ms);
        let ms = end - p.since_ms.max(self.from_ms);
        let times = self.out.entry(p.agent).or_default();
        if ms > 0 {
            times.add(p.state, ms);
        }
    }
}

/// [`StateFold`] over a slice.
pub fn fold_states(
    changes: &[StateChange],
    from_ms: i64,
    to_ms: i64,
) -> BTreeMap<String, StateTimes> {
    let mut fold = StateFold::new(from_ms, to_ms);
    for c in changes {
        fold.push(c.clone());
    }
    fold.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use AgentState::*;

    fn ch(agent: &str, state: AgentState, since_ms: i64) -> StateChange {
        StateChange {
            agent: agent.into(),
            state,
            since_ms,
        }
    }

    #[test]
    fn time_per_state_within_the_window() {
        let changes = [
            // Logged in before the window: only the part inside counts.
            ch("1001", Available, 0),
            ch("1001", Reserved, 150),
            ch("1001", Ringing, 160),
            ch("1001", InCall, 200),
            ch("1001", WrapUp, 500),
            ch("1001", Paused, 600),
            ch("1001", Available, 700),
            // Two changes in one millisecond: the first lasts nothing.
            ch("1001", Reserved, 800),
            ch("1001", Available, 800),
            ch("1001", LoggedOut, 900),
            // Still in a call when the window closes.
            ch("1002", LoggedOut, 0),
            ch("1002", Available, 950),
            ch("1002", InCall, 990),
            // Changes after the window end count nothing.
            ch("1003", Available, 2000),
        ];
        let got = fold_states(&changes, 100, 1000);
        assert_eq!(
            got["1001"],
            StateTimes {
                logged_in_ms: 800,
                paused_ms: 100,
                available_ms: 50 + 100 + 100,
                ringing_ms: 50,
                talking_ms: 300,
                wrap_up_ms: 100,
            }
        );
        // Ready 700 ms (800 logged in less 100 paused), handling 400 of them.
        assert_eq!(got["1001"].occupancy_pct(), Some(400.0 * 100.0 / 700.0));
        assert_eq!(
            (
                got["1002"].available_ms,
                got["1002"].talking_ms,
                got["1002"].logged_in_ms
            ),
            (40, 10, 50)
        );
        assert_eq!(got["1003"], StateTimes::default());
        assert_eq!(got["1003"].occupancy_pct(), None);
    }

    #[test]
    fn a_paused_agent_has_no_occupancy() {
        let got = fold_states(&[ch("1001", Paused, 0)], 0, 3_600_000);
        assert_eq!(got["1001"].paused_ms, 3_600_000);
        assert_eq!(got["1001"].occupancy_pct(), None);
    }
}
