//! Where and how the binary logs: to stderr, as text (colour only on a terminal) or as one JSON
//! object per line for log shippers; `RUST_LOG` sets the filter.

use std::ffi::OsStr;
use std::io::IsTerminal as _;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub mod flood;

/// The environment variable that picks the log format when `--log-format` is not given
/// (containers, systemd units).
pub const LOG_FORMAT_ENV: &str = "CALLFLEET_LOG_FORMAT";

/// The filter used when `RUST_LOG` is not set. rsipstack's stream module warns "Connection
/// already closed" each time a TCP connection we read ourselves ends (its own reader, started
/// when the connection is listed for ringing, finds the read half taken: `sip::stream`):
/// errors only from there.
const DEFAULT_FILTER: &str = "info,rsipstack=warn,rsipstack::transport::stream=error,sqlx=warn";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; coloured only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `message` and the event's
    /// fields), never coloured.
    Json,
}

impl LogFormat {
    /// The name used on the command line and in [`LOG_FORMAT_ENV`].
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }

    /// Reads `text` or `json` (any case, surrounding spaces ignored).
    pub fn parse(s: &str) -> Option<LogFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// Why the log format could not be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{LOG_FORMAT_ENV}={value:?}: use \"text\" or \"json\"")]
pub struct LogFormatError {
    pub value: String,
}

/// The format to log in: `--log-format` wins, then [`LOG_FORMAT_ENV`] (an empty value counts
/// as unset), then text.
pub fn choose_format(
    flag: Option<LogFormat>,
    env: Option<&OsStr>,
) -> Result<LogFormat, LogFormatError> {
    if let Some(format) = flag {
        return Ok(format);
    }
    let Some(value) = env.filter(|v| !v.is_empty()) else {
        return Ok(LogFormat::Text);
    };
    value
        .to_str()
        .and_then(LogFormat::parse)
        .ok_or_else(|| LogFormatError {
            value: value.to_string_lossy().into_owned(),
        })
}

/// Whether text logs carry ANSI colour codes: only on a terminal, and never when `NO_COLOR`
/// is set to something (<https://no-color.org>). A file, a pipe or the journal gets plain text.
pub fn colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the process's logger on stderr, with remote-input floods limited ([`flood`]).
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Every line is redacted before it is written (credentials in SIP messages at debug...).
        .with_writer(crate::redact::Stderr);
    // Only fails when a logger is installed already (a test calling twice): that one stays.
    let _ = match format {
        LogFormat::Text => {
            let ansi = colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            );
            builder
                .with_ansi(ansi)
                .finish()
                .with(flood::FloodLimit::new())
                .try_init()
        }
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_ansi(false)
            .finish()
            .with(flood::FloodLimit::new())
            .try_init(),
    };
}

#[cfg(test)]
mod tests;
