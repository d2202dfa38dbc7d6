use super::*;

/// The defaults: CPU 70/85/95, load per core 1.5/2.0, calls 70/85 %, 5 points.
fn defaults() -> Thresholds {
    Thresholds {
        cpu: [70.0, 85.0, 95.0],
        load: [150.0, 200.0],
        calls: [70.0, 85.0],
        hysteresis: 5.0,
    }
}

fn inputs(cpu: f32, load: f32, calls: u32, capacity: u32) -> Inputs {
    Inputs {
        cpu_pct: cpu,
        load_per_core: load,
        calls,
        capacity,
    }
}

#[test]
fn levels_rise_at_once_and_fall_with_hysteresis() {
    // (current, cpu, load per core, calls, capacity, expected)
    let cases = [
        (0, 10.0, 0.2, 0, 100, 0),
        (0, 72.0, 0.2, 0, 100, 1),
        (0, 90.0, 0.2, 0, 100, 2),
        (0, 96.0, 0.2, 0, 100, 3),
        (1, 96.0, 0.2, 0, 100, 3),
        (3, 92.0, 0.2, 0, 100, 3),
        (3, 89.0, 0.2, 0, 100, 2),
        (2, 81.0, 0.2, 0, 100, 2),
        (2, 79.0, 0.2, 0, 100, 1),
        (1, 66.0, 0.2, 0, 100, 1),
        (1, 65.0, 0.2, 0, 100, 0),
        (1, 64.9, 0.2, 0, 100, 0),
        (3, 10.0, 0.2, 0, 100, 0),
        // Load per core.
        (0, 10.0, 1.49, 0, 100, 0),
        (0, 10.0, 1.5, 0, 100, 1),
        (0, 10.0, 2.5, 0, 100, 2),
        (0, 10.0, 9.0, 0, 100, 2),
        (1, 10.0, 1.46, 0, 100, 1),
        (1, 10.0, 1.44, 0, 100, 0),
        // Calls against capacity: never past 2.
        (0, 10.0, 0.2, 69, 100, 0),
        (0, 10.0, 0.2, 3, 4, 1),
        (0, 10.0, 0.2, 100, 100, 2),
        (0, 10.0, 0.2, 0, 0, 2),
        (1, 10.0, 0.2, 2, 4, 0),
        // The highest input wins.
        (0, 72.0, 2.1, 1, 4, 2),
        (2, 50.0, 1.0, 3, 4, 1),
    ];
    for (cur, cpu, load, calls, cap, want) in cases {
        let got = next_level(cur, &defaults(), &inputs(cpu, load, calls, cap));
        assert_eq!(
            got, want,
            "cur {cur} cpu {cpu} load {load} calls {calls}/{cap}"
        );
    }
}

#[test]
fn thresholds_within_the_hysteresis_still_fall_when_idle() {
    let t = Thresholds {
        calls: [5.0, 10.0],
        ..defaults()
    };
    // (current, calls of 20, expected)
    let cases = [
        (0, 1, 1),
        (0, 2, 2),
        (2, 2, 2),
        (2, 1, 1),
        (1, 1, 1),
        (1, 0, 0),
        (2, 0, 0),
    ];
    for (cur, calls, want) in cases {
        let got = next_level(cur, &t, &inputs(10.0, 0.2, calls, 20));
        assert_eq!(got, want, "cur {cur} calls {calls}/20");
    }
}

#[test]
fn a_lowered_refuse_threshold_refuses_on_cpu_early() {
    let t = Thresholds {
        cpu: [50.0, 50.0, 50.0],
        ..defaults()
    };
    assert_eq!(next_level(0, &t, &inputs(50.0, 0.0, 0, 10)), 3);
    assert_eq!(next_level(0, &t, &inputs(49.0, 0.0, 0, 10)), 0);
    assert_eq!(next_level(3, &t, &inputs(46.0, 0.0, 0, 10)), 3);
    assert_eq!(next_level(3, &t, &inputs(44.0, 0.0, 0, 10)), 0);
}

#[test]
fn cpu_is_the_mean_of_its_window() {
    let mut w = CpuWindow::new(3);
    // (sample, mean after it)
    let steps = [
        (90.0, 90.0),
        (0.0, 45.0),
        (30.0, 40.0),
        (60.0, 30.0),
        (f32::NAN, 30.0),
        (150.0, 160.0 / 3.0),
    ];
    for (sample, want) in steps {
        let got = w.push(sample);
        assert!((got - want).abs() < 1e-4, "{sample} -> {got}, want {want}");
    }
}

#[test]
fn one_busy_sample_does_not_shed_a_busy_window_does() {
    let t = defaults();
    let mut w = CpuWindow::new(5);
    let mut level = 0;
    let mut levels = Vec::new();
    for sample in [
        10.0, 100.0, 10.0, 10.0, 90.0, 90.0, 90.0, 90.0, 90.0, 70.0, 70.0, 10.0, 10.0,
    ] {
        let cpu = w.push(sample);
        level = next_level(level, &t, &inputs(cpu, 0.1, 0, 10));
        levels.push(level);
    }
    assert_eq!(levels, [0, 0, 0, 0, 0, 0, 0, 1, 2, 2, 2, 1, 0]);
}

#[test]
fn window_length_covers_the_window() {
    let s = Duration::from_secs;
    assert_eq!(window_len(s(10), s(2)), 5);
    assert_eq!(window_len(s(10), s(3)), 4);
    assert_eq!(window_len(s(1), s(2)), 1);
    assert_eq!(window_len(s(10), Duration::ZERO), 1);
    assert_eq!(window_len(Duration::ZERO, s(1)), 1);
}

#[test]
fn work_stops_at_its_level() {
    assert!(allows(0, Work::HeavyReport));
    assert!(!allows(1, Work::HeavyReport));
    assert!(allows(1, Work::Background));
    assert!(!allows(2, Work::Background));
    assert!(allows(2, Work::NewCall));
    assert!(!allows(3, Work::NewCall));
}
