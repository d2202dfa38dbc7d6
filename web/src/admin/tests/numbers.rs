//! Numbers and IVR menus through the router: list, create, edit, refuse, delete.

use axum::http::StatusCode;
use callfleet_store::{DestKind, Destination};

use super::{app, change, sales, send, ADMIN, CSRF};

#[tokio::test]
async fn numbers_are_listed_added_edited_and_removed() {
    let (app, store) = app().await;
    let (status, _, body) = send(&app, ADMIN, "GET", "/admin/numbers", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("No number yet."), "{body}");
    // Queues and agents named must exist (menus and numbers need not, yet).
    let (status, _, body) = send(
        &app,
        ADMIN,
        "POST",
        "/admin/numbers",
        &format!("csrf={CSRF}&number=0800100&open=queue%3Asales&closed=voicemail%3A1001"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains("there is no queue &quot;sales&quot;")
            && body.contains("there is no agent &quot;1001&quot;"),
        "{body}"
    );
    assert!(store.numbers().await.expect("numbers").is_empty());
    sales(&app).await; // queue sales, agent 1001

    let created = change(
        &app,
        "/admin/numbers",
        "number=0800100&open=menu%3Amain&closed=voicemail%3A1001&time_zone=Europe%2FParis\
         &open_hours=mon-fri+09%3A00-17%3A00&holidays=2026-12-25",
        "/admin/numbers",
    )
    .await;
    assert_eq!(created, "Number 0800100 created.");
    let n = &store.numbers().await.expect("numbers")[0];
    assert_eq!(n.open, Destination::new(DestKind::Menu, "main"));
    assert_eq!(n.closed, Destination::new(DestKind::Voicemail, "1001"));
    assert_eq!(n.open_hours, "mon-fri 09:00-17:00");
    let (_, _, list) = send(&app, ADMIN, "GET", "/admin/numbers", "").await;
    assert!(
        list.contains("menu:main") && list.contains("Europe/Paris") && list.contains("All numbers"),
        "{list}"
    );

    // A bad form is shown again with its problems (422) and nothing changes.
    let (status, _, body) = send(
        &app,
        ADMIN,
        "POST",
        "/admin/numbers/0800100",
        &format!("csrf={CSRF}&open=nowhere&open_hours=mon+25%3A00-26%3A00"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("KIND:TARGET"), "{body}");
    assert_eq!(
        store.numbers().await.expect("numbers")[0].open_hours,
        "mon-fri 09:00-17:00"
    );

    let saved = change(
        &app,
        "/admin/numbers/0800100",
        "open=queue%3Asales&closed=&time_zone=&open_hours=&holidays=",
        "/admin/numbers",
    )
    .await;
    assert_eq!(saved, "Number 0800100 saved.");
    let n = &store.numbers().await.expect("numbers")[0];
    assert_eq!(n.open.to_string(), "queue:sales");
    assert_eq!(n.closed.to_string(), "message:goodbye");
    assert_eq!((n.time_zone.as_str(), n.open_hours.as_str()), ("UTC", ""));

    let deleted = change(&app, "/admin/numbers/0800100/delete", "", "/admin/numbers").await;
    assert_eq!(deleted, "Number 0800100 deleted.");
    assert!(store.numbers().await.expect("numbers").is_empty());
}

#[tokio::test]
async fn menus_are_listed_added_edited_and_removed() {
    let (app, store) = app().await;
    sales(&app).await;
    let created = change(
        &app,
        "/admin/menus",
        "name=main&prompt=welcome.wav&timeout_s=4&repeats=2&invalid=queue%3Asales\
         &key_1=queue%3Asales&key_2=menu%3Abilling&key_star=menu%3Amain",
        "/admin/menus",
    )
    .await;
    assert_eq!(created, "IVR menu main created.");
    let m = &store.menus().await.expect("menus")[0];
    assert_eq!((m.timeout_ms, m.repeats), (4_000, 2));
    assert_eq!(m.choices.len(), 3);
    let (_, _, list) = send(&app, ADMIN, "GET", "/admin/menus", "").await;
    assert!(list.contains("All IVR menus"), "the acronym stays: {list}");
    let (_, _, page) = send(&app, ADMIN, "GET", "/admin/menus/main", "").await;
    assert!(
        page.contains("value=\"queue:sales\"") && page.contains("value=\"menu:billing\""),
        "{page}"
    );

    // Saving with a key emptied removes that choice.
    change(
        &app,
        "/admin/menus/main",
        "prompt=welcome.wav&timeout_s=4&repeats=2&invalid=queue%3Asales&key_1=queue%3Asales",
        "/admin/menus",
    )
    .await;
    let m = &store.menus().await.expect("menus")[0];
    assert_eq!(m.choices.keys().collect::<Vec<_>>(), [&'1']);

    let (status, _, body) = send(
        &app,
        ADMIN,
        "POST",
        "/admin/menus",
        &format!("csrf={CSRF}&name=x&prompt=..%2Fetc&key_hash=ring%3Ax"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(store.menus().await.expect("menus").len(), 1);
    // A key naming a queue that does not exist is refused, with its field.
    let (status, _, body) = send(
        &app,
        ADMIN,
        "POST",
        "/admin/menus/main",
        &format!("csrf={CSRF}&prompt=w.wav&key_4=queue%3Anone"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains("there is no queue &quot;none&quot;"),
        "{body}"
    );
    assert_eq!(store.menus().await.expect("menus")[0].prompt, "welcome.wav");

    change(&app, "/admin/menus/main/delete", "", "/admin/menus").await;
    assert!(store.menus().await.expect("menus").is_empty());
}
