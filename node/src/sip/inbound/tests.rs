use super::*;

#[test]
fn white_space_around_parameters_is_removed_outside_quotes_and_brackets() {
    for (value, want) in [
        (
            "\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com> ; tag = 98asjd8",
            Some("\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>;tag=98asjd8"),
        ),
        ("sip:a@b ;tag= 1", Some("sip:a@b;tag=1")),
        ("\"a ; b = c\" <sip:a@b>;tag=1", None),
        ("<sip:a@b ; x = y>;tag=1", None),
        ("J Rosenberg <sip:a@b>;tag=1", None),
        ("<sip:a@b>;\ttag\t=\t2", Some("<sip:a@b>;tag=2")),
    ] {
        assert_eq!(tidy_params(value).as_deref(), want, "{value}");
    }
}

#[test]
fn the_tidied_tag_is_found_by_the_transaction_layer() {
    let text = "INVITE sip:1@x SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\n\
                From: \"J\" <sip:a@b> ; tag = 98asjd8\r\nTo: <sip:1@x>\r\nCall-ID: c\r\n\
                CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let SipMessage::Request(mut req) = SipMessage::try_from(text.as_bytes()).expect("parses")
    else {
        panic!("a request")
    };
    assert!(TransactionKey::from_request(&req, TransactionRole::Server).is_err());
    tidy_addresses(&mut req);
    let key = TransactionKey::from_request(&req, TransactionRole::Server).expect("a key");
    assert!(key.to_string().contains("98asjd8"), "{key}");
}
