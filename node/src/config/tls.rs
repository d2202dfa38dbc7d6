//! The TLS keys of `[http]` and `[sip]`: which listeners speak TLS, where, and with what.

use std::net::SocketAddr;
use std::path::Path;

use super::{Config, ConfigError};

/// Port of SIP over TLS when `sip.tls_listen` is not set (RFC 3261 §19.1.2).
pub const SIPS_PORT: u16 = 5061;

impl Config {
    /// Cert and key come in pairs; SIP over TLS cannot share the SIP port.
    pub(super) fn validate_tls(&self) -> Result<(), ConfigError> {
        pair(
            "http.tls_cert",
            self.http.tls_cert.as_deref(),
            "http.tls_key",
            self.http.tls_key.as_deref(),
        )?;
        pair(
            "sip.tls_cert",
            self.sip.tls_cert.as_deref(),
            "sip.tls_key",
            self.sip.tls_key.as_deref(),
        )?;
        if self.sip.tls_listen.is_some() && self.sip.tls_cert.is_none() {
            return Err(ConfigError::Invalid {
                key: "sip.tls_listen",
                problem: "set sip.tls_cert and sip.tls_key too".into(),
            });
        }
        if let Some(tls) = self.sip_tls_listen() {
            if tls.port() == self.sip.listen.port() && tls.ip() == self.sip.listen.ip() {
                return Err(ConfigError::Invalid {
                    key: "sip.tls_listen",
                    problem: "must differ from sip.listen (TCP there is plain SIP)".into(),
                });
            }
        }
        Ok(())
    }

    /// Whether this node serves HTTPS (`http.tls_cert` set).
    pub fn http_tls(&self) -> bool {
        self.http.tls_cert.is_some()
    }

    /// `https` or `http`: how this node's HTTP is reached.
    pub fn http_scheme(&self) -> &'static str {
        if self.http_tls() {
            "https"
        } else {
            "http"
        }
    }

    /// Where SIP over TLS listens, when it is on.
    pub fn sip_tls_listen(&self) -> Option<SocketAddr> {
        self.sip.tls_cert.as_ref()?;
        Some(
            self.sip
                .tls_listen
                .unwrap_or_else(|| SocketAddr::new(self.sip.listen.ip(), SIPS_PORT)),
        )
    }

    /// The SIP-over-TLS address written in Contact: `sip.advertise`'s address, the TLS port.
    pub fn sip_tls_advertise(&self) -> Option<SocketAddr> {
        let tls = self.sip_tls_listen()?;
        Some(SocketAddr::new(self.sip_advertise().ip(), tls.port()))
    }
}

fn pair(
    cert_key: &'static str,
    cert: Option<&Path>,
    key_key: &'static str,
    key: Option<&Path>,
) -> Result<(), ConfigError> {
    match (cert, key) {
        (Some(_), None) => Err(ConfigError::Invalid {
            key: key_key,
            problem: format!("{cert_key} is set: set {key_key} (the certificate's key) too"),
        }),
        (None, Some(_)) => Err(ConfigError::Invalid {
            key: cert_key,
            problem: format!("{key_key} is set: set {cert_key} (the certificate) too"),
        }),
        _ => Ok(()),
    }
}
