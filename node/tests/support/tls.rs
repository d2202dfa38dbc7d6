//! TLS for tests: a throwaway CA made at test time (rcgen), certificates for the nodes'
//! addresses, config keys turning HTTPS and SIP over TLS on, and curl as the HTTPS client
//! (it checks the certificate against the CA given, as a browser or a CRM would).

use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};

use super::{require, NodeProc};

/// A certificate authority that exists for one test.
pub struct TestCa {
    /// The CA certificate (PEM): what `http.ca_file`, curl and phones trust.
    pub pem: PathBuf,
    dir: PathBuf,
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    pub fn new(dir: &Path, name: &str) -> TestCa {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("callfleet test CA {name}"));
        let cert = params.self_signed(&key).expect("self-sign the CA");
        let dir = dir.join(format!("ca-{name}"));
        std::fs::create_dir_all(&dir).expect("CA dir");
        let pem = dir.join("ca.pem");
        std::fs::write(&pem, cert.pem()).expect("write the CA");
        TestCa {
            pem,
            dir,
            cert,
            key,
        }
    }

    /// A certificate for `ips` (and `localhost`) signed by this CA: (cert PEM, key PEM) files.
    pub fn issue(&self, name: &str, ips: &[&str]) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        for ip in ips {
            params
                .subject_alt_names
                .push(SanType::IpAddress(ip.parse().expect("IP")));
        }
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign the certificate");
        let (c, k) = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).expect("write the certificate");
        std::fs::write(&k, key.serialize_pem()).expect("write the key");
        (c, k)
    }
}

/// Inserts `keys` right after the `[section]` line of the node's config.
pub fn add_keys(node: &NodeProc, section: &str, keys: &str) {
    let text = std::fs::read_to_string(&node.config).expect("read the config");
    let header = format!("[{section}]\n");
    assert!(text.contains(&header), "no {header} in the config");
    let text = text.replacen(&header, &format!("{header}{keys}\n"), 1);
    std::fs::write(&node.config, text).expect("write the config");
}

/// Serves the node's HTTP over TLS with a certificate of `ca` for its address, checking other
/// nodes' certificates against `trust` (`http.ca_file`).
pub fn enable_https(node: &mut NodeProc, ca: &TestCa, trust: &Path) {
    let (cert, key) = ca.issue(&format!("{}-http", node.name), &[&node.ip, "127.0.0.1"]);
    add_keys(
        node,
        "http",
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\nca_file = \"{}\"",
            cert.display(),
            key.display(),
            trust.display()
        ),
    );
    node.https_ca = Some(ca.pem.clone());
}

/// Turns SIP over TLS on (port 5061 of the node's address) with a certificate of `ca`.
pub fn enable_sips(node: &NodeProc, ca: &TestCa) {
    let (cert, key) = ca.issue(&format!("{}-sip", node.name), &[&node.ip]);
    add_keys(
        node,
        "sip",
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"",
            cert.display(),
            key.display()
        ),
    );
}

/// What curl got.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header lines of the last response, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Runs curl (`--cacert ca` when given; else the system's roots) with `args`: the reply, or
/// curl's exit code and message (60: the certificate was not trusted).
pub fn curl(ca: Option<&Path>, args: &[&str]) -> Result<Reply, (i32, String)> {
    require("curl", "curl");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-i", "--max-time", "10"]);
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    let out = cmd.args(args).output().expect("run curl");
    if !out.status.success() {
        return Err((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Reply {
        status,
        headers,
        body: body.to_string(),
    })
}

/// Sends `message` over a SIP/TLS connection from `from_ip` to `to` (the server checked
/// against `ca`) and returns what comes back within 3 s, until a final response or the end.
pub fn sips_exchange(ca: &Path, from_ip: &str, to: std::net::SocketAddr, message: &[u8]) -> String {
    use rustls_pki_types::pem::PemObject as _;
    use std::io::{Read as _, Write as _};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca).expect("read the CA") {
        roots.add(cert.expect("CA PEM")).expect("add the CA");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::IpAddress(to.ip().into());
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("client");
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let from: std::net::SocketAddr = format!("{from_ip}:0").parse().expect("from addr");
    sock.bind(&from.into()).expect("bind the source address");
    sock.connect_timeout(&to.into(), std::time::Duration::from_secs(2))
        .expect("connect");
    let tcp: std::net::TcpStream = sock.into();
    tcp.set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(message).expect("send over TLS");
    let mut got = Vec::new();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut buf = [0u8; 4096];
    while std::time::Instant::now() < until {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(_) => {}
        }
        let text = String::from_utf8_lossy(&got);
        let finals = text
            .match_indices("SIP/2.0 ")
            .filter_map(|(i, _)| text.get(i + 8..i + 9))
            .any(|c| c != "1");
        if finals {
            break;
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}
