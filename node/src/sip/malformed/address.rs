//! The shape of address headers (From, To, Contact) and Via in a request's head, checked on
//! the bytes before parsing, where the parser would forgive or misread: a quoted display name
//! that never ends, a display name that is neither tokens nor a quoted string (`Bell, Alexander
//! <sip:...>`), white space inside `<...>`, an addr-spec URI with a header part (`?Route=`),
//! empty parameters (`;;`) and stray commas. RFC 3261 §20.10, §20.20, §20.39, §20.42, §25.1.

/// What is wrong with one header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressDefect {
    UnterminatedQuote,
    BadDisplayName,
    SpaceInUri,
    UnclosedAngle,
    EmptyUri,
    HeadersInAddrSpec,
    EmptyParameter,
    StrayComma,
}

/// Which kind of header a value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// From and To: one address.
    Single,
    /// Contact: `*` or a comma-separated list of addresses.
    Contact,
    /// Via: a comma-separated list of `SIP/2.0/T sent-by *(;param)`.
    Via,
}

/// The kind of header `name` is, if it is checked here.
pub fn kind(name: &str) -> Option<Kind> {
    let is = |long: &str, short: &str| {
        name.eq_ignore_ascii_case(long) || name.eq_ignore_ascii_case(short)
    };
    if is("From", "f") || is("To", "t") {
        Some(Kind::Single)
    } else if is("Contact", "m") {
        Some(Kind::Contact)
    } else if is("Via", "v") {
        Some(Kind::Via)
    } else {
        None
    }
}

/// Checks one (unfolded) header value of `kind`.
pub fn check(kind: Kind, value: &str) -> Result<(), AddressDefect> {
    let value = value.trim_matches([' ', '\t']);
    match kind {
        Kind::Single => address(value),
        Kind::Contact if value == "*" => Ok(()),
        Kind::Contact => split_outside(value, ',')?
            .into_iter()
            .try_for_each(|v| address(v.trim_matches([' ', '\t']))),
        Kind::Via => split_outside(value, ',')?.into_iter().try_for_each(via),
    }
}

/// Splits at `sep` outside quoted strings and `<...>`; an empty piece is a stray separator.
fn split_outside(value: &str, sep: char) -> Result<Vec<&str>, AddressDefect> {
    let mut pieces = Vec::new();
    let (mut quoted, mut escaped, mut angle, mut from) = (false, false, false, 0);
    for (i, c) in value.char_indices() {
        if quoted {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '<' => angle = true,
            '>' => angle = false,
            c if c == sep && !angle => {
                pieces.push(&value[from..i]);
                from = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if quoted {
        return Err(AddressDefect::UnterminatedQuote);
    }
    pieces.push(&value[from..]);
    if pieces
        .iter()
        .any(|p| p.trim_matches([' ', '\t']).is_empty())
    {
        return Err(AddressDefect::StrayComma);
    }
    Ok(pieces)
}

/// `name-addr / addr-spec` followed by parameters.
fn address(value: &str) -> Result<(), AddressDefect> {
    // A display name or `<` comes first in a name-addr; a `"` after the URI of an addr-spec
    // opens a parameter's quoted value.
    let rest = match value.find(['<', '"']) {
        Some(0) => name_addr(value)?,
        Some(i) if value[i..].starts_with('<') => name_addr(value)?,
        _ => addr_spec(value)?,
    };
    params(rest)
}

/// `[display-name] <URI>`; what follows the `>`.
fn name_addr(value: &str) -> Result<&str, AddressDefect> {
    let mut rest = value.trim_start_matches([' ', '\t']);
    if rest.starts_with('"') {
        rest = after_quoted(rest)?;
    } else {
        let open = rest.find('<').ok_or(AddressDefect::BadDisplayName)?;
        let name = &rest[..open];
        // Tokens separated by white space; UTF-8 letters are taken (phones send them
        // unquoted), ASCII separators are not.
        if !name
            .chars()
            .all(|c| !c.is_ascii() || c == ' ' || c == '\t' || super::raw::is_token(c as u8))
        {
            return Err(AddressDefect::BadDisplayName);
        }
        rest = &rest[open..];
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    let inner = rest
        .strip_prefix('<')
        .ok_or(AddressDefect::BadDisplayName)?;
    let close = inner.find('>').ok_or(AddressDefect::UnclosedAngle)?;
    let uri = &inner[..close];
    if uri.is_empty() {
        return Err(AddressDefect::EmptyUri);
    }
    if uri.contains([' ', '\t']) {
        return Err(AddressDefect::SpaceInUri);
    }
    Ok(&inner[close + 1..])
}

/// The rest of a value after a quoted string at its start.
fn after_quoted(value: &str) -> Result<&str, AddressDefect> {
    let mut escaped = false;
    for (i, c) in value.char_indices().skip(1) {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => return Ok(&value[i + 1..]),
            _ => {}
        }
    }
    Err(AddressDefect::UnterminatedQuote)
}

/// A bare URI: its parameters (after the first `;`) belong to the header, and it may carry
/// no header part (`?`), white space or comma (RFC 3261 §20.10).
fn addr_spec(value: &str) -> Result<&str, AddressDefect> {
    let end = value.find(';').unwrap_or(value.len());
    let uri = value[..end].trim_matches([' ', '\t']);
    if uri.is_empty() {
        return Err(AddressDefect::EmptyUri);
    }
    if uri.contains([' ', '\t']) {
        return Err(AddressDefect::SpaceInUri);
    }
    if uri.contains('?') {
        return Err(AddressDefect::HeadersInAddrSpec);
    }
    Ok(&value[end..])
}

/// `*(;name[=value])`: nothing before the first `;`, no empty parameter, no comma.
fn params(rest: &str) -> Result<(), AddressDefect> {
    let pieces = split_params(rest)?;
    let mut it = pieces.into_iter();
    if it
        .next()
        .is_some_and(|lead| !lead.trim_matches([' ', '\t']).is_empty())
    {
        return Err(AddressDefect::EmptyParameter);
    }
    for p in it {
        let name = p.split('=').next().unwrap_or("").trim_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(super::raw::is_token) {
            return Err(AddressDefect::EmptyParameter);
        }
    }
    Ok(())
}

/// Splits parameters at `;` outside quoted strings; a comma outside them is refused.
fn split_params(rest: &str) -> Result<Vec<&str>, AddressDefect> {
    let mut pieces = Vec::new();
    let (mut quoted, mut escaped, mut from) = (false, false, 0);
    for (i, c) in rest.char_indices() {
        if quoted {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => return Err(AddressDefect::StrayComma),
            ';' => {
                pieces.push(&rest[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err(AddressDefect::UnterminatedQuote);
    }
    pieces.push(&rest[from..]);
    Ok(pieces)
}

/// `SIP/2.0/TRANSPORT sent-by *(;param)`.
fn via(value: &str) -> Result<(), AddressDefect> {
    let value = value.trim_matches([' ', '\t']);
    let end = value.find(';').unwrap_or(value.len());
    if value[..end].trim().is_empty() {
        return Err(AddressDefect::EmptyUri);
    }
    params(&value[end..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use AddressDefect::*;

    #[test]
    fn addresses() {
        let cases: &[(Kind, &str, Result<(), AddressDefect>)] = &[
            (Kind::Single, "<sip:a@b>;tag=1", Ok(())),
            (Kind::Single, "sip:a@b;tag=1", Ok(())),
            (Kind::Single, "\"A \\\"B\\\\\" <sip:a@b> ; tag = 1", Ok(())),
            (Kind::Single, "John Smith <sip:a@b>", Ok(())),
            (Kind::Single, "caller<sip:a@b>;tag=x", Ok(())),
            (Kind::Single, "José <sip:a@b>", Ok(())),
            (Kind::Single, "<sip:+1@b;user=phone>", Ok(())),
            (Kind::Single, "<isbn:2983792873>", Ok(())),
            (Kind::Single, "isbn:2983792873", Ok(())),
            (
                Kind::Single,
                "\"Unterminated <sip:a@b>;tag=1",
                Err(UnterminatedQuote),
            ),
            (
                Kind::Single,
                "Bell, Alexander <sip:a@b>;tag=1",
                Err(BadDisplayName),
            ),
            (Kind::Single, "\"W, T\" < sip:a@b >", Err(SpaceInUri)),
            (Kind::Single, "<sip:a@b>;;,,;,", Err(StrayComma)),
            (Kind::Single, "<sip:a@b>;;tag=1", Err(EmptyParameter)),
            (Kind::Single, "<sip:a@b>;tag=1;", Err(EmptyParameter)),
            (Kind::Single, "<sip:a@b", Err(UnclosedAngle)),
            (Kind::Single, "<>", Err(EmptyUri)),
            (Kind::Single, "<sip:a@b> junk", Err(EmptyParameter)),
            (Kind::Contact, "*", Ok(())),
            (
                Kind::Contact,
                "<sip:a@b>;expires=60, <sip:c@d>;q=0.5",
                Ok(()),
            ),
            (
                Kind::Contact,
                "<sip:a@b>;+sip.instance=\"<urn:uuid:1;x,y>\";reg-id=1",
                Ok(()),
            ),
            (Kind::Contact, "sip:a@b;unknownparam", Ok(())),
            (Kind::Contact, "<sip:a@b?Route=%3Csip:c%3E>", Ok(())),
            (
                Kind::Contact,
                "sip:a@b?Route=%3Csip:c%3E",
                Err(HeadersInAddrSpec),
            ),
            (Kind::Contact, "<sip:a@b>,,<sip:c@d>", Err(StrayComma)),
            (
                Kind::Via,
                "SIP/2.0/UDP h:5060;branch=z9hG4bK1;rport",
                Ok(()),
            ),
            (
                Kind::Via,
                "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1",
                Ok(()),
            ),
            (
                Kind::Via,
                "SIP/2.0/UDP a;branch=1, SIP/2.0/TCP b;branch=2",
                Ok(()),
            ),
            (
                Kind::Via,
                "SIP/2.0/UDP a;;,;,,branch=z9hG4bK1",
                Err(StrayComma),
            ),
            (
                Kind::Via,
                "SIP/2.0/UDP a;;branch=z9hG4bK1",
                Err(EmptyParameter),
            ),
            (Kind::Via, "SIP/2.0/UDP a, ", Err(StrayComma)),
        ];
        for (kind, value, want) in cases {
            assert_eq!(check(*kind, value), *want, "{kind:?} {value}");
        }
    }
}
