//! Why a call ended (`cdrs.hangup_cause`), who ended it (`cdrs.hangup_side`), which way it
//! went (`cdrs.direction`), and the one table from a cause to the SIP status of the call's
//! end (`cdrs.sip_status`, and the final response sent when the call ends before it is
//! answered).

words! {
    /// Why a call ended.
    pub enum HangupCause ("hangup cause") {
        /// A BYE from either party after the call was answered.
        Normal = "normal",
        /// The caller CANCELled before we answered (or the 200 could not be sent).
        Cancelled = "cancelled",
        /// Our 200 was never ACKed.
        NoAck = "no_ack",
        /// The INVITE transaction timed out before the answer.
        Timeout = "timeout",
        /// An error of ours or of the dialog.
        Error = "error",
        /// The node stopped (Ctrl-C, the end of a drain).
        NodeShutdown = "node_shutdown",
        /// No codec of ours in the caller's SDP (or no usable answer in the ACK).
        NoCommonMedia = "no_common_media",
        /// No RTP port was free.
        NoRtpPort = "no_rtp_port",
        /// The admitted INVITE was never taken by a handler (the watchdog answered).
        NotTaken = "not_taken",
        /// The call reached `call.max_duration`.
        MaxDuration = "max_duration",
        /// The agent's leg failed during the conversation.
        AgentLegFailed = "agent_leg_failed",
        /// The caller left a voicemail (recording ended).
        Voicemail = "voicemail",
        /// The mailbox was over its quota: no recording.
        VoicemailFull = "voicemail_full",
        /// The voicemail could not be recorded.
        VoicemailFailed = "voicemail_failed",
        /// The queue's maximum wait passed and its fallback hung up.
        QueueTimeout = "queue_timeout",
        /// The number names a queue that no longer exists.
        NoSuchQueue = "no_such_queue",
        /// A hot-desk login succeeded.
        HotdeskLogin = "hotdesk_login",
        /// A hot-desk logout succeeded.
        HotdeskLogout = "hotdesk_logout",
        /// A hot-desk login or logout was refused.
        HotdeskFailed = "hotdesk_failed",
        /// A number's or an IVR menu's hang-up message was played.
        Message = "message",
        /// A number or menu led nowhere usable (a removed queue or menu without an invalid
        /// path, or more hops than allowed): the caller heard goodbye.
        NoRoute = "no_route",
        /// An outbound call the node does not place: the caller is no authenticated phone
        /// (or the outbound trunk refused the call with 403).
        OutboundRefused = "outbound_refused",
        /// The outbound trunk answered busy (486, 600).
        Busy = "busy",
        /// The outbound trunk's callee did not answer (480, 408, or our ring limit).
        NoAnswer = "no_answer",
        /// The outbound trunk knows no such number (404, 484, 604).
        UnallocatedNumber = "unallocated_number",
        /// The outbound callee declined the call (603).
        Declined = "declined",
        /// The outbound trunk failed the call (5xx, a challenge our credentials do not pass,
        /// no answer at all, another 4xx).
        TrunkFailed = "trunk_failed",
        /// The phone that placed the call transferred its other call's caller to this call's
        /// callee (an attended transfer): the callee's leg was handed over, this call ended.
        Replaced = "replaced",
    }
}

words! {
    /// Who ended a call.
    pub enum HangupSide ("hangup side") {
        Caller = "caller",
        /// The agent's phone (a bridged queue or direct call).
        Agent = "agent",
        /// This node (its dialplan, a limit, an error, shutdown).
        Node = "node",
        /// The called party of an outbound call (the trunk's side).
        Callee = "callee",
    }
}

words! {
    /// Which way a call went (`cdrs.direction`).
    pub enum CallDirection ("call direction") {
        /// A call the node answered (a carrier's, or a phone's to a number, queue or agent).
        Inbound = "inbound",
        /// An agent's phone dialled an external number through the outbound trunk.
        Outbound = "outbound",
    }
}

impl Default for CallDirection {
    /// Records written before directions were kept were all inbound.
    fn default() -> Self {
        CallDirection::Inbound
    }
}

impl HangupCause {
    /// The SIP status of a call that ended this way: the final response sent when the call
    /// ends before it is answered, and `cdrs.sip_status`. The one place that maps a failure
    /// to a status.
    pub const fn sip_status(self) -> u16 {
        match self {
            HangupCause::Cancelled => 487,
            HangupCause::NoAck | HangupCause::Timeout => 408,
            HangupCause::Error | HangupCause::NotTaken => 500,
            HangupCause::NoCommonMedia => 488,
            HangupCause::NoRtpPort | HangupCause::TrunkFailed => 503,
            HangupCause::OutboundRefused => 403,
            HangupCause::Busy => 486,
            HangupCause::NoAnswer => 480,
            HangupCause::UnallocatedNumber => 404,
            HangupCause::Declined => 603,
            HangupCause::Normal
            | HangupCause::NodeShutdown
            | HangupCause::MaxDuration
            | HangupCause::AgentLegFailed
            | HangupCause::Voicemail
            | HangupCause::VoicemailFull
            | HangupCause::VoicemailFailed
            | HangupCause::QueueTimeout
            | HangupCause::NoSuchQueue
            | HangupCause::HotdeskLogin
            | HangupCause::HotdeskLogout
            | HangupCause::HotdeskFailed
            | HangupCause::Message
            | HangupCause::NoRoute
            | HangupCause::Replaced => 200,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::check::words;
    use HangupCause::*;

    #[test]
    fn the_stored_texts() {
        words(
            &HangupCause::ALL,
            &[
                "normal",
                "cancelled",
                "no_ack",
                "timeout",
                "error",
                "node_shutdown",
                "no_common_media",
                "no_rtp_port",
                "not_taken",
                "max_duration",
                "agent_leg_failed",
                "voicemail",
                "voicemail_full",
                "voicemail_failed",
                "queue_timeout",
                "no_such_queue",
                "hotdesk_login",
                "hotdesk_logout",
                "hotdesk_failed",
                "message",
                "no_route",
                "outbound_refused",
                "busy",
                "no_answer",
                "unallocated_number",
                "declined",
                "trunk_failed",
                "replaced",
            ],
        );
        words(&HangupSide::ALL, &["caller", "agent", "node", "callee"]);
        words(&CallDirection::ALL, &["inbound", "outbound"]);
        assert_eq!(CallDirection::default(), CallDirection::Inbound);
    }

    /// The statuses CDRs carried before the causes were typed.
    #[test]
    fn sip_status_per_cause() {
        let table = [
            (Normal, 200),
            (Cancelled, 487),
            (NoAck, 408),
            (Timeout, 408),
            (Error, 500),
            (NodeShutdown, 200),
            (NoCommonMedia, 488),
            (NoRtpPort, 503),
            (NotTaken, 500),
            (MaxDuration, 200),
            (AgentLegFailed, 200),
            (Voicemail, 200),
            (VoicemailFull, 200),
            (VoicemailFailed, 200),
            (QueueTimeout, 200),
            (NoSuchQueue, 200),
            (HotdeskLogin, 200),
            (HotdeskLogout, 200),
            (HotdeskFailed, 200),
            (Message, 200),
            (NoRoute, 200),
            (OutboundRefused, 403),
            (Busy, 486),
            (NoAnswer, 480),
            (UnallocatedNumber, 404),
            (Declined, 603),
            (TrunkFailed, 503),
            (Replaced, 200),
        ];
        assert_eq!(
            table.len(),
            HangupCause::ALL.len(),
            "every cause in the table"
        );
        for (cause, status) in table {
            assert_eq!(cause.sip_status(), status, "{cause}");
        }
    }
}
