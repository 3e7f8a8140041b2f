//! Report photos in an S3-compatible object store (moto's server, started by the test)
//! when HUIMIN_PHOTOS_S3_BUCKET is set: an anonymous report's photos go there under
//! random keys with nothing set on them that tells time, none of their bytes stay in
//! PostgreSQL, and staff read them back.

use huimin_kit::auth::Role;
use huimin_proto::whistle::v1::{GetPhotoRequest, GetReportRequest, Subject};

use crate::{
    helpers::{Options, TestApp, authed},
    reports::{bound_openid, phone_jpeg, report_id, request, submit, with_photo},
    servers::S3Server,
    whistle_anonymity::{add_photo, entries},
};

#[tokio::test]
async fn photos_go_to_the_object_store_under_random_keys_and_staff_read_them_back() {
    let s3 = S3Server::start().await;
    let app = TestApp::spawn_with(Options {
        env: s3.env(),
        ..Options::default()
    })
    .await;
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

    let inspector = app.token(Role::Inspector, None);
    let id = report_id(&app, &receipt.report_number).await;
    let full = app
        .whistle()
        .get_report(authed(GetReportRequest { id }, &inspector))
        .await
        .unwrap()
        .into_inner();
    let photo = app
        .whistle()
        .get_photo(authed(
            GetPhotoRequest {
                photo_id: full.photos[0].id,
            },
            &inspector,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut db = app.db_schema("whistle").await;
    let (in_database, anonymous_key): (i64, String) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM report_photos WHERE content IS NOT NULL),
                (SELECT object_key FROM report_photos WHERE report_id = $1)",
    )
    .bind(id)
    .fetch_one(&mut db)
    .await
    .unwrap();
    let keys = s3.keys().await;
    let head = s3.head(&anonymous_key).await;

    assert_eq!(full.photos.len(), 1, "the same photo is kept once");
    assert!(photo.data.starts_with(&[0xFF, 0xD8]) && photo.data.ends_with(&[0xFF, 0xD9]));
    assert_eq!(in_database, 0, "no photo's bytes in PostgreSQL");
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
