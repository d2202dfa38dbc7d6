//! The shell around [`rounds`](super::rounds): a call to a ring group. The caller hears the
//! group's music-on-hold class while its members ring; each round's members are taken (an
//! agent as for a direct call: its lease and the guarded `available → ringing` update, so an
//! agent on another call, paused or logged out is passed over; a device member's phone rung
//! directly, no lease: `queue::take`) and rung through the queue's legs (`legs::ring_taken`),
//! which bridge the first to answer like a direct call. Ringing and bridging through the
//! queue's legs, it is handed the call's [`Legs`] as they are (what of it they use: the
//! [`Legs`]' doc; the registrar and the PIN checks are out of its reach); the group itself
//! reads only the music library.

use std::time::Duration;

use callfleet_store::{MemberKind, RingGroup};
use tracing::info;

use super::rounds::{Rounds, Step};
use crate::media::session::Mode;
use crate::node::Legs;
use crate::now_ms;
use crate::queue::caller::Outcome;
use crate::queue::{legs, take};
use crate::sip::call::Ended;
use crate::sip::ctx::CallCtx;

/// Rings `group` for the caller: `Some` once the call ended (a member answered and the
/// conversation is over, or the caller hung up meanwhile), `None` when nobody answered (the
/// caller goes on to the group's no-answer destination).
pub async fn ring(ctx: &mut CallCtx<'_>, kit: &Legs, group: &RingGroup) -> Option<Ended> {
    let mut rounds = Rounds::new(group);
    let mut step = rounds.start(now_ms());
    // Each round takes at least one member off the group, so the loop ends.
    loop {
        let (members, until_ms) = match step {
            Step::NoAnswer => {
                info!(group = %group.name, call_id = ctx.call_id, "nobody in the ring group answered");
                return None;
            }
            Step::Ring { members, until_ms } => (members, until_ms),
        };
        // A class with no tracks (or none named) plays the default class.
        ctx.media
            .set_mode(Mode::Moh(kit.media.moh.class(&group.moh_class)));
        let ring_time = Duration::from_millis(u64::try_from(until_ms - now_ms()).unwrap_or(0));
        let mut taken = Vec::with_capacity(members.len());
        for m in &members {
            let leg = match m.kind {
                MemberKind::Agent => take::take_agent(ctx, kit, &m.extension, ring_time).await,
                MemberKind::Device => take::ring_device(ctx, kit, &m.extension).await,
            };
            taken.extend(leg);
        }
        if !taken.is_empty() {
            match legs::ring_taken(ctx, kit, taken, ring_time).await {
                Some(Outcome::End(ended)) => return Some(ended),
                Some(Outcome::Transfer(to)) => return Some(super::transferred(ctx, kit, to).await),
                Some(Outcome::Fallback) | None => {}
            }
        }
        step = rounds.round_over(now_ms());
    }
}
