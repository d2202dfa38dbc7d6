use super::*;

/// RFC 2617 §3.5: the "Mufasa" example (MD5, qop=auth).
const RFC2617: &str = r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;

/// RFC 7616 §3.9.1, SHA-256 response (the MD5 one of the same exchange is checked too).
const RFC7616_SHA256: &str = r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
const RFC7616_MD5: &str = r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="8ca523f5e9506fed4657c9700eebdbec", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;

#[test]
fn rfc_vectors_verify_and_a_wrong_password_does_not() {
    for (header, password, realm) in [
        (RFC2617, "Circle Of Life", "testrealm@host.com"),
        (RFC7616_SHA256, "Circle of Life", "http-auth@example.org"),
        (RFC7616_MD5, "Circle of Life", "http-auth@example.org"),
    ] {
        let creds = Credentials::parse(header).expect("RFC example parses");
        assert_eq!(creds.username, "Mufasa");
        assert_eq!(creds.realm, realm);
        let good = ha1(creds.algorithm, "Mufasa", realm, password);
        assert!(creds.response_matches(&good, "GET"), "{header}");
        let bad = ha1(creds.algorithm, "Mufasa", realm, "circle of life");
        assert!(
            !creds.response_matches(&bad, "GET"),
            "wrong password: {header}"
        );
        assert!(
            !creds.response_matches(&good, "POST"),
            "other method: {header}"
        );
    }
}

#[test]
fn ha1_is_the_hash_of_user_realm_password() {
    for (alg, want) in [
        (Algorithm::Md5, "939e7578ed9e3c518a452acee763bce9"),
        (
            Algorithm::Sha256,
            "3ba6cd94661c5ef34598040c868f13b8775df29109986be50ad35ae537dd3aa4",
        ),
    ] {
        assert_eq!(
            ha1(alg, "Mufasa", "testrealm@host.com", "Circle Of Life"),
            want
        );
    }
}

#[test]
fn nonce_counts_are_hex() {
    for (text, want) in [
        ("00000001", Some(1)),
        ("00000009", Some(9)),
        ("0000000a", Some(10)),
        ("0000000A", Some(10)),
        ("00000010", Some(16)),
        ("ffffffff", Some(u32::MAX)),
        ("1", None),
        ("000000001", None),
        ("0000000g", None),
        ("+0000001", None),
        ("", None),
    ] {
        assert_eq!(
            NonceCount::parse(text).ok().map(|n| n.value),
            want,
            "{text:?}"
        );
    }
    // The hash covers nc as sent, so uppercase hex keeps its case.
    assert_eq!(
        NonceCount::parse("0000000A").map(|n| n.text),
        Ok("0000000A".into())
    );
}

#[test]
fn parse_errors_name_the_problem() {
    for (header, want) in [
        (
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            DigestError::NotDigest {
                scheme: "Basic".into(),
            },
        ),
        (
            r#"Digest realm="r", nonce="n", uri="sip:x", response="00""#,
            DigestError::Missing { name: "username" },
        ),
        (
            r#"Digest username="u", realm="r", nonce="n", uri="sip:x", response="0", algorithm=SHA-512-256"#,
            DigestError::UnsupportedAlgorithm {
                value: "SHA-512-256".into(),
            },
        ),
        (
            r#"Digest username="u", realm="r", nonce="n", uri="sip:x", response="0", qop=auth, nc=10, cnonce="c""#,
            DigestError::BadNonceCount { value: "10".into() },
        ),
        (
            r#"Digest username="u", realm="r, nonce="n""#,
            DigestError::Syntax { offset: 31 },
        ),
        (r#"Digest username"#, DigestError::Syntax { offset: 0 }),
    ] {
        assert_eq!(Credentials::parse(header), Err(want), "{header}");
    }
}

#[test]
fn quoted_values_keep_commas_and_escapes() {
    let creds = Credentials::parse(
        r#"digest username="a\"b", realm="x, y",nonce=abc ,uri="sip:1@h;transport=tcp",response="AB""#,
    )
    .expect("parses");
    assert_eq!(creds.username, "a\"b");
    assert_eq!(creds.realm, "x, y");
    assert_eq!(creds.nonce, "abc");
    assert_eq!(creds.uri, "sip:1@h;transport=tcp");
    assert_eq!(
        creds.algorithm,
        Algorithm::Md5,
        "absent algorithm means MD5"
    );
    assert_eq!(creds.qop, None);
}

#[test]
fn challenges_print_as_phones_expect() {
    let c = Challenge {
        realm: "callfleet",
        nonce: "abc",
        algorithm: Algorithm::Sha256,
        stale: false,
    };
    assert_eq!(
        c.to_string(),
        r#"Digest realm="callfleet", nonce="abc", algorithm=SHA-256, qop="auth""#
    );
    let stale = Challenge {
        algorithm: Algorithm::Md5,
        stale: true,
        realm: "a\"b",
        ..c
    };
    assert_eq!(
        stale.to_string(),
        r#"Digest realm="a\"b", nonce="abc", algorithm=MD5, qop="auth", stale=true"#
    );
}

#[test]
fn algorithm_names_round_trip() {
    for alg in Algorithm::ALL {
        assert_eq!(Algorithm::parse(alg.as_str()), Some(alg));
        assert_eq!(Algorithm::try_from(String::from(alg)), Ok(alg));
    }
    assert_eq!(Algorithm::parse("sha256"), Some(Algorithm::Sha256));
    assert!(Algorithm::try_from("SHA-1".to_string()).is_err());
}

#[test]
fn constant_time_eq_compares() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"ab"));
}
