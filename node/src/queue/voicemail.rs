//! Voicemail: the greeting, a beep, then what the caller says recorded to a WAV file under
//! `media.voicemail_dir/<mailbox>/`, until the caller hangs up or two minutes pass. The file is
//! closed on disk first and listed in SQL after.

use std::time::Duration;

use callfleet_store::Voicemail;
use tracing::warn;

use super::caller::play;
use crate::media::session::Mode;
use crate::now_ms;
use crate::sip::call::Ended;
use crate::sip::ctx::CallCtx;

/// Longest message.
const MAX_MESSAGE: Duration = Duration::from_secs(120);

/// Records a message for `mailbox` (an agent extension).
pub async fn record(ctx: &mut CallCtx<'_>, mailbox: &str) -> Ended {
    let node = ctx.node;
    if let Some(ended) = play(ctx, node.prompts.sequence(&["leave-message", "beep"])).await {
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
    let path = node
        .cfg
        .media
        .voicemail_dir
        .join(&safe)
        .join(format!("{started}-{call}.wav"));
    let rec = match ctx.media.record(&path) {
        Ok(r) => r,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot record voicemail");
            return ctx.hangup("voicemail_failed").await;
        }
    };
    let limit = tokio::time::sleep(MAX_MESSAGE);
    tokio::pin!(limit);
    let ended = loop {
        tokio::select! {
            end = ctx.life.next_end() => if let Some(e) = end { break Ended { cause: "voicemail", ..e } },
            _ = &mut limit => break ctx.hangup("voicemail").await,
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
        node: node.cfg.node.name.clone(),
    };
    node.recorder.send(crate::records::Record::Voicemail(vm));
    ended
}
