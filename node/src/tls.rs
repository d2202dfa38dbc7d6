//! TLS for the node: HTTPS on `http.listen` ([`http`]), SIP over TLS on `sip.tls_listen`
//! (`crate::sip::tls`), and the HTTP clients that reach other nodes (and the CLI's own node) over HTTPS,
//! checking their certificates against `http.ca_file` ([`client`]). rustls with ring; keys and
//! certificates are PEM files read at start (a new certificate needs a restart).

pub mod http;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;

/// The first byte of a TLS connection: a handshake record (RFC 8446 §5.1).
pub const HANDSHAKE_RECORD: u8 = 0x16;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key}: cannot read {path}: {source}")]
    Read {
        key: &'static str,
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("{key}: {path} holds no PEM certificate")]
    NoCertificate { key: &'static str, path: PathBuf },
    #[error("{key}: {path} and its certificate do not make a usable key pair: {source}")]
    Pair {
        key: &'static str,
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("{key}: {path}: {source}")]
    Ca {
        key: &'static str,
        path: PathBuf,
        source: reqwest::Error,
    },
    #[error("cannot build an HTTPS client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Where a certificate and its key are configured (for error messages).
pub struct KeyPair<'a> {
    pub cert_key: &'static str,
    pub cert: &'a Path,
    pub key_key: &'static str,
    pub key: &'a Path,
}

/// A server config for `pair`, offering the ALPN protocols `alpn` (none: no ALPN).
pub fn server_config(pair: &KeyPair<'_>, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
    let read_err = |key, path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Read { key, path, source }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(pair.cert)
        .map_err(read_err(pair.cert_key, pair.cert))?
        .collect::<Result<_, _>>()
        .map_err(read_err(pair.cert_key, pair.cert))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            key: pair.cert_key,
            path: pair.cert.to_path_buf(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(pair.key).map_err(read_err(pair.key_key, pair.key))?;
    let pair_err = |source| TlsError::Pair {
        key: pair.key_key,
        path: pair.key.to_path_buf(),
        source,
    };
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(pair_err)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(pair_err)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// An HTTP client for this cluster's nodes: `https://` URLs are checked against
/// `http.ca_file` alone when it is set, else against the Mozilla roots. Never accepts an
/// invalid certificate.
pub fn client(cfg: &Config, timeout: Duration) -> Result<reqwest::Client, TlsError> {
    let mut builder = reqwest::Client::builder().timeout(timeout);
    if let Some(path) = &cfg.http.ca_file {
        let ca_err = |source| TlsError::Ca {
            key: "http.ca_file",
            path: path.clone(),
            source,
        };
        let pem = std::fs::read(path).map_err(|e| TlsError::Read {
            key: "http.ca_file",
            path: path.clone(),
            source: rustls_pki_types::pem::Error::Io(e),
        })?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(ca_err)?;
        if roots.is_empty() {
            return Err(TlsError::NoCertificate {
                key: "http.ca_file",
                path: path.clone(),
            });
        }
        builder = builder.tls_built_in_root_certs(false);
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
    }
    builder.build().map_err(TlsError::Client)
}

/// What `callfleet doctor` says about the configured certificates, keys and CA file: one
/// (ok, line) each.
pub fn checks(cfg: &Config) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let pairs = [
        (
            "HTTPS",
            "http.tls_cert",
            &cfg.http.tls_cert,
            "http.tls_key",
            &cfg.http.tls_key,
        ),
        (
            "SIP TLS",
            "sip.tls_cert",
            &cfg.sip.tls_cert,
            "sip.tls_key",
            &cfg.sip.tls_key,
        ),
    ];
    for (what, cert_key, cert, key_key, key) in pairs {
        let (Some(cert), Some(key)) = (cert, key) else {
            continue;
        };
        let pair = KeyPair {
            cert_key,
            cert,
            key_key,
            key,
        };
        out.push(match server_config(&pair, &[]) {
            Ok(_) => (
                true,
                format!("{what} certificate {} and key load", cert.display()),
            ),
            Err(e) => (false, e.to_string()),
        });
    }
    if let Some(ca) = &cfg.http.ca_file {
        out.push(match client(cfg, Duration::from_secs(1)) {
            Ok(_) => (true, format!("CA file {} loads", ca.display())),
            Err(e) => (false, e.to_string()),
        });
    }
    out
}

/// The URL of `path` on a node's HTTP at `addr`, over HTTPS when `https`.
pub fn node_url(https: bool, addr: std::net::SocketAddr, path: &str) -> String {
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{addr}{path}")
}

/// The heartbeat's `services` word of a node that serves HTTPS.
pub const HTTPS_SERVICE: &str = "https";

/// The `services` a node publishes in its heartbeat.
pub fn services(cfg: &Config) -> String {
    let mut s = String::from("sip,media,lb,web");
    if cfg.http_tls() {
        s.push(',');
        s.push_str(HTTPS_SERVICE);
    }
    if cfg.sip_tls_listen().is_some() {
        s.push_str(",sips");
    }
    s
}

/// Whether a heartbeat's `services` say the node serves HTTPS.
pub fn serves_https(services: &str) -> bool {
    services.split(',').any(|s| s.trim() == HTTPS_SERVICE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_read_from_the_services_word_list() {
        let cases = [
            ("sip,media,lb,web", false),
            ("sip,media,lb,web,https", true),
            ("sip,media,lb,web,https,sips", true),
            ("https", true),
            ("sip, https ", true),
            ("httpsx,sips", false),
            ("", false),
        ];
        for (services, want) in cases {
            assert_eq!(serves_https(services), want, "{services:?}");
        }
    }

    #[test]
    fn urls_take_the_scheme() {
        let addr = "127.0.0.11:8443".parse().expect("addr");
        assert_eq!(
            node_url(true, addr, "/healthz"),
            "https://127.0.0.11:8443/healthz"
        );
        assert_eq!(
            node_url(false, addr, "/healthz"),
            "http://127.0.0.11:8443/healthz"
        );
    }
}
