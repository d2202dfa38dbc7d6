//! E-mail through an SMTP relay with lettre: STARTTLS when the relay offers it (or as
//! configured: required, TLS from the start, never), rustls with the webpki roots and the CAs
//! of `alerts.email.ca_file` (a relay with a private CA). One
//! message per batch, to every recipient; the subject says what changed, the body has one
//! paragraph per alert.

use callfleet_store::Severity;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::webhook::chain;
use super::{Batch, Notice, SendError, Status};
use crate::config::{EmailSection, SmtpTls};

/// The relay and the envelope.
pub(super) struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    server: String,
    pub(super) min_severity: Severity,
    pub(super) attempts: u32,
}

impl Mailer {
    pub(super) fn new(cfg: &EmailSection) -> anyhow::Result<Self> {
        let ca = cfg.ca_file.as_deref().map(load_ca).transpose()?;
        let tls = |host: &str| {
            let mut params = TlsParameters::builder(host.to_owned());
            if let Some(ca) = &ca {
                params = params.add_root_certificate(ca.clone());
            }
            params
                .build()
                .map_err(|e| anyhow::anyhow!("set up TLS for SMTP server {host}: {e}"))
        };
        let mode = match cfg.tls {
            SmtpTls::Opportunistic => Tls::Opportunistic(tls(&cfg.server)?),
            SmtpTls::Starttls => Tls::Required(tls(&cfg.server)?),
            SmtpTls::Tls => Tls::Wrapper(tls(&cfg.server)?),
            SmtpTls::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.server)
            .port(cfg.port)
            .tls(mode)
            .timeout(Some(cfg.timeout));
        if let (Some(user), Some(password)) = (&cfg.username, &cfg.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let parse = |addr: &str| {
            addr.parse::<Mailbox>()
                .map_err(|e| anyhow::anyhow!("alert e-mail address {addr:?}: {e}"))
        };
        Ok(Self {
            transport: builder.build(),
            from: parse(&cfg.from)?,
            to: cfg.to.iter().map(|a| parse(a)).collect::<Result<_, _>>()?,
            server: format!("smtp://{}:{}", cfg.server, cfg.port),
            min_severity: cfg.min_severity,
            attempts: cfg.attempts,
        })
    }

    pub(super) fn describe(&self) -> String {
        self.server.clone()
    }

    pub(super) async fn send(&self, batch: &Batch) -> Result<(), SendError> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(subject(batch));
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message.body(body(batch)).map_err(|e| SendError {
            message: format!("build the alert e-mail: {e}"),
            retry: false,
        })?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| SendError {
                retry: !e.is_permanent(),
                message: format!("send alert e-mail through {}: {}", self.server, chain(&e)),
            })
    }
}

/// The CA certificates of `path` (PEM, one or more).
pub(super) fn load_ca(path: &std::path::Path) -> anyhow::Result<Certificate> {
    use rustls_pki_types::pem::PemObject as _;
    let pem = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("read alerts.email.ca_file {}: {e}", path.display()))?;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("alerts.email.ca_file {}: {e}", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!(
            "alerts.email.ca_file {}: no PEM certificate in it",
            path.display()
        );
    }
    Certificate::from_pem(&pem)
        .map_err(|e| anyhow::anyhow!("alerts.email.ca_file {}: {e}", path.display()))
}

/// `[callfleet] CRITICAL: node b stopped heartbeating`, `[callfleet] RESOLVED: ...`, or for
/// several alerts `[callfleet] 2 firing, 1 resolved: <the first one's message>`.
pub fn subject(batch: &Batch) -> String {
    match batch.alerts.as_slice() {
        [one] => format!("[callfleet] {}: {}", label(one), one.message),
        all => {
            let firing = all.iter().filter(|n| n.status == Status::Firing).count();
            let resolved = all.len() - firing;
            let mut counts = Vec::new();
            if firing > 0 {
                counts.push(format!("{firing} firing"));
            }
            if resolved > 0 {
                counts.push(format!("{resolved} resolved"));
            }
            let first = all.first().map_or("", |n| n.message.as_str());
            format!("[callfleet] {}: {first}", counts.join(", "))
        }
    }
}

/// One paragraph per alert: label, message, kind and subject, times (UTC).
pub fn body(batch: &Batch) -> String {
    let mut text = String::new();
    for n in &batch.alerts {
        text.push_str(&format!("{}: {}\n", label(n), n.message));
        text.push_str(&format!("  kind {}, subject {}\n", n.kind, n.subject));
        text.push_str(&format!("  since {}\n", utc(n.since_ms)));
        if let Some(ended) = n.ended_at_ms {
            text.push_str(&format!("  resolved {}\n", utc(ended)));
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "Sent by node {} at {}.\n",
        batch.sent_by,
        utc(batch.sent_at_ms)
    ));
    text
}

fn label(n: &Notice) -> String {
    match (n.status, n.change) {
        (Status::Resolved, _) => "RESOLVED".to_owned(),
        (Status::Firing, "reminder") => format!("{} (still firing)", upper(n.severity)),
        (Status::Firing, _) => upper(n.severity),
    }
}

fn upper(s: Severity) -> String {
    s.as_str().to_ascii_uppercase()
}

fn utc(ms: i64) -> String {
    jiff::Timestamp::from_second(ms.div_euclid(1000))
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{ms} ms"))
}
