//! Divisions and the persons import: UTF-8 and GBK files, per-row reports,
//! all-or-nothing.

use huimin_proto::identity::v1::ListDivisionsRequest;
use sqlx::Row as _;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::{TestApp, import_persons, persons_csv, residents};

async fn count(app: &TestApp, table: &str) -> i64 {
    let mut db = app.db().await;
    sqlx::query(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&mut db)
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn the_county_has_28_towns_and_358_villages() {
    let app = TestApp::spawn().await;
    let towns = app
        .identity()
        .list_divisions(ListDivisionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .divisions;
    let mut villages = 0;
    for town in &towns {
        let request = ListDivisionsRequest {
            parent_code: town.code.clone(),
        };
        villages += app
            .identity()
            .list_divisions(request)
            .await
            .unwrap()
            .into_inner()
            .divisions
            .len();
    }
    assert_eq!(towns.len(), 28);
    assert_eq!(towns[0].name, "博白镇");
    assert_eq!(villages, 358);
}

#[tokio::test]
async fn utf8_file_creates_persons_and_households() {
    let app = TestApp::spawn().await;
    let csv = persons_csv(&residents());

    let summary = import_persons(&app, format!("\u{feff}{csv}").as_bytes())
        .await
        .unwrap();

    assert_eq!(
        (summary.persons, summary.households, summary.created),
        (3, 2, 3)
    );
    assert_eq!(count(&app, "persons").await, 3);
}

#[tokio::test]
async fn gbk_file_imports_with_names_intact() {
    let app = TestApp::spawn().await;
    let csv = persons_csv(&residents());
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&csv);
    assert!(!unmappable);

    import_persons(&app, &gbk).await.unwrap();

    let mut db = app.db().await;
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM persons ORDER BY name")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert_eq!(names.len(), 3);
    assert!(names.contains(&"庞秀英".to_owned()), "{names:?}");
}

#[tokio::test]
async fn importing_the_same_file_again_updates_rather_than_duplicates() {
    let app = TestApp::spawn().await;
    let csv = persons_csv(&residents());
    import_persons(&app, csv.as_bytes()).await.unwrap();

    let again = import_persons(&app, csv.as_bytes()).await.unwrap();

    assert_eq!((again.created, again.updated), (0, 3));
    assert_eq!(count(&app, "persons").await, 3);
}

#[tokio::test]
async fn bad_rows_are_reported_by_row_and_column_and_nothing_is_imported() {
    let app = TestApp::spawn().await;
    let mut csv = persons_csv(&residents());
    csv.push_str("H-0003,刘大,450923199001011230,户主,450923100201\n"); // bad check digit, line 5
    csv.push_str("H-0004,何小,110105194912310021,户主,999999999999\n"); // bad digit and village, line 6

    let status = import_persons(&app, csv.as_bytes()).await.unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("3处错误"), "{}", status.message());
    let fields: Vec<String> = status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["第5行/身份证号", "第6行/身份证号", "第6行/村代码"]);
    assert_eq!(count(&app, "persons").await, 0);
    assert_eq!(count(&app, "households").await, 0);
}

#[tokio::test]
async fn a_file_in_neither_utf8_nor_gbk_is_refused() {
    let app = TestApp::spawn().await;
    let status = import_persons(&app, &[0xff, 0xfe, 0x00, 0x81, 0x30])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("编码"), "{}", status.message());
}

#[tokio::test]
async fn person_facts_stream_in_version_order_and_resume_after_a_version() {
    use huimin_proto::identity::v1::StreamPersonFactsRequest;
    let app = TestApp::spawn().await;
    import_persons(&app, persons_csv(&residents()).as_bytes())
        .await
        .unwrap();
    let mut db = app.db().await;
    sqlx::query(
        "INSERT INTO person_facts (person_id, kind, since, detail)
         SELECT id, 'vehicle_owner', DATE '2020-01-01' + (n || ' days')::interval, '车辆登记'
         FROM persons, generate_series(1, 900) n",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let read = |after: i64| {
        let mut client = app.identity();
        let token = app.service_token("ledger");
        async move {
            let request = crate::helpers::authed(
                StreamPersonFactsRequest {
                    after_version: after,
                },
                &token,
            );
            let mut stream = client
                .stream_person_facts(request)
                .await
                .unwrap()
                .into_inner();
            let mut versions = Vec::new();
            while let Some(fact) = stream.message().await.unwrap() {
                versions.push(fact.version);
            }
            versions
        }
    };

    let all = read(0).await;
    let rest = read(all[1499]).await;

    assert_eq!(
        all.len(),
        2706,
        "three persons × 900 facts, and their births and households, across batches of 1000"
    );
    assert!(all.windows(2).all(|w| w[0] < w[1]), "in version order");
    assert_eq!(rest, all[1500..]);
}

#[tokio::test]
async fn an_xlsx_file_imports_and_an_id_number_typed_as_a_number_is_refused() {
    use huimin_kit::auth::Role;
    use huimin_proto::identity::v1::ImportPersonsChunk;
    let app = TestApp::spawn().await;
    let people = residents();
    let workbook = |id_as_number: bool| {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (col, title) in ["户编号", "姓名", "身份证号", "与户主关系", "村代码"]
            .iter()
            .enumerate()
        {
            sheet
                .write_string(0, u16::try_from(col).unwrap(), *title)
                .unwrap();
        }
        let p = &people[2];
        sheet.write_string(1, 0, &p.household).unwrap();
        sheet.write_string(1, 1, &p.name).unwrap();
        if id_as_number {
            sheet
                .write_number(1, 2, p.id_number.expose()[..17].parse::<f64>().unwrap())
                .unwrap();
        } else {
            sheet.write_string(1, 2, p.id_number.expose()).unwrap();
        }
        sheet.write_string(1, 3, &p.relation).unwrap();
        sheet.write_string(1, 4, &p.village).unwrap();
        book.save_to_buffer().unwrap()
    };
    let send = |bytes: Vec<u8>| {
        let mut client = app.identity();
        let token = app.token(Role::Admin, None);
        async move {
            let chunk = ImportPersonsChunk {
                file_name: "户籍.xlsx".into(),
                data: bytes,
            };
            client
                .import_persons(crate::helpers::authed(tokio_stream::iter([chunk]), &token))
                .await
        }
    };

    let number = send(workbook(true)).await.unwrap_err();
    let text = send(workbook(false)).await.unwrap().into_inner();

    let violation = &number.get_details_bad_request().unwrap().field_violations[0];
    assert_eq!(violation.field, "第2行/身份证号");
    assert!(
        violation.description.contains("文本格式"),
        "{}",
        violation.description
    );
    assert_eq!(text.created, 1);
}
