//! Number data: a NANP area code's US state and time zone (`nanp.tsv`), and an E.164
//! number's country (`e164.tsv`). Both files name their source and date in their header;
//! they are parsed once, on first use.

use std::collections::HashMap;
use std::sync::LazyLock;

/// Where a US area code's subscribers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsArea {
    /// Two-letter postal code of the state (or DC, or a territory): `NY`.
    pub state: &'static str,
    /// IANA time zone: `America/New_York`.
    pub zone: &'static str,
}

static NANP: LazyLock<HashMap<[u8; 3], UsArea>> = LazyLock::new(|| {
    rows(include_str!("nanp.tsv"))
        .filter_map(|cols| match cols[..] {
            [npa, state, zone] => Some((
                <[u8; 3]>::try_from(npa.as_bytes()).ok()?,
                UsArea { state, zone },
            )),
            _ => None,
        })
        .collect()
});

static E164: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| {
    rows(include_str!("e164.tsv"))
        .filter_map(|cols| match cols[..] {
            [code, name] => Some((code, name)),
            _ => None,
        })
        .collect()
});

/// The tab-separated fields of each line that is not a comment.
fn rows(text: &'static str) -> impl Iterator<Item = Vec<&'static str>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').collect())
}

/// The US state and time zone of a NANP area code (`*b"212"`), if it is a US geographic one.
pub fn us_area(npa: [u8; 3]) -> Option<UsArea> {
    NANP.get(&npa).copied()
}

/// Every US state (or territory) code the area-code table knows, sorted.
pub fn us_states() -> Vec<&'static str> {
    let mut s: Vec<_> = NANP.values().map(|a| a.state).collect();
    s.sort_unstable();
    s.dedup();
    s
}

/// The area codes of the table (for the synthetic history).
pub fn us_area_codes() -> Vec<[u8; 3]> {
    let mut v: Vec<_> = NANP.keys().copied().collect();
    v.sort_unstable();
    v
}

/// The country (or countries) an E.164 number (`+33123456789`) belongs to, by its country
/// calling code; a `+1` number of a US area code is `United States`.
pub fn country(e164: &str) -> Option<&'static str> {
    let digits = e164.strip_prefix('+')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !(4..=15).contains(&digits.len()) {
        return None;
    }
    if let Some(rest) = digits.strip_prefix('1') {
        let npa = <[u8; 3]>::try_from(rest.get(..3)?.as_bytes()).ok()?;
        if us_area(npa).is_some() {
            return Some("United States");
        }
    }
    (1..=3).find_map(|n| E164.get(digits.get(..n)?).copied())
}

/// The number of a caller as the reports keep it (the part of `From` before `@`):
/// `sip:+15551234567` → `+15551234567`.
pub fn caller_number(caller: &str) -> &str {
    ["sip:", "sips:", "tel:"]
        .iter()
        .find_map(|p| caller.strip_prefix(p))
        .unwrap_or(caller)
}

/// The forms a typed number may have in `From` (`sip:`, `sips:` and `tel:` URIs), once
/// spaces, dots, dashes and brackets are removed; `None` unless it is `+` and digits, or
/// digits only.
pub fn caller_forms(typed: &str) -> Option<Vec<String>> {
    let n: String = typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
        .collect();
    let digits = n.strip_prefix('+').unwrap_or(&n);
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        ["sip:", "sips:", "tel:"]
            .iter()
            .map(|p| format!("{p}{n}"))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_area_codes() {
        let table = [
            (*b"212", Some(("NY", "America/New_York"))),
            (*b"213", Some(("CA", "America/Los_Angeles"))),
            (*b"312", Some(("IL", "America/Chicago"))),
            (*b"305", Some(("FL", "America/New_York"))),
            (*b"850", Some(("FL", "America/Chicago"))),
            (*b"602", Some(("AZ", "America/Phoenix"))),
            (*b"907", Some(("AK", "America/Anchorage"))),
            (*b"808", Some(("HI", "Pacific/Honolulu"))),
            (*b"915", Some(("TX", "America/Denver"))),
            (*b"202", Some(("DC", "America/New_York"))),
            (*b"787", Some(("PR", "America/Puerto_Rico"))),
            // Overlays of 559 (2025) and 707 (2023).
            (*b"357", Some(("CA", "America/Los_Angeles"))),
            (*b"369", Some(("CA", "America/Los_Angeles"))),
            (*b"416", None), // Toronto
            (*b"800", None), // toll-free
            (*b"555", None),
        ];
        for (npa, want) in table {
            let got = us_area(npa).map(|a| (a.state, a.zone));
            assert_eq!(got, want, "{}", String::from_utf8_lossy(&npa));
        }
    }

    #[test]
    fn every_zone_is_known_and_every_state_is_there() {
        for npa in us_area_codes() {
            let a = us_area(npa).expect("listed");
            assert!(jiff::tz::TimeZone::get(a.zone).is_ok(), "{}", a.zone);
        }
        // 50 states, DC and 5 territories.
        assert_eq!(us_states().len(), 56, "{:?}", us_states());
    }

    #[test]
    fn countries_of_known_numbers() {
        let table = [
            ("+12125550101", Some("United States")),
            (
                "+14165550101",
                Some("United States, Canada and the Caribbean"),
            ),
            ("+33123456789", Some("France")),
            ("+442079460000", Some("United Kingdom")),
            ("+353123456", Some("Ireland")),
            ("+74951234567", Some("Russia / Kazakhstan")),
            ("+861012345678", Some("China")),
            ("+97142345678", Some("United Arab Emirates")),
            ("+5511912345678", Some("Brazil")),
            ("+2348012345678", Some("Nigeria")),
            ("+8001234567", Some("International Freephone")),
            ("+2812345678", None), // 28x is not assigned
            ("33123456789", None),
            ("+33abc", None),
            ("+", None),
        ];
        for (n, want) in table {
            assert_eq!(country(n), want, "{n}");
        }
    }

    #[test]
    fn country_codes_are_prefix_free() {
        let codes: Vec<_> = E164.keys().collect();
        assert!(codes.len() > 200);
        for a in &codes {
            for b in &codes {
                assert!(a == b || !b.starts_with(**a), "{a} is a prefix of {b}");
            }
        }
    }

    #[test]
    fn caller_numbers_and_forms() {
        assert_eq!(caller_number("sip:+15551234567"), "+15551234567");
        assert_eq!(caller_number("tel:+15551234567"), "+15551234567");
        assert_eq!(caller_number("anonymous"), "anonymous");
        let forms = caller_forms(" +1 (212) 555-0101 ").expect("a number");
        assert_eq!(forms[0], "sip:+12125550101");
        assert_eq!(forms.len(), 3);
        assert!(caller_forms("12a").is_none());
        assert!(caller_forms("'; DROP TABLE cdrs").is_none());
        assert!(caller_forms("+").is_none());
    }
}
