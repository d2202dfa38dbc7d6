//! Where an answered call goes, by the number dialled: a number (DID) of the `numbers` table,
//! carried through its schedule, IVR menus and ring groups by `flow` (pure parts: `schedule`,
//! `walk`, `rounds`; ring groups rung by `group`),
//! a queue (its name), an agent (the
//! agent's personal extension: ring the phone the agent is logged in on, else voicemail),
//! the hot-desk feature codes (`*11` log in, `*12` log out, from a registered phone that
//! authenticated its INVITE: the device, never the From header), or music on hold for any
//! other number. PINs are checked by `pin`, under the hot-desk guessing limits.
//!
//! [`run`] is where a call is dispatched, with the call's whole [`CallKit`]: it hands each
//! flow only its parts ([`Menus`](crate::node::Menus) to a number's walk,
//! [`Mailboxes`](crate::node::Mailboxes) to voicemail, [`HotDesk`] to the feature codes),
//! and the kit's [`Legs`] to the queue's flow and what rings agents through its legs (a
//! direct call, a ring group), which cannot reach the registrar or the PIN checks. A caller
//! the agent's phone transferred is routed again with the [`Legs`] alone ([`transferred`]).

mod flow;
mod group;
mod pin;
pub mod rounds;
pub mod schedule;
pub mod walk;

use std::time::Duration;

use callfleet_store::HangupCause;
use tracing::info;

use crate::media::session::{MediaEvent, Mode};
use crate::node::{CallKit, HotDesk, Legs};
use crate::now_ms;
use crate::queue::caller::{self, play, Outcome};
use crate::queue::legs;
use crate::queue::transfer::TransferTo;
use crate::queue::voicemail;
use crate::realtime::Realtime;
use crate::sip::call::Ended;
use crate::sip::ctx::CallCtx;
use flow::Leads;

/// Feature code: log an agent in on the calling phone.
pub const LOGIN: &str = "*11";
/// Feature code: log out the agent on the calling phone.
pub const LOGOUT: &str = "*12";
/// How long a direct call rings the agent before voicemail.
const DIRECT_RING: Duration = Duration::from_secs(20);
/// How long the caller has for each DTMF entry.
const DIGIT_WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Hold,
    /// A row of `numbers` (checked before queue names and extensions).
    Number(String),
    Queue(String),
    Agent(String),
    /// `*11`, optionally with `*EXT*PIN` in the dialled string.
    Login {
        agent: Option<String>,
        pin: Option<String>,
    },
    Logout,
}

/// Routes by the dialled number using the cached configuration (no SQL).
pub fn route(realtime: &Realtime, dialled: &str) -> Route {
    if let Some(rest) = dialled.strip_prefix(LOGIN) {
        let mut parts = rest.split('*').filter(|p| !p.is_empty());
        return Route::Login {
            agent: parts.next().map(str::to_string),
            pin: parts.next().map(str::to_string),
        };
    }
    if dialled == LOGOUT {
        return Route::Logout;
    }
    let cfg = realtime.get();
    if cfg.numbers.contains_key(dialled) {
        Route::Number(dialled.to_string())
    } else if cfg.queues.contains_key(dialled) {
        Route::Queue(dialled.to_string())
    } else if cfg.agents.contains_key(dialled) {
        Route::Agent(dialled.to_string())
    } else {
        Route::Hold
    }
}

/// Runs the route to the end of the call: the hot-desk codes with the [`HotDesk`] made from
/// `kit`, every other route with its [`Legs`].
pub async fn run(ctx: &mut CallCtx<'_>, kit: &CallKit, route: Route) -> Ended {
    match route {
        Route::Hold => loop {
            if let Some(e) = ctx.next_end().await {
                return e;
            }
        },
        Route::Queue(name) => queue(ctx, &kit.legs, &name).await,
        Route::Number(n) => number(ctx, &kit.legs, &n).await,
        Route::Agent(ext) => direct(ctx, &kit.legs, &ext, None).await,
        Route::Login { agent, pin } => login(ctx, &kit.hot_desk(), agent, pin).await,
        Route::Logout => logout(ctx, &kit.hot_desk()).await,
    }
}

/// A call to a queue, by its name.
async fn queue(ctx: &mut CallCtx<'_>, kit: &Legs, name: &str) -> Ended {
    match kit.realtime.get().queues.get(name).cloned() {
        Some(q) => caller::serve(ctx, kit, &q).await,
        None => ctx.hangup(HangupCause::NoSuchQueue).await,
    }
}

/// A call to a number: its schedule and menus walked by `flow` (with the
/// [`Menus`](crate::node::Menus)), and where they lead served here.
async fn number(ctx: &mut CallCtx<'_>, kit: &Legs, number: &str) -> Ended {
    let menus = kit.menus();
    let mut leads = flow::number(ctx, &menus, number).await;
    // A walk carried on after a ring group counts its hops on, so the loop ends.
    loop {
        leads = match leads {
            Leads::Ended(ended) => return ended,
            Leads::Queue(q) => return caller::serve(ctx, kit, &q).await,
            Leads::Agent { ext, moh_class } => {
                return direct(ctx, kit, &ext, moh_class.as_deref()).await;
            }
            Leads::Voicemail(mailbox) => {
                return voicemail::record(ctx, &kit.mailboxes(), &mailbox).await;
            }
            Leads::Group { group, walk } => match group::ring(ctx, kit, &group).await {
                Some(ended) => return ended,
                None => flow::after_group(ctx, &menus, walk, group.no_answer).await,
            },
        };
    }
}

/// A call to an agent's personal extension; the caller hears music of class `moh_class` (the
/// IVR menu's the caller came through) or the default class while the phone rings.
async fn direct(ctx: &mut CallCtx<'_>, kit: &Legs, ext: &str, moh_class: Option<&str>) -> Ended {
    let logged_in = kit
        .store
        .agent(ext)
        .await
        .ok()
        .flatten()
        .is_some_and(|a| a.device.is_some());
    if logged_in {
        let music = match moh_class {
            Some(class) => kit.media.moh.class(class),
            None => kit.media.moh.default_class(),
        };
        ctx.media.set_mode(Mode::Moh(music));
        match legs::direct(ctx, kit, ext, DIRECT_RING).await {
            Some(Outcome::End(ended)) => return ended,
            Some(Outcome::Transfer(to)) => return transferred(ctx, kit, to).await,
            Some(Outcome::Fallback) | None => {}
        }
    }
    voicemail::record(ctx, &kit.mailboxes(), ext).await
}

/// A caller the agent's phone transferred (`queue::transfer`): routed to the target like a
/// new call to it, on the same dialog (the caller is never re-INVITEd). A target is an agent,
/// a queue or a number, never a hot-desk code: the [`Legs`] are all it uses.
pub async fn transferred(ctx: &mut CallCtx<'_>, kit: &Legs, to: TransferTo) -> Ended {
    match to {
        TransferTo::Agent(ext) => Box::pin(direct(ctx, kit, &ext, None)).await,
        TransferTo::Queue(name) => Box::pin(queue(ctx, kit, &name)).await,
        TransferTo::Number(n) => Box::pin(number(ctx, kit, &n)).await,
    }
}

/// The phone (device extension) a call comes from: the device that authenticated the INVITE,
/// if it is registered. A carrier's call, whatever its From header says, has none.
async fn calling_device(ctx: &CallCtx<'_>, desk: &HotDesk) -> Option<String> {
    let device = ctx.device.clone()?;
    let regs = desk.store.registrations(&device, now_ms()).await.ok()?;
    (!regs.is_empty()).then_some(device)
}

async fn login(
    ctx: &mut CallCtx<'_>,
    desk: &HotDesk,
    agent: Option<String>,
    pin: Option<String>,
) -> Ended {
    let Some(device) = calling_device(ctx, desk).await else {
        info!(caller = %ctx.caller, "hot-desk login refused: not a registered phone's own call");
        return fail(ctx, desk).await;
    };
    let agent = match agent {
        Some(a) => a,
        None => match ask(ctx, desk, "enter-agent").await {
            Ok(Some(a)) => a,
            Ok(None) => return fail(ctx, desk).await,
            Err(e) => return e,
        },
    };
    let pin = match pin {
        Some(p) => p,
        None => match ask(ctx, desk, "enter-pin").await {
            Ok(Some(p)) => p,
            Ok(None) => return fail(ctx, desk).await,
            Err(e) => return e,
        },
    };
    if !pin::check(&desk.pins, &device, &agent, &pin).await {
        return fail(ctx, desk).await; // logged (once per lockout) by the check
    }
    if !desk
        .store
        .login_agent(&agent, &device, now_ms())
        .await
        .unwrap_or(false)
    {
        info!(agent = %agent, device = %device, "hot-desk login refused: the agent or the phone's agent is busy");
        return fail(ctx, desk).await;
    }
    info!(agent = %agent, device = %device, "agent logged in");
    if let Some(e) = play(ctx, desk.prompts.get("logged-in")).await {
        return e;
    }
    ctx.hangup(HangupCause::HotdeskLogin).await
}

/// `*12`: logs out the agent logged in on the calling (authenticated) phone, and no other.
async fn logout(ctx: &mut CallCtx<'_>, desk: &HotDesk) -> Ended {
    let Some(device) = calling_device(ctx, desk).await else {
        info!(caller = %ctx.caller, "hot-desk logout refused: not a registered phone's own call");
        return fail(ctx, desk).await;
    };
    let agent = desk.store.agent_on_device(&device).await.ok().flatten();
    let done = match &agent {
        Some(a) => desk
            .store
            .logout_agent(&a.extension, now_ms())
            .await
            .unwrap_or(false),
        None => false,
    };
    if !done {
        return fail(ctx, desk).await;
    }
    info!(device = %device, "agent logged out");
    if let Some(e) = play(ctx, desk.prompts.get("logged-out")).await {
        return e;
    }
    ctx.hangup(HangupCause::HotdeskLogout).await
}

async fn fail(ctx: &mut CallCtx<'_>, desk: &HotDesk) -> Ended {
    if let Some(e) = play(ctx, desk.prompts.get("login-failed")).await {
        return e;
    }
    ctx.hangup(HangupCause::HotdeskFailed).await
}

/// Plays a prompt and collects DTMF digits up to `#` (or a pause); `Err` if the call ended.
async fn ask(ctx: &mut CallCtx<'_>, desk: &HotDesk, prompt: &str) -> Result<Option<String>, Ended> {
    ctx.media.set_mode(Mode::Play(desk.prompts.get(prompt)));
    let mut digits = String::new();
    loop {
        let wait = tokio::time::sleep(DIGIT_WAIT);
        tokio::select! {
            end = ctx.life.next_end() => if let Some(e) = end { return Err(e) },
            ev = ctx.events.next() => match ev {
                MediaEvent::Dtmf('#') => return Ok((!digits.is_empty()).then_some(digits)),
                MediaEvent::Dtmf(d) if digits.len() < 16 => {
                    ctx.media.set_mode(Mode::Silence);
                    digits.push(d);
                }
                _ => {}
            },
            _ = wait => return Ok((!digits.is_empty()).then_some(digits)),
        }
    }
}
