//! `callfleet dev seed --cdrs N`: a realistic synthetic call history for the reports and
//! their benchmark: CDRs and queue events over the last `days` days, written in batches.
//!
//! The history ([`generate`], pure and seeded): calls arrive by the hour of a US Eastern
//! business day (peaks at 10:00 and 14:00, a quiet night, weekends at a third), 80 % into one
//! of four queues, the rest straight to an agent; callers are US numbers of every area code,
//! a pool of regulars who call again and again, and a few international ones; a queued call
//! is answered (78 %, after 2–60 s, by one of 60 agents, talking 30 s–10 min), abandoned
//! (15 %) or times out at two minutes (7 %). The queues exist afterwards, and the department
//! `front` (sales and support), so every report has something to show. Each call's caller leg
//! has RTP figures: a little loss and jitter from US callers (a few bad calls), more from
//! abroad. Each agent works weekdays 08:00–17:00 Eastern (a little late some days), taking
//! calls in turn with a break in the afternoon: its state changes make the agents report's
//! logged-in time, pause time and occupancy.

use anyhow::Context as _;
use callfleet_store::{
    AgentState, CallLeg, Cdr, Department, Fallback, HangupCause, HangupSide, LegQualityRow, Queue,
    QueueEvent, QueueEventKind, StateChange, Store, Strategy,
};
use callfleet_web::reports::numbers;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// The queues of the history.
pub const QUEUES: [&str; 4] = ["sales", "support", "billing", "retention"];
/// Agents 1001–1060.
const AGENTS: u32 = 60;
/// CDRs per write.
const BATCH: usize = 10_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// Relative call volume per hour of the day in US Eastern time.
const BY_HOUR: [u32; 24] = [
    1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 20, 18, 15, 17, 20, 18, 15, 12, 9, 8, 6, 4, 2, 1,
];

/// What to make.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub cdrs: u64,
    pub days: i64,
    /// The history ends here (ms since the epoch).
    pub end_ms: i64,
    pub seed: u64,
}

/// One generated call: its CDR, its queue events and its caller leg's RTP figures.
pub struct Call {
    pub cdr: Cdr,
    pub events: Vec<QueueEvent>,
    pub quality: LegQualityRow,
}

fn start_time(rng: &mut StdRng, plan: &Plan) -> i64 {
    let total: u32 = BY_HOUR.iter().sum();
    loop {
        let day = rng.random_range(0..=plan.days);
        let day_start = (plan.end_ms / DAY - plan.days + day) * DAY;
        // Weekends (1970-01-01 was a Thursday: day 2 and 3 of each week) get a third.
        let weekday = (day_start / DAY + 3) % 7;
        if weekday >= 5 && rng.random_range(0..3) != 0 {
            continue;
        }
        let mut pick = rng.random_range(0..total);
        let mut hour = 0;
        while pick >= BY_HOUR[hour] {
            pick -= BY_HOUR[hour];
            hour += 1;
        }
        // Eastern is UTC-5 (UTC-4 in summer; an hour off is fine for a synthetic history).
        let t = day_start + (hour as i64 + 5) * HOUR + rng.random_range(0..HOUR);
        if (plan.end_ms - plan.days * DAY..plan.end_ms).contains(&t) {
            return t;
        }
    }
}

fn caller(rng: &mut StdRng, areas: &[[u8; 3]], regulars: &[String]) -> String {
    let number = match rng.random_range(0..100) {
        0..10 => regulars[rng.random_range(0..regulars.len())].clone(),
        10..15 => {
            let cc = ["44", "33", "49", "52", "91", "61"][rng.random_range(0..6)];
            format!("+{cc}{}", rng.random_range(100_000_000u64..999_999_999))
        }
        _ => us_number(rng, areas),
    };
    format!("sip:{number}@carrier.example.net")
}

fn us_number(rng: &mut StdRng, areas: &[[u8; 3]]) -> String {
    let npa = areas[rng.random_range(0..areas.len())];
    format!(
        "+1{}{}{:06}",
        String::from_utf8_lossy(&npa),
        rng.random_range(2..10),
        rng.random_range(0..1_000_000)
    )
}

fn event(
    call_id: &str,
    queue: &str,
    at: i64,
    what: QueueEventKind,
    agent: Option<&str>,
) -> QueueEvent {
    QueueEvent {
        id: 0,
        at_ms: at,
        queue: queue.into(),
        call_id: call_id.into(),
        node: "main-a".into(),
        agent: agent.map(Into::into),
        event: what,
        detail: None,
        uid: None,
    }
}

/// The calls numbered `from..to` of the plan (each call's randomness depends on the seed
/// and its number only, so batches can be made in any order).
pub fn generate(plan: &Plan, from: u64, to: u64) -> Vec<Call> {
    let areas = numbers::us_area_codes();
    let mut pool = StdRng::seed_from_u64(plan.seed);
    let regulars: Vec<String> = (0..5000).map(|_| us_number(&mut pool, &areas)).collect();
    (from..to)
        .map(|i| {
            let mut rng = StdRng::seed_from_u64(plan.seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            one_call(&mut rng, plan, i, &areas, &regulars)
        })
        .collect()
}

fn one_call(rng: &mut StdRng, plan: &Plan, i: u64, areas: &[[u8; 3]], regulars: &[String]) -> Call {
    let start = start_time(rng, plan);
    let call_id = format!("seed-{}-{i}", plan.seed);
    let agent = format!("{}", 1001 + rng.random_range(0..AGENTS));
    let talk = rng.random_range(30_000..600_000);
    let mut cdr = Cdr {
        node: ["main-a", "main-b", "extra-c"][(i % 3) as usize].into(),
        call_id: call_id.clone(),
        from_uri: caller(rng, areas, regulars),
        to_uri: String::new(),
        started_at_ms: start,
        answered_at_ms: Some(start + 50),
        ended_at_ms: start + talk,
        hangup_cause: HangupCause::Normal,
        hangup_side: HangupSide::Caller,
        sip_status: 200,
        redirected_from: None,
        agent: None,
        queue: None,
        uid: None,
        direction: Default::default(),
        destination: None,
    };
    let mut events = Vec::new();
    if rng.random_range(0..100) < 20 {
        cdr.to_uri = format!("sip:{agent}@node.example.net");
        cdr.agent = Some(agent);
        let quality = caller_leg(rng, &cdr);
        return Call {
            cdr,
            events,
            quality,
        };
    }
    let queue = QUEUES[rng.random_range(0..QUEUES.len())];
    cdr.to_uri = format!("sip:{queue}@node.example.net");
    cdr.queue = Some(queue.into());
    let enq = start + 100;
    events.push(event(&call_id, queue, enq, QueueEventKind::Enqueue, None));
    match rng.random_range(0..100) {
        0..78 => {
            let answer = enq + rng.random_range(2_000..60_000);
            events.push(event(
                &call_id,
                queue,
                answer,
                QueueEventKind::Answer,
                Some(&agent),
            ));
            events.push(event(
                &call_id,
                queue,
                answer + talk,
                QueueEventKind::Complete,
                Some(&agent),
            ));
            cdr.ended_at_ms = answer + talk;
            cdr.agent = Some(agent);
        }
        78..93 => {
            let gone = enq + rng.random_range(3_000..90_000);
            events.push(event(&call_id, queue, gone, QueueEventKind::Abandon, None));
            cdr.ended_at_ms = gone;
        }
        _ => {
            let out = enq + 120_000;
            events.push(event(&call_id, queue, out, QueueEventKind::Timeout, None));
            cdr.ended_at_ms = out + rng.random_range(5_000..40_000);
            cdr.hangup_side = HangupSide::Node;
        }
    }
    let quality = caller_leg(rng, &cdr);
    Call {
        cdr,
        events,
        quality,
    }
}

/// The caller leg's RTP figures: 20 ms packets for the whole call; from US numbers up to 1 %
/// lost and 1–8 ms of jitter (one call in twenty 3–8 % and up to 40 ms), from abroad 1–4 %
/// and 5–40 ms.
fn caller_leg(rng: &mut StdRng, cdr: &Cdr) -> LegQualityRow {
    let expected = ((cdr.ended_at_ms - cdr.started_at_ms) / 20).max(1);
    let abroad = !cdr.from_uri.starts_with("sip:+1");
    let (loss_permille, jitter_us) = if abroad {
        (rng.random_range(10..40), rng.random_range(5_000..40_000))
    } else if rng.random_range(0..20) == 0 {
        (rng.random_range(30..80), rng.random_range(10_000..40_000))
    } else {
        (rng.random_range(0..10), rng.random_range(1_000..8_000))
    };
    let lost = expected * loss_permille / 1000;
    LegQualityRow {
        node: cdr.node.clone(),
        call_id: cdr.call_id.clone(),
        started_at_ms: cdr.started_at_ms,
        leg: CallLeg::Caller,
        ended_at_ms: cdr.ended_at_ms,
        codec: "PCMU".into(),
        packets_in: expected - lost,
        bytes_in: (expected - lost) * 172,
        packets_out: expected,
        bytes_out: expected * 172,
        expected,
        lost,
        duplicates: 0,
        out_of_order: 0,
        jitter_us,
        jitter_max_us: jitter_us * 2,
        longest_gap_ms: 20 * (1 + loss_permille / 10),
        rtcp_sent: expected / 250,
        rtcp_received: expected / 250,
        peer_fraction_lost: None,
        peer_lost: None,
        peer_jitter_us: None,
        rtt_us: None,
    }
}

/// Agent `agent`'s state changes on the day starting at `day_start` (UTC midnight): nothing
/// at weekends; else logged in from 13:00 UTC (08:00 Eastern) or up to 30 min later, calls
/// in turn (waiting 30 s–6 min, ringing 2–20 s, talking 1–8 min, 30 s of wrap-up), a break of
/// 15–30 min from 17:00 UTC, logged out at 22:00.
pub fn agent_day(seed: u64, agent: u32, day_start: i64) -> Vec<StateChange> {
    use AgentState::*;
    let day = day_start.div_euclid(DAY);
    // 1970-01-01 was a Thursday: days 2 and 3 of a week are Saturday and Sunday.
    if matches!(day.rem_euclid(7), 2 | 3) {
        return Vec::new();
    }
    let mut rng = StdRng::seed_from_u64(seed ^ ((day as u64) << 16) ^ u64::from(agent));
    let agent = (1001 + agent).to_string();
    let mut out = Vec::new();
    let mut at = day_start + 13 * HOUR + rng.random_range(0..30 * 60_000);
    let mut push = |state, t| {
        out.push(StateChange {
            agent: agent.clone(),
            state,
            since_ms: t,
        })
    };
    let (break_at, end) = (day_start + 17 * HOUR, day_start + 22 * HOUR);
    let mut on_break = false;
    while at < end {
        push(Available, at);
        at += rng.random_range(30_000..360_000);
        if !on_break && at >= break_at {
            on_break = true;
            push(Paused, at);
            at += rng.random_range(15 * 60_000..30 * 60_000);
            continue;
        }
        push(Reserved, at);
        push(Ringing, at + 50);
        at += rng.random_range(2_000..20_000);
        push(InCall, at);
        at += rng.random_range(60_000..480_000);
        push(WrapUp, at);
        at += 30_000;
    }
    push(LoggedOut, at);
    out
}

fn queue_row(name: &str) -> Queue {
    Queue {
        name: name.into(),
        strategy: Strategy::LeastRecent,
        ring_timeout_ms: 15_000,
        max_wait_ms: 120_000,
        announce_interval_ms: 30_000,
        moh_class: "default".into(),
        wrapup_ms: 5_000,
        fallback: Fallback::Hangup,
        fallback_target: None,
        rr_last: None,
        recording: Default::default(),
        recording_prompt: false,
    }
}

/// Writes the plan's history into `store`, printing progress; returns the CDRs written.
pub async fn seed(store: &Store, plan: Plan) -> anyhow::Result<u64> {
    let known = store.queues().await.context("read the queues")?;
    for q in QUEUES {
        if !known.iter().any(|k| k.name == q) {
            store
                .upsert_queue(&queue_row(q))
                .await
                .with_context(|| format!("make queue {q}"))?;
        }
    }
    if store
        .department("front")
        .await
        .context("read departments")?
        .is_none()
    {
        let front = Department {
            name: "front".into(),
            queues: vec!["sales".into(), "support".into()],
            created_at_ms: plan.end_ms,
        };
        store
            .upsert_department(&front)
            .await
            .context("make department front")?;
    }
    let mut done = 0u64;
    while done < plan.cdrs {
        let to = (done + BATCH as u64).min(plan.cdrs);
        let calls = generate(&plan, done, to);
        let cdrs: Vec<Cdr> = calls.iter().map(|c| c.cdr.clone()).collect();
        let quality: Vec<LegQualityRow> = calls.iter().map(|c| c.quality.clone()).collect();
        let events: Vec<QueueEvent> = calls.into_iter().flat_map(|c| c.events).collect();
        store
            .insert_history(&cdrs, &events)
            .await
            .context("write a batch of the history")?;
        store
            .insert_quality_history(&quality)
            .await
            .context("write a batch of the history's RTP figures")?;
        done = to;
        if done.is_multiple_of(100_000) || done == plan.cdrs {
            eprintln!("{done} of {} CDRs written", plan.cdrs);
        }
    }
    let first_day = (plan.end_ms - plan.days * DAY).div_euclid(DAY) * DAY;
    for day in (first_day..plan.end_ms).step_by(DAY as usize) {
        let changes: Vec<StateChange> = (0..AGENTS)
            .flat_map(|a| agent_day(plan.seed, a, day))
            .filter(|c| c.since_ms < plan.end_ms)
            .collect();
        store
            .insert_state_history(&changes)
            .await
            .context("write a day of the agents' state history")?;
    }
    store
        .analyze_history()
        .await
        .context("analyze the history tables")?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: Plan = Plan {
        cdrs: 20_000,
        days: 90,
        end_ms: 1_796_652_000_000,
        seed: 7,
    };

    #[test]
    fn the_history_is_deterministic_and_realistic() {
        let a = generate(&PLAN, 0, 20_000);
        let b = generate(&PLAN, 100, 101);
        assert_eq!(
            a[100].cdr, b[0].cdr,
            "a call depends on the seed and its number only"
        );
        let queued = a.iter().filter(|c| c.cdr.queue.is_some()).count();
        assert!((15_000..17_000).contains(&queued), "80 % queued: {queued}");
        let answered = a
            .iter()
            .filter(|c| c.events.iter().any(|e| e.event == QueueEventKind::Answer))
            .count();
        let share = answered as f64 / queued as f64;
        assert!((0.74..0.82).contains(&share), "78 % answered: {share}");
        let start = PLAN.end_ms - PLAN.days * DAY;
        assert!(a
            .iter()
            .all(|c| (start..PLAN.end_ms).contains(&c.cdr.started_at_ms)));
        assert!(a.iter().all(|c| c.cdr.ended_at_ms > c.cdr.started_at_ms));
        // Business hours: more calls at 15:00 UTC (10:00 Eastern) than at 08:00 UTC (03:00).
        let at = |h: i64| {
            a.iter()
                .filter(|c| c.cdr.started_at_ms % DAY / HOUR == h)
                .count()
        };
        assert!(at(15) > 5 * at(8), "{} vs {}", at(15), at(8));
        // Most callers are US numbers with a state.
        let us = a
            .iter()
            .filter(|c| {
                let n = c.cdr.from_uri.trim_start_matches("sip:+1");
                numbers::us_area(<[u8; 3]>::try_from(&n.as_bytes()[..3]).unwrap_or(*b"000"))
                    .is_some()
            })
            .count();
        assert!(us > 18_000, "{us}");
        // NANP: +1 and ten digits.
        let nanp = a
            .iter()
            .filter(|c| c.cdr.from_uri.starts_with("sip:+1"))
            .count();
        let ten = a
            .iter()
            .filter(|c| c.cdr.from_uri.starts_with("sip:+1"))
            .filter(|c| c.cdr.from_uri.find('@') == Some("sip:+1".len() + 10))
            .count();
        assert_eq!(nanp, ten);
        // Regulars call again.
        let mut by_caller = std::collections::HashMap::<&str, u32>::new();
        for c in &a {
            *by_caller.entry(c.cdr.from_uri.as_str()).or_default() += 1;
        }
        assert!(by_caller.values().any(|&n| n >= 3));
        // RTP figures: one caller leg per call, the call's own, worse from abroad.
        assert!(a.iter().all(|c| c.quality.call_id == c.cdr.call_id
            && c.quality.started_at_ms == c.cdr.started_at_ms
            && (0..=c.quality.expected / 10).contains(&c.quality.lost)));
        let loss = |abroad: bool| {
            let (lost, expected) = a
                .iter()
                .filter(|c| c.cdr.from_uri.starts_with("sip:+1") != abroad)
                .fold((0, 0), |(l, e), c| {
                    (l + c.quality.lost, e + c.quality.expected)
                });
            lost as f64 / expected as f64
        };
        assert!(
            (0.004..0.01).contains(&loss(false)),
            "US loss {}",
            loss(false)
        );
        assert!(
            (0.015..0.035).contains(&loss(true)),
            "loss abroad {}",
            loss(true)
        );
    }

    #[test]
    fn agents_work_weekdays_with_a_break() {
        // 2026-12-07 is a Monday, 2026-12-05 a Saturday.
        let monday = 20_794 * DAY;
        assert!(agent_day(7, 3, monday - 2 * DAY).is_empty());
        let day = agent_day(7, 3, monday);
        assert_eq!(day, agent_day(7, 3, monday), "deterministic");
        assert_ne!(day, agent_day(7, 4, monday), "each agent its own day");
        assert!(day.iter().all(|c| c.agent == "1004"));
        assert!(day.windows(2).all(|w| w[0].since_ms <= w[1].since_ms));
        let first = day.first().expect("a login");
        assert_eq!(first.state, AgentState::Available);
        assert!((monday + 13 * HOUR..monday + 13 * HOUR + HOUR / 2).contains(&first.since_ms));
        let last = day.last().expect("a logout");
        assert_eq!(last.state, AgentState::LoggedOut);
        assert!(last.since_ms >= monday + 22 * HOUR);
        let paused: Vec<_> = day
            .iter()
            .filter(|c| c.state == AgentState::Paused)
            .collect();
        assert_eq!(paused.len(), 1);
        assert!(paused[0].since_ms >= monday + 17 * HOUR);
        // Each state lasts until the next change (the last, logged out, counts nothing).
        let spans = day.windows(2).map(|w| callfleet_store::StateTime {
            agent: w[0].agent.clone(),
            state: w[0].state,
            ms: w[1].since_ms - w[0].since_ms,
        });
        let times = callfleet_web::reports::fold::state_times(spans);
        let occupancy = times["1004"].occupancy_pct().expect("worked");
        assert!((50.0..85.0).contains(&occupancy), "{occupancy}");
    }
}
