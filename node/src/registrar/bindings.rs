//! RFC 3261 §10.3 steps 6–8 as a pure function: from a REGISTER's contacts and the AOR's
//! current bindings, the changes to make (or why the request fails) and the bindings after.
//! Also reads the contacts and `Expires` out of a parsed request.

use rsipstack::sip::headers::typed::Contact;
use rsipstack::sip::{Header, Request};

use super::store::Registration;

/// Expiry limits (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A binding asked for less than this (and more than 0) gets `423` with `Min-Expires`.
    pub min_expires: u32,
    /// Longer requests are cut to this.
    pub max_expires: u32,
    /// Used when neither the contact nor the request says.
    pub default_expires: u32,
}

/// The Contact header field(s) of a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// No Contact: a query for the current bindings.
    Query,
    /// `Contact: *` (with `Expires: 0`): remove every binding.
    Wildcard,
    List(Vec<ContactReq>),
}

/// One contact a REGISTER asks to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactReq {
    pub uri: String,
    /// The `expires` contact parameter, seconds.
    pub expires: Option<u64>,
}

/// What the registrar knows of one REGISTER besides its contacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The `Expires` header, seconds.
    pub expires: Option<u64>,
    pub call_id: String,
    pub cseq: i64,
    pub received: String,
    pub transport: String,
    pub user_agent: String,
    pub node: String,
}

/// Why a REGISTER fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    BadRequest {
        why: &'static str,
    },
    /// `423 Interval Too Brief`.
    IntervalTooBrief {
        min_expires: u32,
    },
    /// A binding was last written by a later request of the same Call-ID (§10.3 step 7).
    OutOfOrder {
        contact: String,
    },
}

/// One write to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Upsert(Registration),
    Remove { contact: String },
    RemoveAll,
}

/// The outcome of a REGISTER that succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// The AOR's bindings once the changes are made: what the `200 OK` lists.
    pub bindings: Vec<Registration>,
}

/// Applies §10.3 steps 6–8 to `existing` (the AOR's unexpired bindings).
pub fn plan(
    aor: &str,
    contacts: &Contacts,
    meta: &Meta,
    existing: &[Registration],
    limits: Limits,
    now_ms: i64,
) -> Result<Plan, Refusal> {
    match contacts {
        Contacts::Query => Ok(Plan {
            changes: vec![],
            bindings: existing.to_vec(),
        }),
        Contacts::Wildcard => {
            if meta.expires != Some(0) {
                return Err(Refusal::BadRequest {
                    why: "Contact: * needs Expires: 0",
                });
            }
            if let Some(b) = existing.iter().find(|b| !in_order(b, meta)) {
                return Err(Refusal::OutOfOrder {
                    contact: b.contact.clone(),
                });
            }
            Ok(Plan {
                changes: vec![Change::RemoveAll],
                bindings: vec![],
            })
        }
        Contacts::List(list) => plan_list(aor, list, meta, existing, limits, now_ms),
    }
}

fn plan_list(
    aor: &str,
    list: &[ContactReq],
    meta: &Meta,
    existing: &[Registration],
    limits: Limits,
    now_ms: i64,
) -> Result<Plan, Refusal> {
    let wanted = list
        .iter()
        .map(|c| Ok((c, expiry(c, meta, limits)?)))
        .collect::<Result<Vec<_>, Refusal>>()?;
    let mut bindings = existing.to_vec();
    let mut changes = Vec::new();
    for (c, secs) in wanted {
        let found = bindings.iter().position(|b| b.contact == c.uri);
        if let Some(i) = found {
            if !in_order(&bindings[i], meta) {
                return Err(Refusal::OutOfOrder {
                    contact: c.uri.clone(),
                });
            }
        }
        if secs == 0 {
            if let Some(i) = found {
                bindings.remove(i);
                changes.push(Change::Remove {
                    contact: c.uri.clone(),
                });
            }
            continue;
        }
        let reg = Registration {
            aor: aor.to_string(),
            contact: c.uri.clone(),
            received: meta.received.clone(),
            transport: meta.transport.clone(),
            expires_at_ms: now_ms.saturating_add(i64::from(secs) * 1000),
            user_agent: meta.user_agent.clone(),
            node: meta.node.clone(),
            call_id: meta.call_id.clone(),
            cseq: meta.cseq,
        };
        match found {
            Some(i) => bindings[i] = reg.clone(),
            None => bindings.push(reg.clone()),
        }
        changes.push(Change::Upsert(reg));
    }
    Ok(Plan { changes, bindings })
}

/// The seconds a contact is bound for: its `expires`, else the request's, else the default;
/// `423` below the minimum (0 removes), cut to the maximum.
fn expiry(c: &ContactReq, meta: &Meta, limits: Limits) -> Result<u32, Refusal> {
    let asked = c
        .expires
        .or(meta.expires)
        .unwrap_or(u64::from(limits.default_expires));
    if asked == 0 {
        return Ok(0);
    }
    if asked < u64::from(limits.min_expires) {
        return Err(Refusal::IntervalTooBrief {
            min_expires: limits.min_expires,
        });
    }
    Ok(u32::try_from(asked)
        .unwrap_or(u32::MAX)
        .min(limits.max_expires))
}

/// §10.3 step 7: a binding from the same Call-ID may only be changed by a higher CSeq.
fn in_order(existing: &Registration, meta: &Meta) -> bool {
    existing.call_id != meta.call_id || meta.cseq > existing.cseq
}

/// Reads the Contact header fields of a REGISTER.
pub fn contacts(req: &Request) -> Result<Contacts, Refusal> {
    let mut list = Vec::new();
    let mut wildcard = false;
    for h in req.headers.iter() {
        let Header::Contact(c) = h else { continue };
        let parsed = Contact::parse_header_list(c.value()).map_err(|_| Refusal::BadRequest {
            why: "unreadable Contact",
        })?;
        for contact in parsed {
            if matches!(&contact.uri.scheme, Some(rsipstack::sip::uri::Scheme::Other(s)) if s == "*")
            {
                wildcard = true;
                continue;
            }
            let expires = contact_expires(&contact)?;
            list.push(ContactReq {
                uri: contact.uri.to_string(),
                expires,
            });
        }
    }
    match (wildcard, list.is_empty()) {
        (true, true) => Ok(Contacts::Wildcard),
        (true, false) => Err(Refusal::BadRequest {
            why: "Contact: * must be the only contact",
        }),
        (false, true) => Ok(Contacts::Query),
        (false, false) => Ok(Contacts::List(list)),
    }
}

fn contact_expires(c: &Contact) -> Result<Option<u64>, Refusal> {
    c.params
        .iter()
        .find_map(|p| match p {
            rsipstack::sip::Param::Expires(e) => Some(e.value().to_string()),
            _ => None,
        })
        .map(|v| seconds(&v))
        .transpose()
}

/// The `Expires` header of a request, seconds.
pub fn expires_header(req: &Request) -> Result<Option<u64>, Refusal> {
    req.headers
        .iter()
        .find_map(|h| match h {
            Header::Expires(e) => Some(e.value().to_string()),
            _ => None,
        })
        .map(|v| seconds(&v))
        .transpose()
}

/// A delta-seconds value; larger than 2^32-1 reads as 2^32-1 (RFC 3261 §20.19).
fn seconds(v: &str) -> Result<u64, Refusal> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::BadRequest {
            why: "expires is not a number of seconds",
        });
    }
    Ok(v.parse::<u64>()
        .unwrap_or(u64::MAX)
        .min(u64::from(u32::MAX)))
}

#[cfg(test)]
mod tests;
