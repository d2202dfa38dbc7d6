use super::*;

#[test]
fn the_flag_wins_then_the_environment_then_text() {
    let json = Some(OsStr::new("json"));
    type Case<'a> = (
        Option<LogFormat>,
        Option<&'a OsStr>,
        Result<LogFormat, &'a str>,
    );
    let cases: [Case; 8] = [
        (None, None, Ok(LogFormat::Text)),
        (None, Some(OsStr::new("")), Ok(LogFormat::Text)),
        (None, json, Ok(LogFormat::Json)),
        (None, Some(OsStr::new(" JSON ")), Ok(LogFormat::Json)),
        (None, Some(OsStr::new("text")), Ok(LogFormat::Text)),
        (Some(LogFormat::Text), json, Ok(LogFormat::Text)),
        (Some(LogFormat::Json), None, Ok(LogFormat::Json)),
        (None, Some(OsStr::new("yaml")), Err("yaml")),
    ];
    for (flag, env, want) in cases {
        let got = choose_format(flag, env).map_err(|e| e.value);
        assert_eq!(got, want.map_err(str::to_owned), "{flag:?} {env:?}");
    }
    let err = choose_format(None, Some(OsStr::new("yaml"))).expect_err("refused");
    assert_eq!(
        err.to_string(),
        "CALLFLEET_LOG_FORMAT=\"yaml\": use \"text\" or \"json\""
    );
    assert_eq!(
        LogFormat::parse(LogFormat::Json.as_str()),
        Some(LogFormat::Json)
    );
    assert_eq!(
        LogFormat::parse(LogFormat::Text.as_str()),
        Some(LogFormat::Text)
    );
}

#[test]
fn colour_only_on_a_terminal_without_no_color() {
    assert!(colour(true, None));
    assert!(colour(true, Some(OsStr::new(""))));
    assert!(!colour(true, Some(OsStr::new("1"))));
    assert!(!colour(false, None));
    assert!(!colour(false, Some(OsStr::new("1"))));
}
