//! What changes on a node that serves HTTPS itself (`http.tls_cert`): every response says
//! `Strict-Transport-Security`, so a browser that once reached the node over HTTPS never falls
//! back to plain HTTP for its name, and every cookie the node sets is `Secure`, so a browser
//! never sends the session over plain HTTP. The same-origin checks take only `https://` as the
//! node's own origin ([`crate::auth::edge::cross_site`]).

use axum::http::{header, HeaderValue};
use axum::response::Response;

/// One year; no `includeSubDomains`: the node speaks only for its own name.
pub const HSTS: &str = "max-age=31536000";

/// Adds HSTS and makes every `Set-Cookie` `Secure` (the response layer of an HTTPS node).
pub async fn https_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static(HSTS),
    );
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(secure_cookie)
                .and_then(|s| HeaderValue::from_str(&s).ok())
                .unwrap_or_else(|| v.clone())
        })
        .collect();
    if !cookies.is_empty() {
        headers.remove(header::SET_COOKIE);
        for c in cookies {
            headers.append(header::SET_COOKIE, c);
        }
    }
    response
}

/// The `Set-Cookie` value with `; Secure` added; `None` when it already has the attribute.
pub fn secure_cookie(value: &str) -> Option<String> {
    let has = value
        .split(';')
        .skip(1)
        .any(|attr| attr.trim().eq_ignore_ascii_case("secure"));
    (!has).then(|| format!("{value}; Secure"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_get_secure_once() {
        let cases = [
            (
                "cf_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=60",
                Some("cf_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure"),
            ),
            (
                "cf_flash=; Path=/admin; Max-Age=0",
                Some("cf_flash=; Path=/admin; Max-Age=0; Secure"),
            ),
            ("a=b; Secure", None),
            ("a=b; secure; HttpOnly", None),
            // A value that merely contains the word is not the attribute.
            ("secure=1; Path=/", Some("secure=1; Path=/; Secure")),
        ];
        for (input, want) in cases {
            assert_eq!(secure_cookie(input).as_deref(), want, "{input}");
        }
    }

    #[tokio::test]
    async fn every_response_gets_hsts_and_secure_cookies() {
        let mut response = Response::new(axum::body::Body::empty());
        let h = response.headers_mut();
        h.append(header::SET_COOKIE, HeaderValue::from_static("a=1; Path=/"));
        h.append(header::SET_COOKIE, HeaderValue::from_static("b=2; Secure"));
        let response = https_headers(response).await;
        let h = response.headers();
        assert_eq!(
            h.get(header::STRICT_TRANSPORT_SECURITY)
                .map(|v| v.as_bytes()),
            Some(HSTS.as_bytes())
        );
        let cookies: Vec<&str> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(cookies, ["a=1; Path=/; Secure", "b=2; Secure"]);
    }
}
