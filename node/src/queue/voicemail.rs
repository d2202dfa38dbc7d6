//! Voicemail: the greeting, a beep, then what the caller says recorded to a WAV file under
//! `media.voicemail_dir/<mailbox>/`, until the caller hangs up or two minutes pass. The file is
//! closed on disk first and listed in SQL after.
//!
//! Each mailbox has a quota (`media.voicemail_max_messages`, `media.voicemail_max_mb`, counted
//! from the `voicemails` rows, so cluster-wide): a caller to a full mailbox hears
//! "mailbox-full" and nothing is recorded, and a message stops where the quota would be passed.

use std::time::Duration;

use callfleet_store::{HangupCause, Voicemail};
use tracing::{info, warn};

use super::caller::play;
use crate::media::session::Mode;
use crate::node::Mailboxes;
use crate::now_ms;
use crate::sip::call::Ended;
use crate::sip::ctx::CallCtx;

/// Longest message.
const MAX_MESSAGE: Duration = Duration::from_secs(120);
/// Bytes one recorded millisecond takes (8 kHz, 16-bit, mono).
const BYTES_PER_MS: u64 = 16;
/// Bytes of a WAV file's header.
const WAV_HEADER: u64 = 44;
/// A mailbox with room for less than this is full.
const SHORTEST_MESSAGE: Duration = Duration::from_secs(1);

/// A mailbox's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub max_messages: u64,
    pub max_bytes: u64,
}

/// How long the next message may be in a mailbox holding `messages` recordings of
/// `total_ms` milliseconds in all; `None` when it is full.
pub fn room(quota: Quota, messages: i64, total_ms: i64) -> Option<Duration> {
    let messages = u64::try_from(messages).unwrap_or(0);
    let total_ms = u64::try_from(total_ms).unwrap_or(0);
    if messages >= quota.max_messages {
        return None;
    }
    let used = messages
        .saturating_mul(WAV_HEADER)
        .saturating_add(total_ms.saturating_mul(BYTES_PER_MS));
    let left = quota
        .max_bytes
        .saturating_sub(used)
        .saturating_sub(WAV_HEADER);
    let fits = Duration::from_millis(left / BYTES_PER_MS).min(MAX_MESSAGE);
    (fits >= SHORTEST_MESSAGE).then_some(fits)
}

/// Records a message for `mailbox` (an agent extension).
pub async fn record(ctx: &mut CallCtx<'_>, boxes: &Mailboxes, mailbox: &str) -> Ended {
    let Some(longest) = room_in(boxes, mailbox).await else {
        boxes.metrics.guard().voicemail_full();
        info!(
            mailbox,
            "voicemail box is full: the caller hears so and nothing is recorded"
        );
        if let Some(ended) = play(ctx, boxes.prompts.get("mailbox-full")).await {
            return ended;
        }
        return ctx.hangup(HangupCause::VoicemailFull).await;
    };
    if let Some(ended) = play(ctx, boxes.prompts.sequence(&["leave-message", "beep"])).await {
        return ended;
    }
    ctx.media.set_mode(Mode::Silence);
    let started = now_ms();
    let safe: String = mailbox
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_".contains(*c))
        .collect();
    let call: String = ctx
        .call_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .take(64)
        .collect();
    let path = boxes
        .cfg
        .media
        .voicemail_dir
        .join(&safe)
        .join(format!("{started}-{call}.wav"));
    let rec = match ctx.media.record(&path) {
        Ok(r) => r,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot record voicemail");
            return ctx.hangup(HangupCause::VoicemailFailed).await;
        }
    };
    let limit = tokio::time::sleep(longest);
    tokio::pin!(limit);
    let ended = loop {
        tokio::select! {
            end = ctx.life.next_end() => if let Some(e) = end { break Ended { cause: HangupCause::Voicemail, ..e } },
            _ = &mut limit => break ctx.hangup(HangupCause::Voicemail).await,
        }
    };
    ctx.media.stop_recording();
    let duration_ms = match rec.finish() {
        Ok(d) => d,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot close the voicemail file");
            return ended;
        }
    };
    let vm = Voicemail {
        id: 0,
        agent: mailbox.to_string(),
        caller: ctx.caller.clone(),
        path: path.to_string_lossy().into_owned(),
        duration_ms,
        created_at_ms: started,
        node: boxes.cfg.node.name.clone(),
    };
    boxes.recorder.send(crate::records::Record::Voicemail(vm));
    ended
}

/// [`room`] for `mailbox` now. With the database unreachable the quota cannot be read: the
/// message is taken (up to the longest), as a caller's message matters more than the bound.
async fn room_in(boxes: &Mailboxes, mailbox: &str) -> Option<Duration> {
    let media = &boxes.cfg.media;
    let quota = Quota {
        max_messages: u64::from(media.voicemail_max_messages),
        max_bytes: u64::from(media.voicemail_max_mb).saturating_mul(1_000_000),
    };
    match boxes.store.voicemail_usage(mailbox).await {
        Ok((messages, total_ms)) => room(quota, messages, total_ms),
        Err(e) => {
            warn!(mailbox, error = %e, "cannot read the mailbox's use; recording without the quota");
            Some(MAX_MESSAGE)
        }
    }
}

#[cfg(test)]
mod tests;
