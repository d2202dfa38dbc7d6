//! Where a dialled number (DID) or an IVR menu choice sends a caller: the kind stored in
//! `numbers.open_kind` / `closed_kind`, `ivr_menus.invalid_kind` and `ivr_choices.kind`,
//! next to a target (a queue name, a menu name, an extension, a number, a prompt or a ring
//! group's name).

words! {
    /// The kind of a destination; its target is in the column beside it.
    pub enum DestKind ("destination kind") {
        /// A queue (target: its name).
        Queue = "queue",
        /// An IVR menu (target: its name).
        Menu = "menu",
        /// An agent's extension: the agent's phone, else voicemail (target: the extension).
        Agent = "agent",
        /// Another number, routed by its own schedule (target: the number).
        Number = "number",
        /// An agent's mailbox straight away (target: the extension).
        Voicemail = "voicemail",
        /// A hang-up message: a prompt played, then the call ends (target: the prompt).
        Message = "message",
        /// A ring group: several phones and agents rung at once or in order (target: its
        /// name).
        Group = "group",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::check::words;

    #[test]
    fn the_stored_texts() {
        words(
            &DestKind::ALL,
            &[
                "queue",
                "menu",
                "agent",
                "number",
                "voicemail",
                "message",
                "group",
            ],
        );
    }
}
