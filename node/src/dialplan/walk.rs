//! A caller's way through numbers and IVR menus, as a pure state machine: a destination, a
//! key or a timeout in, a [`Step`] out (play a menu, route the caller, or give up). The
//! dialplan's shell plays the prompts, waits for keys and carries out the routes.
//!
//! Every call is bounded: a menu plays at most its `repeats` times before its invalid path,
//! and a call moves between numbers and menus at most [`MAX_HOPS`] times in all, so menus
//! that point at each other (or a number at itself) end in a goodbye, never a loop.

use std::collections::HashMap;

use callfleet_store::{DestKind, Destination, IvrMenu};

/// Most moves (to a number, a menu or any destination) one call may make.
pub const MAX_HOPS: u32 = 32;

/// What the caller did at a menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A key (RFC 4733 event), including ones no choice uses.
    Key(char),
    /// No key within the menu's timeout after its prompt.
    Timeout,
}

/// Why the walk gave up (said in the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// More than [`MAX_HOPS`] moves.
    TooManyHops,
    /// A destination could not be used and no menu's invalid path was there to take over.
    NoWayOn,
}

/// What the shell does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Play the menu's prompt, then wait up to `timeout_ms` for a key; feed the result to
    /// [`Walk::input`]. A key pressed during the prompt counts (and stops it).
    Prompt {
        menu: String,
        prompt: String,
        timeout_ms: i64,
    },
    /// Leave the menus: carry the caller to this destination (never a menu). If it cannot be
    /// used (a removed queue), call [`Walk::fallback`].
    Route(Destination),
    /// Nothing left to try: say goodbye and hang up.
    GiveUp(GiveUp),
}

/// One call's walk.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    hops: u32,
    /// The menu the caller is in or last left, and how many times it was played.
    menu: Option<String>,
    plays: u32,
}

impl Walk {
    /// The menu the caller is in or last left, if any.
    pub fn menu(&self) -> Option<&str> {
        self.menu.as_deref()
    }

    /// Moves the caller to `to`.
    pub fn to(&mut self, menus: &HashMap<String, IvrMenu>, to: Destination) -> Step {
        self.hops += 1;
        if self.hops > MAX_HOPS {
            return Step::GiveUp(GiveUp::TooManyHops);
        }
        if to.kind != DestKind::Menu {
            return Step::Route(to);
        }
        match menus.get(&to.target) {
            Some(m) => {
                self.menu = Some(m.name.clone());
                self.plays = 1;
                prompt(m)
            }
            None => self.fallback(menus),
        }
    }

    /// What the caller did at the current menu: a key with a choice goes there; any other
    /// key or a timeout plays the menu again, up to its `repeats`, then takes its invalid
    /// path.
    pub fn input(&mut self, menus: &HashMap<String, IvrMenu>, input: Input) -> Step {
        let Some(m) = self.menu.as_ref().and_then(|name| menus.get(name)) else {
            return Step::GiveUp(GiveUp::NoWayOn); // the menu was removed meanwhile
        };
        if let Input::Key(k) = input {
            if let Some(to) = m.choices.get(&k) {
                return self.to(menus, to.clone());
            }
        }
        if self.plays < m.repeats {
            self.plays += 1;
            return prompt(m);
        }
        self.to(menus, m.invalid.clone())
    }

    /// The destination just routed to (or a menu just moved to) cannot be used: the last
    /// menu's invalid path, if the caller came through one, else give up.
    pub fn fallback(&mut self, menus: &HashMap<String, IvrMenu>) -> Step {
        match self.menu.as_ref().and_then(|name| menus.get(name)) {
            Some(m) => {
                let invalid = m.invalid.clone();
                self.to(menus, invalid)
            }
            None => Step::GiveUp(GiveUp::NoWayOn),
        }
    }
}

fn prompt(m: &IvrMenu) -> Step {
    Step::Prompt {
        menu: m.name.clone(),
        prompt: m.prompt.clone(),
        timeout_ms: m.timeout_ms,
    }
}

#[cfg(test)]
mod tests;
