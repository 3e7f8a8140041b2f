//! The record of wrong receipt codes: clients named by a keyed hash, failures
//! counted by the hour, so nothing in it can be set against a report's time.

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use hmac::{Hmac, Mac as _};
use huimin_kit::auth::Role;
use huimin_proto::whistle::v1::FollowUpRequest;
use sha2::{Digest as _, Sha256};
use tonic::Code;

use crate::helpers::{Options, TestApp, authed};

const KEY: [u8; 32] = [42; 32];

#[tokio::test]
async fn a_wrong_receipt_code_is_recorded_under_a_keyed_hash_and_the_hour() {
    let app = TestApp::spawn_with(Options {
        env: vec![("HUIMIN_RECEIPT_HMAC_KEY", B64.encode(KEY))],
        ..Options::default()
    })
    .await;

    let status = app
        .whistle()
        .follow_up(authed(
            FollowUpRequest {
                receipt_code: "0000-0000-0000-0000-0000".to_owned(),
                client_key: "wx-client-7".to_owned(),
            },
            &app.token(Role::Gateway, None),
        ))
        .await
        .unwrap_err();
    let mut db = app.db_schema("whistle").await;
    let rows: Vec<String> = sqlx::query_scalar("SELECT to_jsonb(t)::text FROM receipt_failures t")
        .fetch_all(&mut db)
        .await
        .unwrap();

    assert_eq!(status.code(), Code::NotFound);
    let dump = rows.join("\n");
    let mut mac = <Hmac<Sha256>>::new_from_slice(&KEY).unwrap();
    mac.update(b"wx-client-7");
    let keyed = hex::encode(mac.finalize().into_bytes());
    let unkeyed = [
        hex::encode(Sha256::digest(b"receipt-client:wx-client-7")),
        hex::encode(Sha256::digest(b"wx-client-7")),
    ];
    assert!(
        dump.contains(&keyed),
        "the client is named by the keyed hash: {dump}"
    );
    assert!(unkeyed.iter().all(|h| !dump.contains(h)), "{dump}");
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = rows
        .iter()
        .flat_map(|row| {
            let value: serde_json::Value = serde_json::from_str(row).unwrap();
            value
                .as_object()
                .unwrap()
                .values()
                .filter_map(|v| v.as_str())
                .filter_map(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        !times.is_empty(),
        "the failure is kept with its hour: {dump}"
    );
    for time in times {
        use chrono::Timelike as _;
        assert_eq!(
            (time.minute(), time.second(), time.nanosecond()),
            (0, 0, 0),
            "no time finer than the hour: {dump}"
        );
    }
}
