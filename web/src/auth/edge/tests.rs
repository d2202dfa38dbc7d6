//! Cross-site markers, forwarding headers and loopback, table by table.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}

#[test]
fn cross_site_markers() {
    let host = ("host", "127.0.0.11:8080");
    // (headers, cross-site?)
    let cases: &[(&[(&str, &str)], bool)] = &[
        // curl, a CRM, another node: no browser markers.
        (&[host], false),
        (&[], false),
        // The panel's own requests.
        (&[host, ("origin", "http://127.0.0.11:8080")], false),
        (&[host, ("origin", "HTTP://127.0.0.11:8080")], false),
        (&[host, ("sec-fetch-site", "same-origin")], false),
        (&[host, ("sec-fetch-site", "none")], false),
        (
            &[
                ("host", "node.example"),
                ("origin", "http://node.example:80"),
            ],
            false,
        ),
        (
            &[
                ("host", "node.example:443"),
                ("origin", "https://node.example"),
            ],
            false,
        ),
        // A page elsewhere.
        (&[host, ("origin", "http://evil.example")], true),
        (&[host, ("origin", "http://127.0.0.11:8081")], true),
        (&[host, ("origin", "https://127.0.0.11:8080")], false),
        (&[host, ("origin", "null")], true),
        (&[host, ("origin", "file://")], true),
        (&[("origin", "http://127.0.0.11:8080")], true),
        (&[host, ("sec-fetch-site", "cross-site")], true),
        (&[host, ("sec-fetch-site", "Same-Site")], true),
        (
            &[
                host,
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://127.0.0.11:8080"),
            ],
            true,
        ),
    ];
    for (pairs, want) in cases {
        assert_eq!(cross_site(&headers(pairs), false), *want, "{pairs:?}");
    }
}

#[test]
fn over_https_only_the_https_origin_is_the_node_s_own() {
    let host = ("host", "127.0.0.11:8443");
    // (headers, cross-site when the node serves HTTPS?)
    let cases: &[(&[(&str, &str)], bool)] = &[
        (&[host], false),
        (&[host, ("origin", "https://127.0.0.11:8443")], false),
        (&[host, ("origin", "HTTPS://127.0.0.11:8443")], false),
        (
            &[
                ("host", "node.example"),
                ("origin", "https://node.example:443"),
            ],
            false,
        ),
        // The same host and port over plain HTTP is another origin.
        (&[host, ("origin", "http://127.0.0.11:8443")], true),
        (
            &[("host", "node.example"), ("origin", "http://node.example")],
            true,
        ),
        (&[host, ("origin", "https://evil.example")], true),
        (&[host, ("sec-fetch-site", "cross-site")], true),
    ];
    for (pairs, want) in cases {
        assert_eq!(cross_site(&headers(pairs), true), *want, "{pairs:?}");
    }
}

#[test]
fn only_a_direct_loopback_request_is_the_host_s_own() {
    let lo = Some("127.0.0.1:50000".parse().expect("addr"));
    let lo6 = Some("[::1]:50000".parse().expect("addr"));
    let mapped = Some("[::ffff:127.0.0.1]:50000".parse().expect("addr"));
    let remote = Some("192.0.2.7:50000".parse().expect("addr"));
    // (peer, headers, direct loopback?)
    type Case<'a> = (Option<SocketAddr>, &'a [(&'a str, &'a str)], bool);
    let cases: &[Case] = &[
        (lo, &[("host", "127.0.0.11:8080")], true),
        (lo, &[], true),
        (lo6, &[("host", "[::1]:8080")], true),
        (mapped, &[("host", "localhost:8080")], true),
        (lo, &[("host", "LOCALHOST")], true),
        (remote, &[("host", "127.0.0.11:8080")], false),
        (None, &[("host", "127.0.0.11:8080")], false),
        // A reverse proxy on this host passing on someone else's request.
        (
            lo,
            &[
                ("host", "127.0.0.11:8080"),
                ("x-forwarded-for", "203.0.113.5"),
            ],
            false,
        ),
        (
            lo,
            &[
                ("host", "127.0.0.11:8080"),
                ("forwarded", "for=203.0.113.5"),
            ],
            false,
        ),
        (
            lo,
            &[("host", "127.0.0.11:8080"), ("x-real-ip", "203.0.113.5")],
            false,
        ),
        (
            lo,
            &[
                ("host", "127.0.0.11:8080"),
                ("x-forwarded-host", "a.example"),
            ],
            false,
        ),
        // DNS rebinding: a page's own name resolving to 127.0.0.11.
        (lo, &[("host", "evil.example:8080")], false),
        (lo, &[("host", "evil.example")], false),
        (lo, &[("host", "127.0.0.11:80x")], false),
        (lo, &[("host", "[::1]x")], false),
    ];
    for (peer, pairs, want) in cases {
        assert_eq!(
            direct_loopback(&headers(pairs), *peer),
            *want,
            "{peer:?} {pairs:?}"
        );
    }
}
