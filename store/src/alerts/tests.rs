//! Tests for alert rows and carrier traffic, on both flavours.

use crate::testdb::flavour_tests;
use crate::{ActiveAlert, AlertKind, Severity, Store, StoreError};

flavour_tests!(
    an_alert_is_raised_once_and_resolved_once,
    alerts_list_most_severe_first,
    carrier_traffic_keeps_the_latest_time
);

fn alert(kind: AlertKind, subject: &str, severity: Severity, at_ms: i64) -> ActiveAlert {
    ActiveAlert {
        kind,
        subject: subject.to_owned(),
        node: Some(subject.to_owned()),
        severity,
        message: format!("{kind} {subject}"),
        raised_at_ms: at_ms,
        updated_at_ms: at_ms,
        reported_by: "main-a".to_owned(),
    }
}

async fn an_alert_is_raised_once_and_resolved_once(store: &Store) -> Result<(), StoreError> {
    let down = alert(AlertKind::NodeDown, "main-b", Severity::Critical, 1_000);
    assert!(store.raise_alert(&down).await?, "the first raise inserts");
    let again = ActiveAlert {
        reported_by: "main-c".to_owned(),
        ..down.clone()
    };
    assert!(!store.raise_alert(&again).await?, "a second raise finds it");
    assert_eq!(store.active_alerts().await?, vec![down.clone()]);

    assert!(
        store
            .refresh_alert(
                AlertKind::NodeDown,
                "main-b",
                Severity::Warning,
                "m2",
                2_000
            )
            .await?
    );
    let refreshed = ActiveAlert {
        severity: Severity::Warning,
        message: "m2".to_owned(),
        updated_at_ms: 2_000,
        ..down.clone()
    };
    assert_eq!(store.active_alerts().await?, vec![refreshed.clone()]);

    let gone = store.resolve_alert(AlertKind::NodeDown, "main-b").await?;
    assert_eq!(gone, Some(refreshed), "the first resolve returns the row");
    assert_eq!(
        store.resolve_alert(AlertKind::NodeDown, "main-b").await?,
        None,
        "a second resolve finds nothing"
    );
    assert!(
        !store
            .refresh_alert(
                AlertKind::NodeDown,
                "main-b",
                Severity::Warning,
                "m3",
                3_000
            )
            .await?,
        "refreshing a resolved alert changes nothing"
    );
    assert!(store.active_alerts().await?.is_empty());
    Ok(())
}

async fn alerts_list_most_severe_first(store: &Store) -> Result<(), StoreError> {
    let disk = alert(AlertKind::DiskFull, "main-a /srv", Severity::Warning, 1_000);
    let db = alert(
        AlertKind::DatabaseUnreachable,
        "main-b",
        Severity::Critical,
        3_000,
    );
    let sl = ActiveAlert {
        node: None,
        ..alert(
            AlertKind::ServiceLevelLow,
            "sales",
            Severity::Warning,
            2_000,
        )
    };
    for a in [&disk, &db, &sl] {
        assert!(store.raise_alert(a).await?);
    }
    assert_eq!(store.active_alerts().await?, vec![db, disk, sl]);
    Ok(())
}

async fn carrier_traffic_keeps_the_latest_time(store: &Store) -> Result<(), StoreError> {
    store.note_carrier_traffic("acme", "main-a", 5_000).await?;
    store.note_carrier_traffic("acme", "main-a", 4_000).await?;
    store.note_carrier_traffic("acme", "main-b", 1_000).await?;
    store.note_carrier_traffic("acme", "main-b", 6_000).await?;
    let rows: Vec<(String, String, i64)> = store
        .carrier_traffic()
        .await?
        .into_iter()
        .map(|t| (t.carrier, t.node, t.last_invite_at_ms))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("acme".to_owned(), "main-a".to_owned(), 5_000),
            ("acme".to_owned(), "main-b".to_owned(), 6_000),
        ]
    );
    Ok(())
}

#[test]
fn kinds_and_severities_round_trip_their_text() {
    for kind in AlertKind::ALL {
        assert_eq!(kind.as_str().parse::<AlertKind>(), Ok(kind));
    }
    for severity in Severity::ALL {
        assert_eq!(severity.as_str().parse::<Severity>(), Ok(severity));
    }
    assert!("page".parse::<Severity>().is_err());
    assert!(Severity::Critical > Severity::Warning);
    let cluster: Vec<AlertKind> = AlertKind::ALL
        .into_iter()
        .filter(|k| k.cluster_wide())
        .collect();
    assert_eq!(
        cluster,
        vec![
            AlertKind::NodeDown,
            AlertKind::ServiceLevelLow,
            AlertKind::CarrierSilent
        ]
    );
}
