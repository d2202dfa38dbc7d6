//! `callfleet dev seed --cdrs N`: a realistic synthetic call history for the reports and
//! their benchmark: CDRs and queue events over the last `days` days, written in batches.
//!
//! The history ([`generate`], pure and seeded): calls arrive by the hour of a US Eastern
//! business day (peaks at 10:00 and 14:00, a quiet night, weekends at a third), 80 % into one
//! of four queues, the rest straight to an agent; callers are US numbers of every area code,
//! a pool of regulars who call again and again, and a few international ones; a queued call
//! is answered (78 %, after 2–60 s, by one of 60 agents, talking 30 s–10 min), abandoned
//! (15 %) or times out at two minutes (7 %). The queues exist afterwards, and the department
//! `front` (sales and support), so every report has something to show.

use anyhow::Context as _;
use callfleet_store::{
    Cdr, Department, Fallback, HangupCause, HangupSide, Queue, QueueEvent, QueueEventKind, Store,
    Strategy,
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

/// One generated call: its CDR and its queue events.
pub struct Call {
    pub cdr: Cdr,
    pub events: Vec<QueueEvent>,
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
    };
    let mut events = Vec::new();
    if rng.random_range(0..100) < 20 {
        cdr.to_uri = format!("sip:{agent}@node.example.net");
        cdr.agent = Some(agent);
        return Call { cdr, events };
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
    Call { cdr, events }
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
        let events: Vec<QueueEvent> = calls.into_iter().flat_map(|c| c.events).collect();
        store
            .insert_history(&cdrs, &events)
            .await
            .context("write a batch of the history")?;
        done = to;
        if done.is_multiple_of(100_000) || done == plan.cdrs {
            eprintln!("{done} of {} CDRs written", plan.cdrs);
        }
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
    }
}
