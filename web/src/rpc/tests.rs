use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use tower::ServiceExt;

use super::*;
use crate::crm::tests::{app_state, seeded_store};
use dxr::MethodResponse;

/// `<value>` XML for the test parameters.
enum P<'a> {
    S(&'a str),
    /// A string in an untyped `<value>`, as the spec allows.
    Untyped(&'a str),
    I(i32),
    B(bool),
    Nil,
}

fn call_xml(method: &str, params: &[P<'_>]) -> String {
    let mut xml = format!(
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>{method}</methodName>\n<params>\n"
    );
    for p in params {
        let value = match p {
            P::S(s) => format!("<string>{s}</string>"),
            P::Untyped(s) => (*s).to_owned(),
            P::I(n) => format!("<int>{n}</int>"),
            P::B(b) => format!("<boolean>{}</boolean>", u8::from(*b)),
            P::Nil => "<nil/>".to_owned(),
        };
        xml.push_str(&format!("<param>\n<value>{value}</value>\n</param>\n"));
    }
    xml.push_str("</params>\n</methodCall>\n");
    xml
}

/// Posts `body` to `/RPC2`: the value, or the fault's code and message.
async fn post_raw(app: &Router, body: Vec<u8>) -> Result<Value, (i32, String)> {
    let request = Request::builder()
        .method("POST")
        .uri("/RPC2")
        .header(header::CONTENT_TYPE, "text/xml")
        .body(Body::from(body))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/xml");
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let text = text.strip_prefix("<?xml version=\"1.0\"?>\n").unwrap();
    match MethodResponse::from_xml(text) {
        Ok(response) => Ok(response.value),
        Err(_) => {
            let fault = FaultResponse::from_xml(text).unwrap().fault;
            Err((fault.code(), fault.string().to_owned()))
        }
    }
}

async fn call(app: &Router, method: &str, params: &[P<'_>]) -> Result<Value, (i32, String)> {
    post_raw(app, call_xml(method, params).into_bytes()).await
}

fn member<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    match value {
        Value::Struct(members) => members.get(name),
        _ => None,
    }
}

#[tokio::test]
async fn every_method_answers_over_xml_rpc() {
    let store = seeded_store().await;
    let app = routes().with_state(app_state(store.clone()));
    let t = Ok(Value::Boolean(true));

    let queues = call(&app, "queue.list", &[]).await.unwrap();
    let Value::Array(queues) = queues else {
        panic!("queue.list: {queues:?}")
    };
    assert_eq!(queues.len(), 2);
    assert_eq!(
        member(&queues[0], "name"),
        Some(&Value::String("sales".into()))
    );
    assert_eq!(member(&queues[0], "members"), Some(&Value::Integer(2)));
    assert_eq!(
        member(&queues[0], "recording"),
        Some(&Value::String("never".into()))
    );

    assert_eq!(
        call(&app, "agent.login", &[P::S("1001"), P::S("2001")]).await,
        t
    );
    assert_eq!(
        call(&app, "agent.login", &[P::Untyped("1002"), P::S("2002")]).await,
        t
    );
    assert_eq!(
        call(&app, "agent.pause", &[P::S("1002"), P::B(true)]).await,
        t
    );
    assert_eq!(
        call(
            &app,
            "agent.setTier",
            &[P::S("1002"), P::S("sales"), P::I(3)]
        )
        .await,
        t
    );
    assert_eq!(
        call(&app, "agent.setDailyLimit", &[P::S("1001"), P::I(10)]).await,
        t
    );
    assert_eq!(
        call(&app, "agent.setDailyLimit", &[P::S("1002"), P::Nil]).await,
        t
    );
    assert_eq!(
        call(&app, "agent.recordSale", &[P::S("1001")]).await,
        Ok(Value::Integer(1))
    );
    assert_eq!(
        call(&app, "vip.add", &[P::S("+4930"), P::S("sales")]).await,
        t
    );
    assert_eq!(
        call(&app, "vip.add", &[P::S("+4930"), P::S("sales")]).await,
        Ok(Value::Boolean(false))
    );
    assert!(store.is_vip("+4930", "sales").await.unwrap());
    assert_eq!(
        call(&app, "vip.remove", &[P::S("+4930"), P::S("sales")]).await,
        t
    );
    assert!(!store.is_vip("+4930", "sales").await.unwrap());
    assert_eq!(call(&app, "call.list", &[]).await, Ok(Value::Array(vec![])));

    let stats = call(&app, "queue.stats", &[P::S("sales")]).await.unwrap();
    let want = [
        ("waiting", Value::Integer(0)),
        ("agents_available", Value::Integer(1)),
        ("agents_paused", Value::Integer(1)),
        ("serving", Value::Boolean(true)),
    ];
    for (name, value) in want {
        assert_eq!(member(&stats, name), Some(&value), "{name}");
    }

    let status = call(&app, "agent.status", &[P::S("1002")]).await.unwrap();
    assert_eq!(
        member(&status, "state"),
        Some(&Value::String("paused".into()))
    );
    assert_eq!(
        member(&status, "device"),
        Some(&Value::String("2002".into()))
    );
    assert_eq!(
        member(&status, "daily_limit"),
        None,
        "absent members are left out"
    );
    let Some(Value::Array(queues)) = member(&status, "queues") else {
        panic!("queues: {status:?}")
    };
    assert_eq!(member(&queues[0], "tier"), Some(&Value::Integer(3)));
    let status = call(&app, "agent.status", &[P::S("1001")]).await.unwrap();
    assert_eq!(member(&status, "daily_limit"), Some(&Value::Integer(10)));
    assert_eq!(member(&status, "calls_today"), Some(&Value::Integer(1)));

    assert_eq!(call(&app, "agent.logout", &[P::S("1001")]).await, t);
    let Ok(Value::Array(methods)) = call(&app, "system.listMethods", &[]).await else {
        panic!("system.listMethods")
    };
    assert_eq!(methods.len(), METHODS.len());
}

/// A method call whose parameters are the given `<value>` contents, as written.
fn raw_call(method: &str, values: &[&str]) -> Vec<u8> {
    let params: String = values
        .iter()
        .map(|v| format!("<param><value>{v}</value></param>"))
        .collect();
    format!("<?xml version=\"1.0\" encoding=\"us-ascii\"?><methodCall><methodName>{method}</methodName><params>{params}</params></methodCall>")
        .into_bytes()
}

#[tokio::test]
async fn names_may_come_as_integers_and_keep_the_text_they_were_written_with() {
    let store = seeded_store().await;
    let app = routes().with_state(app_state(store.clone()));
    // An extension as <int>, <i4>, <i8> and untyped: the same agent.
    for ext in [
        "<int>1001</int>",
        "<i4>1001</i4>",
        "<i8>1001</i8>",
        "1001",
        "<string>1001</string>",
    ] {
        let status = post_raw(&app, raw_call("agent.status", &[ext]))
            .await
            .expect(ext);
        assert_eq!(
            member(&status, "extension"),
            Some(&Value::String("1001".into())),
            "{ext}"
        );
    }
    // Login with both as integers, as Perl's RPC::XML and PHP send digit strings.
    assert_eq!(
        post_raw(
            &app,
            raw_call("agent.login", &["<int>1001</int>", "<int>2001</int>"])
        )
        .await,
        Ok(Value::Boolean(true))
    );
    // A sign and leading zeros stay: RPC::XML writes "+4930999" and "0100" as <int>.
    for (written, number) in [
        ("<int>+4930999</int>", "+4930999"),
        ("<int>0100</int>", "0100"),
        ("<i8> 12345678901 </i8>", "12345678901"),
    ] {
        assert_eq!(
            post_raw(
                &app,
                raw_call("vip.add", &[written, "<string>sales</string>"])
            )
            .await,
            Ok(Value::Boolean(true)),
            "{written}"
        );
        assert!(
            store.is_vip(number, "sales").await.expect("read"),
            "{number}"
        );
        let stripped = number.trim_start_matches(['+', '0']);
        if stripped != number {
            assert!(
                !store.is_vip(stripped, "sales").await.expect("read"),
                "{stripped}"
            );
        }
    }
    // Other parameters are as strict as before: a tier is an int, not a name.
    assert_eq!(
        post_raw(
            &app,
            raw_call(
                "agent.setTier",
                &["<int>1001</int>", "sales", "<string>2</string>"]
            )
        )
        .await,
        Err((1, "bad parameter `tier`: must be an int".to_owned()))
    );
    assert_eq!(
        post_raw(
            &app,
            raw_call(
                "agent.setTier",
                &["<int>1001</int>", "sales", "<int>2</int>"]
            )
        )
        .await,
        Ok(Value::Boolean(true))
    );
    // An integer that names nobody is an unknown agent, not a type error.
    assert_eq!(
        post_raw(&app, raw_call("agent.status", &["<int>-5</int>"])).await,
        Err((2, "unknown agent \"-5\"".to_owned()))
    );
}

#[test]
fn integer_texts_are_read_per_parameter_as_written() {
    let xml = "<?xml version=\"1.0\"?><methodCall><methodName>m</methodName><params>\
        <param><value><int>0100</int></value></param>\
        <param><value><string>7</string></value></param>\
        <param><value><array><data><value><int>5</int></value></data></array></value></param>\
        <param><value><i8>\n +12 \n</i8></value></param>\
        <param><value>untyped</value></param>\
        </params></methodCall>";
    assert_eq!(
        integer_texts(xml),
        Ok(vec![
            Some("0100".to_owned()),
            None,
            None,
            Some("+12".to_owned()),
            None
        ])
    );
    assert_eq!(
        integer_texts("<a></b>"),
        Err("body is not an XML-RPC methodCall")
    );
}

#[tokio::test]
async fn bad_parameters_are_faults_naming_the_parameter() {
    let app = routes().with_state(app_state(seeded_store().await));
    let cases: Vec<(&str, Vec<P<'_>>, i32, &str)> = vec![
        (
            "agent.status",
            vec![],
            1,
            "agent.status takes 1 parameter(s) (ext), got 0",
        ),
        (
            "agent.pause",
            vec![P::S("1001")],
            1,
            "agent.pause takes 2 parameter(s) (ext, paused), got 1",
        ),
        (
            "queue.list",
            vec![P::S("x")],
            1,
            "queue.list takes 0 parameter(s) (), got 1",
        ),
        (
            "agent.status",
            vec![P::B(true)],
            1,
            "bad parameter `ext`: must be a string or an integer",
        ),
        (
            "agent.status",
            vec![P::S("10 01")],
            1,
            "bad parameter `ext`: use 1 to 32 letters, digits, '-', '_', '.' or '+'",
        ),
        (
            "agent.pause",
            vec![P::S("1001"), P::S("yes")],
            1,
            "bad parameter `paused`: must be a boolean",
        ),
        (
            "agent.setTier",
            vec![P::S("1001"), P::S("sales"), P::S("2")],
            1,
            "bad parameter `tier`: must be an int",
        ),
        (
            "agent.setTier",
            vec![P::S("1001"), P::S("sales"), P::I(-1)],
            1,
            "bad parameter `tier`: must be between 0 and 1000",
        ),
        (
            "agent.setDailyLimit",
            vec![P::S("1001"), P::B(true)],
            1,
            "bad parameter `limit`: must be an int, or nil for no limit",
        ),
        (
            "vip.add",
            vec![P::S(""), P::S("sales")],
            1,
            "bad parameter `number`: must not be empty",
        ),
        (
            "agent.status",
            vec![P::S("9999")],
            2,
            "unknown agent \"9999\"",
        ),
        (
            "queue.stats",
            vec![P::S("nope")],
            3,
            "unknown queue \"nope\"",
        ),
        (
            "agent.login",
            vec![P::S("1001"), P::S("9999")],
            4,
            "unknown device \"9999\"",
        ),
        (
            "agent.setTier",
            vec![P::S("1003"), P::S("sales"), P::I(1)],
            7,
            "agent \"1003\" is not a member of queue \"sales\"",
        ),
        (
            "queue.delete",
            vec![],
            10,
            "unknown method \"queue.delete\"",
        ),
    ];
    for (method, params, code, message) in cases {
        assert_eq!(
            call(&app, method, &params).await,
            Err((code, message.to_owned())),
            "{method}"
        );
    }
}

#[tokio::test]
async fn malformed_requests_are_faults() {
    let app = routes().with_state(app_state(seeded_store().await));
    let too_large = call_xml("agent.status", &[P::S(&"1".repeat(MAX_BODY))]).into_bytes();
    let cases: [(&str, Vec<u8>, &str); 6] = [
        (
            "empty",
            vec![],
            "malformed request: body is not an XML-RPC methodCall",
        ),
        (
            "not xml",
            b"hello".to_vec(),
            "malformed request: body is not an XML-RPC methodCall",
        ),
        (
            "unclosed",
            b"<methodCall><methodName>queue.list".to_vec(),
            "malformed request: body is not an XML-RPC methodCall",
        ),
        (
            "not a call",
            b"<methodResponse><params></params></methodResponse>".to_vec(),
            "malformed request: body is not an XML-RPC methodCall",
        ),
        (
            "not utf-8",
            vec![0xff, 0xfe, b'<'],
            "malformed request: body is not UTF-8",
        ),
        (
            "too large",
            too_large,
            "malformed request: body larger than 64 KiB",
        ),
    ];
    for (name, body, message) in cases {
        assert_eq!(
            post_raw(&app, body).await,
            Err((FAULT_MALFORMED, message.to_owned())),
            "{name}"
        );
    }
}

#[tokio::test]
async fn database_down_is_fault_6() {
    let store = seeded_store().await;
    let app = routes().with_state(app_state(store.clone()));
    store.close().await;
    assert_eq!(
        call(&app, "queue.list", &[]).await,
        Err((6, "database unavailable".to_owned()))
    );
}

#[test]
fn results_convert_through_their_json_form() {
    let value = json_to_value(serde_json::json!({
        "a": 1, "b": null, "c": [true, null, "x"], "d": 5_000_000_000_i64, "e": 1.5
    }));
    let mut want = BTreeMap::new();
    want.insert("a".to_owned(), Value::Integer(1));
    want.insert(
        "c".to_owned(),
        Value::Array(vec![
            Value::Boolean(true),
            Value::Nil,
            Value::String("x".into()),
        ]),
    );
    want.insert("d".to_owned(), Value::Double(5e9));
    want.insert("e".to_owned(), Value::Double(1.5));
    assert_eq!(value, Value::Struct(want));
}
