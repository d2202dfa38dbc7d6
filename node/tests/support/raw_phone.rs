//! A phone made of raw SIP over UDP, for tests that attack the node with credentials of their
//! own (or none): it registers with digest credentials and places calls that answer the node's
//! `407` challenge, all from one socket, so the node knows it by the address it registered from.

use std::net::SocketAddr;
use std::time::Duration;

use callfleet::registrar::digest::{ha1, Algorithm};

use super::uac::{Resp, Uac};

pub struct RawPhone {
    pub uac: Uac,
    pub user: String,
    pub password: String,
    /// The digest `response` values this phone sent, oldest first.
    pub responses: Vec<String>,
    cseq: u32,
    nc: u32,
}

/// The `nonce` and `algorithm` of the first challenge in header `name` of `resp`.
pub fn challenge(resp: &Resp, name: &str) -> Option<(String, Algorithm)> {
    let value = resp.header(name)?;
    let nonce = value
        .split("nonce=\"")
        .nth(1)?
        .split('"')
        .next()?
        .to_string();
    let alg = value
        .split("algorithm=")
        .nth(1)
        .map(|a| a.split([',', ' ']).next().unwrap_or("MD5"))
        .and_then(Algorithm::parse)
        .unwrap_or(Algorithm::Md5);
    Some((nonce, alg))
}

impl RawPhone {
    pub fn new(ip: &str, node: SocketAddr, user: &str, password: &str) -> RawPhone {
        RawPhone {
            uac: Uac::new(ip, node),
            user: user.into(),
            password: password.into(),
            responses: vec![],
            cseq: 0,
            nc: 0,
        }
    }

    /// A digest credentials line (`header: Digest ...\r\n`) for `method` on `uri`.
    pub fn credentials(
        &mut self,
        header: &str,
        method: &str,
        uri: &str,
        nonce: &str,
        alg: Algorithm,
    ) -> String {
        self.nc += 1;
        let h1 = ha1(alg, &self.user, "callfleet", &self.password);
        let h2 = alg.hash(&format!("{method}:{uri}"));
        let nc = format!("{:08x}", self.nc);
        let response = alg.hash(&format!("{h1}:{nonce}:{nc}:0a1b2c:auth:{h2}"));
        self.responses.push(response.clone());
        format!(
            "{header}: Digest username=\"{}\", realm=\"callfleet\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{response}\", algorithm={alg}, qop=auth, nc={nc}, cnonce=\"0a1b2c\"\r\n",
            self.user
        )
    }

    fn register_once(&mut self, auth: &str) -> Option<Resp> {
        self.cseq += 1;
        let (t, l) = (self.uac.target, self.uac.local);
        self.uac.send(&format!(
            "REGISTER sip:{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-r{u}-{c};rport\r\nMax-Forwards: 70\r\n\
             From: <sip:{u}@{t}>;tag=reg{u}\r\nTo: <sip:{u}@{t}>\r\nCall-ID: reg-{u}@{l}\r\nCSeq: {c} REGISTER\r\n\
             Contact: <sip:{u}@{l}>\r\nExpires: 300\r\n{auth}Content-Length: 0\r\n\r\n",
            u = self.user,
            c = self.cseq
        ));
        self.uac.recv_final(Duration::from_secs(3))
    }

    /// REGISTERs, answering a `401` once; the final response (`None`: no answer in 3 s).
    pub fn register(&mut self) -> Option<Resp> {
        let first = self.register_once("")?;
        let Some((nonce, alg)) = challenge(&first, "WWW-Authenticate") else {
            return Some(first);
        };
        let uri = format!("sip:{}", self.uac.target);
        let auth = self.credentials("Authorization", "REGISTER", &uri, &nonce, alg);
        self.register_once(&auth)
    }

    /// Sends a REGISTER without credentials and returns the challenge it gets.
    pub fn register_challenge(&mut self) -> Option<(String, Algorithm)> {
        let first = self.register_once("")?;
        challenge(&first, "WWW-Authenticate")
    }

    /// Sends a REGISTER with credentials on `challenge` without waiting for the answer.
    pub fn register_with(&mut self, challenge: &(String, Algorithm)) {
        let uri = format!("sip:{}", self.uac.target);
        let auth = self.credentials("Authorization", "REGISTER", &uri, &challenge.0, challenge.1);
        self.cseq += 1;
        let (t, l) = (self.uac.target, self.uac.local);
        self.uac.send(&format!(
            "REGISTER sip:{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-r{u}-{c};rport\r\nMax-Forwards: 70\r\n\
             From: <sip:{u}@{t}>;tag=reg{u}\r\nTo: <sip:{u}@{t}>\r\nCall-ID: reg-{u}@{l}\r\nCSeq: {c} REGISTER\r\n\
             Contact: <sip:{u}@{l}>\r\nExpires: 300\r\n{auth}Content-Length: 0\r\n\r\n",
            u = self.user,
            c = self.cseq
        ));
    }

    /// Sends one INVITE to `dialled` with `From: <sip:{from}@..>` and the extra header lines
    /// `auth`; returns its CSeq and the final response (provisional ones skipped).
    fn invite_once(
        &mut self,
        dialled: &str,
        from: &str,
        call_id: &str,
        auth: &str,
    ) -> (u32, Option<Resp>) {
        self.cseq += 1;
        let body = self.uac.sdp("");
        let (t, l) = (self.uac.target, self.uac.local);
        self.uac.send(&format!(
            "INVITE sip:{dialled}@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-i{call_id}-{c};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{from}@{t}>;tag=f{call_id}\r\nTo: <sip:{dialled}@{t}>\r\n\
             Call-ID: {call_id}\r\nCSeq: {c} INVITE\r\nContact: <sip:{u}@{l}>\r\n{auth}\
             Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{body}",
            u = self.user,
            c = self.cseq,
            len = body.len()
        ));
        (self.cseq, self.uac.recv_final(Duration::from_secs(5)))
    }

    /// ACKs a non-2xx final response to the INVITE with CSeq `cseq` (same branch, RFC 3261
    /// §17.1.1.3).
    fn ack_failure(&self, call_id: &str, from: &str, resp: &Resp, cseq: u32) {
        let (t, l) = (self.uac.target, self.uac.local);
        let to = resp.header("To").unwrap_or_default();
        self.uac.send(&format!(
            "ACK sip:{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-i{call_id}-{cseq};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{from}@{t}>;tag=f{call_id}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n"
        ));
    }

    /// Calls `dialled` claiming to be `from` in the From header. With `answer_407`, a `407`
    /// challenge is answered once with this phone's credentials. Every final response is
    /// ACKed; returns the responses to the INVITEs sent (one or two), the last one final.
    pub fn call(
        &mut self,
        dialled: &str,
        from: &str,
        call_id: &str,
        answer_407: bool,
    ) -> Vec<Resp> {
        let mut out = vec![];
        let (cseq, first) = self.invite_once(dialled, from, call_id, "");
        let Some(first) = first else { return out };
        out.push(first.clone());
        if first.status == 200 {
            self.ack_ok(call_id, from, &first, cseq);
            return out;
        }
        self.ack_failure(call_id, from, &first, cseq);
        let Some((nonce, alg)) = challenge(&first, "Proxy-Authenticate") else {
            return out;
        };
        if first.status != 407 || !answer_407 {
            return out;
        }
        let uri = format!("sip:{dialled}@{}", self.uac.target);
        let auth = self.credentials("Proxy-Authorization", "INVITE", &uri, &nonce, alg);
        let (cseq, second) = self.invite_once(dialled, from, call_id, &auth);
        let Some(second) = second else { return out };
        if second.status == 200 {
            self.ack_ok(call_id, from, &second, cseq);
        } else {
            self.ack_failure(call_id, from, &second, cseq);
        }
        out.push(second);
        out
    }

    fn ack_ok(&self, call_id: &str, from: &str, ok: &Resp, cseq: u32) {
        let (t, l) = (self.uac.target, self.uac.local);
        let to = ok.header("To").unwrap_or_default();
        self.uac.send(&format!(
            "ACK sip:callfleet@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-a{call_id}-{cseq};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{from}@{t}>;tag=f{call_id}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n"
        ));
    }

    /// Waits for the node's BYE (after its prompt) and answers it.
    pub fn bye_from_node(&self, limit: Duration) -> Option<String> {
        self.uac.answer_request("BYE", limit)
    }
}
