//! The alerts strip at the top of the panel: every alert firing in the cluster (the same
//! rows on every node), most severe first. Hidden while nothing fires. `panel.js` redraws it
//! from each snapshot with the same ids and classes.

use std::fmt::Write as _;

use callfleet_store::ActiveAlert;

use super::html::{clock, escape};

/// The strip's HTML for `alerts` as of `now_ms`.
pub fn alerts(alerts: &[ActiveAlert], now_ms: i64) -> String {
    let mut h = String::new();
    let hidden = if alerts.is_empty() { " hidden" } else { "" };
    let _ = write!(
        h,
        "<section id=\"alerts\" class=\"alerts\" data-testid=\"alerts\"{hidden}>\n<h2>Alerts</h2>\n\
         <ul id=\"alerts-list\">\n"
    );
    for a in alerts {
        let _ = writeln!(
            h,
            "<li class=\"{sev}\" data-testid=\"alert-{kind}-{subject}\"><strong>{sev}</strong> \
             {message} <span class=\"since\">for {age}</span></li>",
            sev = a.severity.as_str(),
            kind = a.kind.as_str(),
            subject = escape(&a.subject),
            message = escape(&a.message),
            age = clock(now_ms - a.raised_at_ms),
        );
    }
    h.push_str("</ul>\n</section>\n");
    h
}

#[cfg(test)]
mod tests {
    use callfleet_store::{AlertKind, Severity};

    use super::*;

    #[test]
    fn the_strip_escapes_and_hides_when_empty() {
        assert!(alerts(&[], 0).contains("data-testid=\"alerts\" hidden"));
        let row = ActiveAlert {
            kind: AlertKind::CarrierSilent,
            subject: "<b>acme</b>".to_owned(),
            node: None,
            severity: Severity::Warning,
            message: "carrier <b>acme</b> sent no call".to_owned(),
            raised_at_ms: 1_000,
            updated_at_ms: 1_000,
            reported_by: "a".to_owned(),
        };
        let html = alerts(&[row], 66_000);
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
        assert!(!html.contains(" hidden"));
    }
}
