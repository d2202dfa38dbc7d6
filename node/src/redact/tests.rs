use super::*;

#[test]
fn secrets_are_hidden_and_the_rest_kept() {
    let cases: &[(&str, &str)] = &[
        // rsipstack's debug line: the raw message as a Debug string.
        (
            r#"udp received raw_message="REGISTER sip:x SIP/2.0\r\nAuthorization: Digest username=\"1001\", realm=\"callfleet\", nonce=\"abc\", response=\"0123456789abcdef\", qop=auth\r\nContent-Length: 0\r\n\r\n""#,
            r#"udp received raw_message="REGISTER sip:x SIP/2.0\r\nAuthorization: <redacted>\r\nContent-Length: 0\r\n\r\n""#,
        ),
        // The same raw, with real line ends; Proxy-Authorization too.
        (
            "INVITE sip:*12@x SIP/2.0\r\nProxy-Authorization: Digest username=\"2001\", response=\"ff00\"\r\nCall-ID: c\r\n",
            "INVITE sip:*12@x SIP/2.0\r\nProxy-Authorization: <redacted>\r\nCall-ID: c\r\n",
        ),
        (
            "GET / HTTP/1.1\r\ncookie: cf_session=abcdef; other=1\r\nX-Callfleet-Secret: s3cr3t\r\nx-csrf-token: t0k\r\n",
            "GET / HTTP/1.1\r\ncookie: <redacted>\r\nX-Callfleet-Secret: <redacted>\r\nx-csrf-token: <redacted>\r\n",
        ),
        // A header map printed with Debug.
        (
            r#"headers={"authorization": "Bearer cft_ab12_deadbeef", "host": "n1"}"#,
            r#"headers={"authorization": <redacted>"#,
        ),
        // Fields.
        (
            "login failed password=hunter2 user=bob",
            "login failed password=<redacted> user=bob",
        ),
        (
            r#"{"name":"bob","password":"hunter2","pin": "1234"}"#,
            r#"{"name":"bob","password":"<redacted>","pin": "<redacted>"}"#,
        ),
        ("config secret = \"abc def\" next", "config secret = \"<redacted>\" next"),
        ("auth_pass=pw;regint=60", "auth_pass=<redacted>;regint=60"),
        // A digest response outside its header.
        ("creds response=\"9f86d0\" nc=1", "creds response=\"<redacted>\" nc=1"),
        // CRM tokens anywhere.
        (
            "token cft_0a1b2c_00112233445566778899 used",
            "token cft_0a1b2c_<redacted> used",
        ),
        // Hot-desk PINs dialled in one go, plain and encoded.
        (
            "INVITE sip:*11*1001*4321@127.0.0.1 SIP/2.0\r\nTo: <sip:*11*1001*4321@127.0.0.1>",
            "INVITE sip:*11*1001*<redacted>@127.0.0.1 SIP/2.0\r\nTo: <sip:*11*1001*<redacted>@127.0.0.1>",
        ),
        ("uri=sip:%2A11%2A1001%2A4321@h", "uri=sip:%2A11%2A1001%2A<redacted>@h"),
        // Nothing secret: unchanged.
        ("sip:*11@x and *11*1001 asks for the PIN", "sip:*11@x and *11*1001 asks for the PIN"),
        (
            "SIP response sent; pinned=1 ping=2 pin_hash=x tokens=3 WWW-Authenticate: Digest nonce=\"n\"",
            "SIP response sent; pinned=1 ping=2 pin_hash=x tokens=3 WWW-Authenticate: Digest nonce=\"n\"",
        ),
        ("the authorization was refused", "the authorization was refused"),
        ("cluster secret refused", "cluster secret refused"),
        // Log targets are module paths, not fields.
        (
            "INFO callfleet::dialplan::pin: hot-desk login: wrong PIN agent=\"1001\"",
            "INFO callfleet::dialplan::pin: hot-desk login: wrong PIN agent=\"1001\"",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(line(input), *want, "{input}");
    }
}

#[test]
fn untouched_lines_are_not_copied() {
    assert!(matches!(
        line("registered aor=1001 new=1"),
        Cow::Borrowed(_)
    ));
}

#[test]
fn odd_input_never_panics() {
    for input in [
        "",
        "password",
        "password=",
        "password=\"",
        "password=\\\"",
        "authorization:",
        "cft_",
        "cft__",
        "cft_a_",
        "*11*",
        "*11**",
        "*11*1*",
        "%2A11%2A",
        "pin: \"é",
        "é password=é",
    ] {
        let _ = line(input);
    }
}
