//! Fixtures for whistle tests: photos as phones send them, and submissions.

use huimin_kit::auth::Role;
use huimin_proto::whistle::v1::{PhotoUpload, Subject, SubmitReportRequest, SubmitReportResponse};

use crate::helpers::{TestApp, authed};

/// What a phone's Exif block gives away: where and with what a photo was taken.
pub const GPS: &[u8] = b"GPSLatitude 22.2719N GPSLongitude 109.9803E";
pub const DEVICE: &[u8] = b"Make HUAWEI Model P60 Pro SerialNumber 8H7Q2";

fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
    let length = u16::try_from(body.len() + 2).expect("test segments are small");
    [&[0xFF, marker][..], &length.to_be_bytes(), body].concat()
}

/// A 1×1 greyscale baseline JPEG carrying an Exif segment with location and device.
pub fn phone_jpeg() -> Vec<u8> {
    let exif = [&b"Exif\0\0"[..], GPS, b" ", DEVICE].concat();
    let huffman = |class: u8| [&[class, 1][..], &[0; 15], &[0]].concat();
    [
        &[0xFF, 0xD8][..],
        &segment(0xE0, b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
        &segment(0xE1, &exif),
        &segment(0xDB, &[&[0u8][..], &[1; 64]].concat()),
        &segment(0xC0, &[8, 0, 1, 0, 1, 1, 1, 0x11, 0]),
        &segment(0xC4, &huffman(0x00)),
        &segment(0xC4, &huffman(0x10)),
        &segment(0xDA, &[1, 1, 0, 0, 63, 0]),
        &[0x3F, 0xFF, 0xD9],
    ]
    .concat()
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn request(text: &str, subject: Subject, anonymous: bool, openid: &str) -> SubmitReportRequest {
    SubmitReportRequest {
        text: text.to_owned(),
        category: String::new(),
        subject: Some(subject),
        photos: Vec::new(),
        anonymous,
        openid: openid.to_owned(),
    }
}

pub fn with_photo(mut request: SubmitReportRequest, bytes: Vec<u8>) -> SubmitReportRequest {
    request.photos.push(PhotoUpload {
        file_name: "IMG_20261128_101500.jpg".to_owned(),
        data: bytes,
    });
    request
}

pub async fn submit(
    app: &TestApp,
    request: SubmitReportRequest,
) -> Result<SubmitReportResponse, tonic::Status> {
    app.whistle()
        .submit_report(authed(request, &app.token(Role::Gateway, None)))
        .await
        .map(tonic::Response::into_inner)
}

/// The id of a report by its number (staff-side reads are audited, so tests
/// that count audit entries look the id up directly).
pub async fn report_id(app: &TestApp, number: &str) -> i64 {
    let mut db = app.db_schema("whistle").await;
    sqlx::query_scalar("SELECT id FROM reports WHERE number = $1")
        .bind(number)
        .fetch_one(&mut db)
        .await
        .expect("report exists")
}

pub fn village_subject(village: &str, program: &str) -> Subject {
    Subject {
        village_code: village.to_owned(),
        program_code: program.to_owned(),
        ..Subject::default()
    }
}

/// Registers the test residents and binds `openid` to the first, as a
/// real-name reporter must be.
pub async fn bound_openid(app: &TestApp, openid: &str) {
    let people = crate::helpers::residents();
    crate::helpers::import_persons(app, crate::helpers::persons_csv(&people).as_bytes())
        .await
        .expect("residents import");
    let request = huimin_proto::identity::v1::BindOpenIdRequest {
        openid: openid.to_owned(),
        id_number: people[0].id_number.expose().to_owned(),
        name: people[0].name.clone(),
    };
    app.identity()
        .bind_open_id(authed(request, &app.token(Role::Gateway, None)))
        .await
        .expect("openid binds");
}
