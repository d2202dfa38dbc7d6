//! The shell around [`walk`](super::walk) and [`schedule`]: a call to a
//! number (DID) is carried through its schedule, IVR menus (prompts played, RFC 4733 keys
//! read) and on to a queue, an agent, a ring group (then its no-answer destination), a mailbox
//! or a hang-up message. Every destination is
//! looked up in the configuration cache when it is reached; one that is gone is logged and
//! the caller takes the last menu's invalid path, or hears goodbye.
//!
//! The walk is handed only what menus use ([`Menus`]); a queue, an agent, a mailbox or a ring
//! group it reaches is handed back to the dispatcher ([`Leads`]), which serves it with the
//! parts that uses and, when nobody in a ring group answered, carries the same walk on
//! ([`after_group`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use callfleet_store::{DestKind, Destination, HangupCause, Queue, RingGroup};
use tracing::warn;

use super::schedule;
use super::walk::{GiveUp, Input, Step, Walk};
use crate::media::moh::{read_wav, Track};
use crate::media::session::{MediaEvent, Mode};
use crate::node::Menus;
use crate::now_ms;
use crate::queue::caller::play;
use crate::sip::call::Ended;
use crate::sip::ctx::CallCtx;

/// Longest a menu prompt may play before the key timeout starts anyway.
const LONGEST_PROMPT: Duration = Duration::from_secs(300);

/// Where a number's walk leads: the call's end, or what the dispatcher serves next.
#[derive(Debug)]
pub enum Leads {
    /// The call ended on the way (a hang-up message, goodbye, the caller gone).
    Ended(Ended),
    Queue(Queue),
    /// An agent's extension, rung while the caller hears `moh_class` (the last menu's).
    Agent {
        ext: String,
        moh_class: Option<String>,
    },
    /// An agent's mailbox.
    Voicemail(String),
    /// A ring group; `walk` goes on to its no-answer destination ([`after_group`]).
    Group {
        group: RingGroup,
        walk: Walk,
    },
}

/// A call to `number` (a row of `numbers`), until the call ends or its walk leads on.
pub async fn number(ctx: &mut CallCtx<'_>, menus: &Menus, number: &str) -> Leads {
    let mut walk = Walk::default();
    let step = walk.to(
        &menus.realtime.get().menus,
        Destination::new(DestKind::Number, number),
    );
    carry(ctx, menus, walk, step).await
}

/// Nobody in a ring group answered: the walk goes on to the group's `no_answer` destination.
pub async fn after_group(
    ctx: &mut CallCtx<'_>,
    menus: &Menus,
    mut walk: Walk,
    no_answer: Destination,
) -> Leads {
    let step = walk.to(&menus.realtime.get().menus, no_answer);
    carry(ctx, menus, walk, step).await
}

/// Carries the walk from `step` until the call ends or the walk leads on.
async fn carry(ctx: &mut CallCtx<'_>, menus: &Menus, mut walk: Walk, mut step: Step) -> Leads {
    // Each turn either plays a menu (at most `repeats` per visit) or makes a hop (at most
    // MAX_HOPS), so the loop ends; the call's own end is seen in every wait.
    loop {
        let cfg = menus.realtime.get();
        step = match step {
            Step::Prompt {
                menu,
                prompt,
                timeout_ms,
            } => {
                let clip = clip(menus, &prompt, Some(&menu)).await;
                let timeout = Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(1));
                match key(ctx, clip, timeout).await {
                    Ok(input) => walk.input(&cfg.menus, input),
                    Err(ended) => return Leads::Ended(ended),
                }
            }
            Step::GiveUp(why) => {
                let why = match why {
                    GiveUp::TooManyHops => "too many moves between numbers and menus",
                    GiveUp::NoWayOn => "a destination is gone and no menu's invalid path is left",
                };
                warn!(dialled = %ctx.dialled, why, "the caller hears goodbye");
                return Leads::Ended(message(ctx, menus, "goodbye", HangupCause::NoRoute).await);
            }
            Step::Route(to) => match to.kind {
                DestKind::Number => match cfg.numbers.get(&to.target) {
                    Some(n) => {
                        let next = schedule::destination(n, now_ms()).clone();
                        walk.to(&cfg.menus, next)
                    }
                    None => gone(ctx, menus, &mut walk, &to),
                },
                DestKind::Queue => match cfg.queues.get(&to.target) {
                    Some(q) => return Leads::Queue(q.clone()),
                    None => gone(ctx, menus, &mut walk, &to),
                },
                DestKind::Agent if cfg.agents.contains_key(&to.target) => {
                    let class = walk.menu().and_then(|m| cfg.menus.get(m));
                    let moh_class = class.map(|m| m.moh_class.clone());
                    return Leads::Agent {
                        ext: to.target,
                        moh_class,
                    };
                }
                DestKind::Voicemail if cfg.agents.contains_key(&to.target) => {
                    return Leads::Voicemail(to.target);
                }
                DestKind::Agent | DestKind::Voicemail => gone(ctx, menus, &mut walk, &to),
                DestKind::Message => {
                    let ended = message(ctx, menus, &to.target, HangupCause::Message).await;
                    return Leads::Ended(ended);
                }
                DestKind::Group => match cfg.groups.get(&to.target) {
                    Some(g) => {
                        let group = g.clone();
                        return Leads::Group { group, walk };
                    }
                    None => gone(ctx, menus, &mut walk, &to),
                },
                // The walk never routes to a menu; moving there again is harmless.
                DestKind::Menu => walk.to(&cfg.menus, to),
            },
        };
    }
}

/// A destination that is not (or no longer) in the configuration.
fn gone(ctx: &CallCtx<'_>, menus: &Menus, walk: &mut Walk, to: &Destination) -> Step {
    warn!(dialled = %ctx.dialled, destination = %to, "the destination does not exist; taking the menu's invalid path");
    walk.fallback(&menus.realtime.get().menus)
}

/// Plays a prompt, then hangs up.
async fn message(ctx: &mut CallCtx<'_>, menus: &Menus, prompt: &str, cause: HangupCause) -> Ended {
    let clip = clip(menus, prompt, None).await;
    if let Some(ended) = play(ctx, clip).await {
        return ended;
    }
    ctx.hangup(cause).await
}

/// Plays `clip` and waits for a key: during the prompt (it stops the prompt) or up to
/// `timeout` after it; `Err` if the call ended.
async fn key(ctx: &mut CallCtx<'_>, clip: Arc<Track>, timeout: Duration) -> Result<Input, Ended> {
    let seq = ctx.media.set_mode(Mode::Play(clip));
    let deadline = tokio::time::sleep(LONGEST_PROMPT + timeout);
    tokio::pin!(deadline);
    let mut played = false;
    loop {
        tokio::select! {
            end = ctx.life.next_end() => if let Some(e) = end { return Err(e) },
            ev = ctx.events.next() => match ev {
                MediaEvent::Dtmf(k) => {
                    ctx.media.set_mode(Mode::Silence);
                    return Ok(Input::Key(k));
                }
                MediaEvent::PlayDone(s) if s == seq && !played => {
                    played = true;
                    deadline.as_mut().reset(tokio::time::Instant::now() + timeout);
                }
                MediaEvent::PlayDone(_) => {}
            },
            _ = &mut deadline => return Ok(Input::Timeout),
        }
    }
}

/// A prompt to play: one uploaded on the admin pages, a file of the prompts directory or one
/// of the node's own prompts, in that order. One that cannot be played is logged (with its
/// menu, if any) and a tone stands in.
async fn clip(menus: &Menus, prompt: &str, menu: Option<&str>) -> Arc<Track> {
    let cfg = menus.realtime.get();
    if let Some(&version) = cfg.prompts.get(prompt) {
        let listed = |name: &str| cfg.prompts.contains_key(name);
        match menus
            .uploads
            .get(&menus.store, prompt, version, listed)
            .await
        {
            Ok(clip) => return clip,
            Err(e) => {
                warn!(menu = menu.unwrap_or(""), prompt, error = %e, "the uploaded prompt cannot be played; trying the prompts directory");
            }
        }
    }
    match file_clip(&menus.cfg.media.prompts_dir, prompt).await {
        Ok(Some(clip)) => clip,
        Ok(None) => menus.prompts.get(prompt),
        Err(e) => {
            warn!(menu = menu.unwrap_or(""), prompt, error = %e, "the prompt cannot be played; a tone stands in");
            menus.prompts.get(prompt)
        }
    }
}

/// `name` as a file of the prompts directory: `Ok(None)` when `name` is one of the node's
/// own prompts (no `.wav` and no such file), an error when it is not a plain file name or
/// the file cannot be read as 8 kHz mono 16-bit WAV.
async fn file_clip(dir: &Path, name: &str) -> Result<Option<Arc<Track>>, String> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !plain {
        return Err("not a plain file name of the prompts directory".into());
    }
    let file = if name.ends_with(".wav") {
        name.to_owned()
    } else {
        let own = crate::media::prompts::PROMPTS
            .iter()
            .any(|(p, _)| *p == name);
        if own && !dir.join(format!("{name}.wav")).is_file() {
            return Ok(None);
        }
        format!("{name}.wav")
    };
    let path = dir.join(file);
    match tokio::task::spawn_blocking(move || read_wav(&path)).await {
        Ok(Ok(track)) => Ok(Some(Arc::new(track))),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("reading the prompt failed: {e}")),
    }
}
