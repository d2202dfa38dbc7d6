use super::*;

fn first(seed: u64, n: usize) -> Vec<Arrival> {
    Schedule::new(seed).take(n).collect()
}

#[test]
fn a_seed_replays_the_same_callers() {
    assert_eq!(first(7, 40), first(7, 40));
    assert_ne!(first(7, 40), first(8, 40));
    let mut a = Agent::new(7, "2001");
    let mut b = Agent::new(7, "2001");
    let mut c = Agent::new(7, "2002");
    let (a, b, c): (Vec<_>, Vec<_>, Vec<_>) = (0..10)
        .map(|_| (a.next_call(), b.next_call(), c.next_call()))
        .fold((vec![], vec![], vec![]), |mut acc, (x, y, z)| {
            acc.0.push(x);
            acc.1.push(y);
            acc.2.push(z);
            acc
        });
    assert_eq!(a, b);
    assert_ne!(a, c, "each phone has its own rhythm");
}

#[test]
fn more_callers_than_agents_arrive_in_the_first_seconds_and_stay() {
    for seed in 0..50 {
        let calls = first(seed, 200);
        let early: Vec<&Arrival> = calls
            .iter()
            .filter(|a| a.at <= Duration::from_secs(4))
            .collect();
        // Four agents with phones: eight callers in 4 s leave some waiting at 10 s, since
        // every caller stays at least 45 s and every agent talks at least 15 s.
        assert!(
            early.len() >= BURST as usize,
            "seed {seed}: {}",
            early.len()
        );
        assert!(calls.iter().all(|a| a.stay >= Duration::from_secs(45)));
        assert!(calls.iter().all(|a| a.stay <= Duration::from_secs(120)));
        // In order, numbered from 1, gaps within bounds after the burst.
        for (i, w) in calls.windows(2).enumerate() {
            assert_eq!(w[0].index as usize, i + 1);
            let gap = w[1].at - w[0].at;
            if w[1].index > BURST {
                assert!(
                    (4_000..=10_000).contains(&(gap.as_millis() as u64)),
                    "{gap:?}"
                );
            } else {
                assert_eq!(gap, BURST_GAP);
            }
        }
        // Both queues get callers; the VIP calls sales, and nobody else has its number.
        let sales = calls.iter().filter(|a| a.queue == SALES).count();
        let support = calls.iter().filter(|a| a.queue == SUPPORT).count();
        assert!(
            sales > 60 && support > 30,
            "seed {seed}: {sales} / {support}"
        );
        assert!(calls
            .iter()
            .take(BURST as usize)
            .any(|a| a.caller == VIP_CALLER));
        for a in &calls {
            assert_eq!(a.caller == VIP_CALLER, a.index % VIP_EVERY == 3);
            if a.caller == VIP_CALLER {
                assert_eq!(a.queue, SALES);
            }
            assert!(
                a.caller.starts_with("+1555") && a.caller.len() == 9,
                "{}",
                a.caller
            );
        }
    }
}

#[test]
fn agents_pick_up_before_the_queue_gives_up_ringing() {
    let ring_timeout = Duration::from_millis(
        crate::cli::demo::seed::queues()
            .iter()
            .map(|q| q.ring_timeout_ms)
            .min()
            .unwrap_or(0) as u64,
    );
    for seed in 0..20 {
        let mut agent = Agent::new(seed, "2003");
        for _ in 0..100 {
            let p = agent.next_call();
            assert!(p.ring >= Duration::from_millis(1_500) && p.ring < ring_timeout);
            assert!((15..=45).contains(&p.talk.as_secs()));
        }
    }
}
