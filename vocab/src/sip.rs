//! SIP text every crate reads the same way.

/// The user part of a SIP URI or name-addr (`sip:1001@host;x` → `1001`, `"Bob" <SIPS:556@h>`
/// → `556`, `tel:+4930;phone-context=x` → `+4930`); the schemes are matched in any case. The
/// text as it is when it has no user part.
pub fn uri_user(uri: &str) -> &str {
    let inner = match (uri.find('<'), uri.rfind('>')) {
        (Some(open), Some(close)) if open < close => &uri[open + 1..close],
        _ => uri.trim(),
    };
    let rest = ["sip:", "sips:", "tel:"]
        .iter()
        .find_map(|scheme| {
            inner
                .get(..scheme.len())
                .filter(|head| head.eq_ignore_ascii_case(scheme))
                .map(|_| &inner[scheme.len()..])
        })
        .unwrap_or(inner);
    match rest.find(['@', ';', '?', '>']).unwrap_or(rest.len()) {
        0 => uri,
        end => &rest[..end],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_part_of_uris_and_name_addrs() {
        let cases = [
            ("sip:1001@10.0.0.1", "1001"),
            ("sip:1000@10.0.0.1:5060", "1000"),
            ("sips:1001@h;transport=tls", "1001"),
            ("<sip:+331234@h>", "+331234"),
            ("<SIPS:alice@host>", "alice"),
            ("tel:+331234;phone-context=x", "+331234"),
            ("\"Bob\" <sip:556@carrier>;tag=x", "556"),
            ("\"Bob\" <sip:+4930@host;user=phone>", "+4930"),
            (" sip:7@h ", "7"),
            ("sip:ü@host", "ü"),
            ("anonymous", "anonymous"),
            ("1000", "1000"),
            ("sip:@host", "sip:@host"),
            ("<>", "<>"),
            ("", ""),
        ];
        for (uri, want) in cases {
            assert_eq!(uri_user(uri), want, "{uri}");
        }
    }
}
