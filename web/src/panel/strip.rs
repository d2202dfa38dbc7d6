//! The alerts strip at the top of the panel: every alert firing in the cluster (the same
//! rows on every node), most severe first. Hidden while nothing fires. The page template
//! (`templates/panel.html`) renders these rows, escaping every value; `panel.js` redraws the
//! strip from each snapshot with the same ids and classes.

use callfleet_store::ActiveAlert;

use super::html::clock;

/// One alert as the strip shows it, each value as text.
pub struct AlertRow {
    /// `warning` or `critical` (the row's class).
    pub severity: &'static str,
    /// What kind of alert (`node_down`, ...).
    pub kind: &'static str,
    /// What it is about (a node, a queue, a carrier...).
    pub subject: String,
    /// The one-line message.
    pub message: String,
    /// How long it has been firing (`1:05`).
    pub age: String,
}

/// The strip's rows for `alerts` as of `now_ms`.
pub fn rows(alerts: &[ActiveAlert], now_ms: i64) -> Vec<AlertRow> {
    alerts
        .iter()
        .map(|a| AlertRow {
            severity: a.severity.as_str(),
            kind: a.kind.as_str(),
            subject: a.subject.clone(),
            message: a.message.clone(),
            age: clock(now_ms - a.raised_at_ms),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use callfleet_store::{AlertKind, Severity};

    use super::*;
    use crate::panel::html::{page, Viewer};
    use crate::snapshot::Snapshot;

    #[test]
    fn the_strip_escapes_and_hides_when_empty() {
        let mut s = Snapshot::default_for_page();
        s.taken_at_ms = 66_000;
        let html = page(&Viewer::default(), Some(&s));
        assert!(html.contains("data-testid=\"alerts\" hidden"), "{html}");
        s.alerts.push(ActiveAlert {
            kind: AlertKind::CarrierSilent,
            subject: "<b>acme</b>".to_owned(),
            node: None,
            severity: Severity::Warning,
            message: "carrier <b>acme</b> sent no call".to_owned(),
            raised_at_ms: 1_000,
            updated_at_ms: 1_000,
            reported_by: "a".to_owned(),
        });
        let html = page(&Viewer::default(), Some(&s));
        assert!(!html.contains("<b>"), "{html}");
        assert!(
            html.contains("data-testid=\"alert-carrier_silent-&lt;b&gt;acme&lt;/b&gt;\""),
            "{html}"
        );
        assert!(
            html.contains("<strong>warning</strong> carrier &lt;b&gt;acme&lt;/b&gt; sent no call"),
            "{html}"
        );
        assert!(html.contains("for 1:05"), "{html}");
        assert!(!html.contains("data-testid=\"alerts\" hidden"), "{html}");
    }
}
