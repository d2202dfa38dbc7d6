//! What a request's headers say about where it comes from: a page of another site in a
//! browser (cross-site markers), a reverse proxy on this host (forwarding headers), or a
//! program on the node's own host. Pure functions over the headers and the peer address.

use std::net::{IpAddr, SocketAddr};

use axum::http::{header, HeaderMap};

/// Headers a reverse proxy adds: a request carrying one was made by someone else, elsewhere.
const FORWARDING: [&str; 4] = [
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "x-forwarded-host",
];

/// Whether a browser says this request comes from a page of another origin:
/// `Sec-Fetch-Site: cross-site` or `same-site` (another port or subdomain), or an `Origin`
/// that is not this node's (`null` included). Programs (curl, the CRM, other nodes) send none
/// of these.
///
/// `https`: the node serves HTTPS itself, so its origin is `https://HOST` and an `http://`
/// origin is another site. A node serving plain HTTP takes either scheme (a TLS-terminating
/// proxy in front of it makes its pages' origin `https://`).
pub fn cross_site(headers: &HeaderMap, https: bool) -> bool {
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    if matches!(site.as_deref(), Some("cross-site" | "same-site")) {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    let origin = origin.trim().to_ascii_lowercase();
    let (scheme, authority) = match origin.split_once("://") {
        Some((scheme @ ("http" | "https"), authority)) => (scheme, authority),
        _ => return true,
    };
    if https && scheme != "https" {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = host.trim().to_ascii_lowercase();
    without_default_port(scheme, authority) != without_default_port(scheme, &host)
}

fn without_default_port<'a>(scheme: &str, authority: &'a str) -> &'a str {
    let default = if scheme == "https" { ":443" } else { ":80" };
    authority.strip_suffix(default).unwrap_or(authority)
}

/// Whether a reverse proxy forwarded this request (`X-Forwarded-For`, `Forwarded`,
/// `X-Real-IP`, `X-Forwarded-Host`).
pub fn forwarded(headers: &HeaderMap) -> bool {
    FORWARDING.iter().any(|h| headers.contains_key(*h))
}

/// Whether the `Host` header names an address (or `localhost`), not a domain name. A page
/// that made its own domain resolve to a loopback address (DNS rebinding) sends its domain
/// name. No `Host` at all (HTTP/1.0) counts as an address.
pub fn host_is_address(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        match rest.split_once(']') {
            Some((v6, port)) if port.is_empty() || valid_port(port) => v6,
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if valid_port(&format!(":{port}")) => name,
            Some(_) => return false,
            None => host,
        }
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok()
}

/// `:PORT` with 1 to 5 digits.
fn valid_port(s: &str) -> bool {
    s.strip_prefix(':')
        .is_some_and(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether this request comes straight from a program on the node's own host: a loopback
/// peer, not forwarded by a proxy, addressed to an address rather than a domain name.
pub fn direct_loopback(headers: &HeaderMap, peer: Option<SocketAddr>) -> bool {
    peer.is_some_and(|addr| addr.ip().to_canonical().is_loopback())
        && !forwarded(headers)
        && host_is_address(headers)
}

#[cfg(test)]
mod tests;
