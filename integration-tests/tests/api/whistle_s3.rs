//! Report photos in an S3-compatible object store (moto's server, started by the test)
//! when HUIMIN_PHOTOS_S3_BUCKET is set: a real-name report's go there at once; an
//! anonymous report's wait in the database until their day is sealed, then move there
//! under random keys with nothing set on them, and none of their bytes stay in
//! PostgreSQL. Staff read them back before and after.

use std::time::{Duration, Instant};

use huimin_kit::auth::Role;
use huimin_proto::whistle::v1::{GetPhotoRequest, GetReportRequest, Subject};

use crate::{
    helpers::{Options, TestApp, authed},
    reports::{bound_openid, phone_jpeg, report_id, request, submit, with_photo},
    scale_servers::S3Server,
    whistle_anonymity::{add_photo, entries, pass_the_day},
};

async fn photo_as_staff(app: &TestApp, report: i64) -> Vec<u8> {
    let inspector = app.token(Role::Inspector, None);
    let full = app
        .whistle()
        .get_report(authed(GetReportRequest { id: report }, &inspector))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(full.photos.len(), 1, "the same photo is kept once");
    app.whistle()
        .get_photo(authed(
            GetPhotoRequest {
                photo_id: full.photos[0].id,
            },
            &inspector,
        ))
        .await
        .unwrap()
        .into_inner()
        .data
}

#[tokio::test]
async fn photos_go_to_the_object_store_and_anonymous_ones_only_when_their_day_is_sealed() {
    let s3 = S3Server::start().await;
    let app = TestApp::spawn_with(Options {
        env: s3.env(),
        ..Options::default()
    })
    .await;
    let openid = "oWx-s3-real-name";
    bound_openid(&app, openid).await;
    submit(
        &app,
        with_photo(
            request("村干部优亲厚友", Subject::default(), false, openid),
            phone_jpeg(),
        ),
    )
    .await
    .unwrap();
    let receipt = submit(
        &app,
        with_photo(
            request("工程偷工减料", Subject::default(), true, ""),
            phone_jpeg(),
        ),
    )
    .await
    .unwrap();
    add_photo(&app, &receipt.receipt_code, "补充一张照片").await;
    let id = report_id(&app, &receipt.report_number).await;
    let mut db = app.db_schema("whistle").await;
    let held_today = photo_as_staff(&app, id).await;
    let keys_today = s3.keys().await;

    pass_the_day(&mut db).await;
    let started = Instant::now();
    let (in_database, anonymous_key) = loop {
        let (in_database, key): (i64, String) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM report_photos WHERE content IS NOT NULL),
                    (SELECT object_key FROM report_photos WHERE report_id = $1)",
        )
        .bind(id)
        .fetch_one(&mut db)
        .await
        .unwrap();
        if in_database == 0 || started.elapsed() > Duration::from_secs(10) {
            break (in_database, key);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let moved = photo_as_staff(&app, id).await;
    let keys = s3.keys().await;
    let head = s3.head(&anonymous_key).await;

    assert_eq!(
        keys_today.len(),
        1,
        "only the real-name photo, today: {keys_today:?}"
    );
    assert!(keys_today[0].starts_with("reports/"), "{keys_today:?}");
    assert_eq!(
        in_database, 0,
        "no photo's bytes left in PostgreSQL after the seal"
    );
    assert_eq!(
        moved, held_today,
        "staff read the same photo before and after"
    );
    assert!(moved.starts_with(&[0xFF, 0xD8]) && moved.ends_with(&[0xFF, 0xD9]));
    assert_eq!(
        keys.len(),
        2,
        "both reports' photos in the bucket: {keys:?}"
    );
    assert!(keys.contains(&anonymous_key), "{keys:?}");
    let random = anonymous_key.trim_start_matches("photos/");
    assert!(
        random.len() == 32 && random.bytes().all(|b| b.is_ascii_hexdigit()),
        "the anonymous photo's key is random, with no report id, hash or time: {anonymous_key}"
    );
    assert!(
        !head
            .keys()
            .any(|name| name.as_str().starts_with("x-amz-meta-")),
        "no metadata of ours on the object: {head:?}"
    );
    assert!(entries(&app.attachments_dir).is_empty(), "no local file");
}
