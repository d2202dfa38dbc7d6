//! The walk, table-tested: each case is a start, a list of inputs and the steps expected.

use std::collections::{BTreeMap, HashMap};

use callfleet_store::{DestKind, Destination, IvrMenu};

use super::*;

fn d(text: &str) -> Destination {
    text.parse().expect("destination")
}

fn menu(name: &str, repeats: u32, invalid: &str, choices: &[(char, &str)]) -> IvrMenu {
    IvrMenu {
        name: name.into(),
        prompt: format!("{name}.wav"),
        timeout_ms: 4_000,
        repeats,
        invalid: d(invalid),
        choices: choices
            .iter()
            .map(|(k, to)| (*k, d(to)))
            .collect::<BTreeMap<_, _>>(),
        moh_class: "default".into(),
        created_at_ms: 0,
    }
}

fn menus(list: Vec<IvrMenu>) -> HashMap<String, IvrMenu> {
    list.into_iter().map(|m| (m.name.clone(), m)).collect()
}

fn play(name: &str) -> Step {
    Step::Prompt {
        menu: name.into(),
        prompt: format!("{name}.wav"),
        timeout_ms: 4_000,
    }
}

fn route(text: &str) -> Step {
    Step::Route(d(text))
}

fn tree() -> HashMap<String, IvrMenu> {
    menus(vec![
        menu(
            "main",
            2,
            "message:goodbye",
            &[
                ('1', "queue:sales"),
                ('2', "menu:billing"),
                ('9', "menu:gone"),
                ('0', "agent:1001"),
            ],
        ),
        menu(
            "billing",
            1,
            "queue:billing",
            &[('1', "number:0800"), ('*', "menu:main")],
        ),
        // Two menus whose invalid paths point at each other.
        menu("ping", 1, "menu:pong", &[]),
        menu("pong", 1, "menu:ping", &[]),
    ])
}

#[test]
fn keys_and_timeouts_lead_where_the_menus_say() {
    use Input::{Key, Timeout};
    let cases: Vec<(&str, Vec<Input>, Vec<Step>)> = vec![
        (
            "a key with a choice",
            vec![Key('1')],
            vec![play("main"), route("queue:sales")],
        ),
        (
            "a sub-menu, then a number",
            vec![Key('2'), Key('1')],
            vec![play("main"), play("billing"), route("number:0800")],
        ),
        (
            "back up to the main menu plays it afresh",
            vec![Key('2'), Key('*'), Timeout, Key('0')],
            vec![
                play("main"),
                play("billing"),
                play("main"),
                play("main"),
                route("agent:1001"),
            ],
        ),
        (
            "an unknown key replays, then the repeats run out",
            vec![Key('7'), Key('#')],
            vec![play("main"), play("main"), route("message:goodbye")],
        ),
        (
            "timeouts count like invalid keys",
            vec![Timeout, Timeout],
            vec![play("main"), play("main"), route("message:goodbye")],
        ),
        (
            "a removed menu takes the current menu's invalid path",
            vec![Key('9')],
            vec![play("main"), route("message:goodbye")],
        ),
        (
            "a sub-menu's own invalid path",
            vec![Key('2'), Timeout],
            vec![play("main"), play("billing"), route("queue:billing")],
        ),
    ];
    for (why, inputs, want) in cases {
        let m = tree();
        let mut walk = Walk::default();
        let mut got = vec![walk.to(&m, d("menu:main"))];
        for input in inputs {
            got.push(walk.input(&m, input));
        }
        assert_eq!(got, want, "{why}");
    }
}

#[test]
fn menus_that_point_at_each_other_end_in_a_give_up() {
    let m = tree();
    let mut walk = Walk::default();
    let mut step = walk.to(&m, d("menu:ping"));
    let mut n = 0;
    while let Step::Prompt { .. } = step {
        step = walk.input(&m, Input::Timeout);
        n += 1;
        assert!(n <= MAX_HOPS, "the walk did not end");
    }
    assert_eq!(step, Step::GiveUp(GiveUp::TooManyHops));
    assert_eq!(n, MAX_HOPS);
}

#[test]
fn a_destination_that_cannot_be_used_falls_back_or_gives_up() {
    let m = tree();
    // From a number straight to a removed menu: no menu to fall back on.
    let mut walk = Walk::default();
    assert_eq!(walk.to(&m, d("menu:gone")), Step::GiveUp(GiveUp::NoWayOn));
    // A routed queue that is gone: the last menu's invalid path.
    let mut walk = Walk::default();
    walk.to(&m, d("menu:main"));
    assert_eq!(walk.input(&m, Input::Key('1')), route("queue:sales"));
    assert_eq!(walk.fallback(&m), route("message:goodbye"));
    // Its invalid path cannot be used either: the fallback repeats until the hop bound.
    let mut steps = 0;
    while walk.fallback(&m) != Step::GiveUp(GiveUp::TooManyHops) {
        steps += 1;
        assert!(steps <= MAX_HOPS);
    }
    // A key after the menu was removed mid-call.
    let mut walk = Walk::default();
    walk.to(&m, d("menu:billing"));
    let without = menus(vec![]);
    assert_eq!(
        walk.input(&without, Input::Key('1')),
        Step::GiveUp(GiveUp::NoWayOn)
    );
}

#[test]
fn a_non_menu_destination_routes_at_once() {
    let m = tree();
    for kind in [
        "queue:q",
        "agent:1",
        "number:2",
        "voicemail:1",
        "message:goodbye",
    ] {
        assert_eq!(Walk::default().to(&m, d(kind)), route(kind));
    }
    assert_eq!(
        Walk::default().to(&m, Destination::new(DestKind::Menu, "billing")),
        play("billing")
    );
}
