//! Registry files and the public: project file imports (good and bad), the
//! resumable export, public lookups with totals and their cache invalidation.

use huimin_kit::auth::Role;
use huimin_proto::registry::v1::{
    ExportProjectsRequest, ImportProjectsChunk, ImportProjectsResponse, ProjectKind, ProjectStatus,
    PublicProjectRequest, SearchProjectsRequest, SearchProjectsResponse,
};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::{
    helpers::{TestApp, authed},
    registry::{TOWN, VILLAGE, admin, create, road, set_status, update},
};

const HEADER: &str = "项目编号,项目名称,项目类型,乡镇代码,村代码,年度,中央资金（元）,自治区资金（元）,县级资金（元）,批复金额（元）,承建单位,责任单位,责任人,计划开工日期,计划完工日期,受益户数";

/// A row of a project file; approved 50,000 yuan, split 30,000 central and 20,000 county.
pub fn row(code: &str, village: &str) -> String {
    format!(
        "{code},{village}饮水工程,饮水安全,{},{village},2026,30000,,20000.00,50000,博白县水利建筑公司,博白县水利局,黄志明,2026-04-01,2026/10/31,80",
        &village[..9]
    )
}

pub fn file(rows: &[String]) -> String {
    let mut text = HEADER.to_owned();
    for row in rows {
        text.push('\n');
        text.push_str(row);
    }
    text.push('\n');
    text
}

pub async fn import(
    app: &TestApp,
    file_name: &str,
    bytes: &[u8],
    token: &str,
) -> Result<ImportProjectsResponse, tonic::Status> {
    let chunks: Vec<ImportProjectsChunk> = bytes
        .chunks(16 * 1024)
        .enumerate()
        .map(|(i, data)| ImportProjectsChunk {
            file_name: if i == 0 {
                file_name.to_owned()
            } else {
                String::new()
            },
            data: data.to_vec(),
        })
        .collect();
    app.registry()
        .import_projects(authed(tokio_stream::iter(chunks), token))
        .await
        .map(tonic::Response::into_inner)
}

async fn search(app: &TestApp, request: SearchProjectsRequest) -> SearchProjectsResponse {
    app.registry()
        .search_projects(request)
        .await
        .unwrap()
        .into_inner()
}

fn in_village(village: &str) -> SearchProjectsRequest {
    SearchProjectsRequest {
        village_code: village.to_owned(),
        ..SearchProjectsRequest::default()
    }
}

#[tokio::test]
async fn good_csv_and_xlsx_project_files_import_every_row() {
    let app = TestApp::spawn().await;
    let town = app.token(Role::Town, Some(TOWN));
    let csv = file(&[row("W-1", VILLAGE), row("W-2", "450923100202")]);
    let (gbk, _, _) = encoding_rs::GBK.encode(&csv);
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for (col, header) in HEADER.split(',').enumerate() {
        sheet
            .write_string(0, u16::try_from(col).unwrap(), header)
            .unwrap();
    }
    for (col, cell) in row("W-3", VILLAGE).split(',').enumerate() {
        sheet
            .write_string(1, u16::try_from(col).unwrap(), cell)
            .unwrap();
    }
    sheet.write_number(1, 9, 50_000.0).unwrap();
    sheet.write_number(1, 6, 30_000.0).unwrap();
    let xlsx = workbook.save_to_buffer().unwrap();

    let from_csv = import(&app, "项目表.csv", &gbk, &town).await.unwrap();
    let from_xlsx = import(&app, "项目表.xlsx", &xlsx, &town).await.unwrap();

    assert_eq!((from_csv.created, from_csv.approved_fen), (2, 10_000_000));
    assert_eq!(from_xlsx.created, 1);
    let found = search(&app, in_village(VILLAGE)).await;
    let codes: Vec<&str> = found.projects.iter().map(|p| p.code.as_str()).collect();
    assert_eq!(codes, ["W-1", "W-3"]);
    assert_eq!(found.projects[0].kind, ProjectKind::Water as i32);
    assert_eq!(found.projects[0].status, ProjectStatus::Planned as i32);
    assert_eq!(found.projects[0].beneficiary_households, 80);
}

#[tokio::test]
async fn a_bad_project_file_is_reported_row_by_row_and_imports_nothing() {
    let app = TestApp::spawn().await;
    create(&app, road("OLD-1"), &admin(&app)).await.unwrap();
    let town = app.token(Role::Town, Some(TOWN));
    let rows = [
        row("W-1", VILLAGE),                                   // line 2: fine
        row("W-1", VILLAGE),                                   // 3: same code as line 2
        row("OLD-1", VILLAGE),                                 // 4: registered already
        row("W-4", VILLAGE).replace("饮水安全", "桥梁"),       // 5: no such kind
        row("W-5", VILLAGE).replace(",50000,", ",50001,"),     // 6: sources don't add up
        row("W-6", "450923100999"),                            // 7: made-up village
        row("W-7", "450923101201"),                            // 8: another town
        row("W-8", VILLAGE).replace("2026/10/31", "2026/3/1"), // 9: ends before it starts
        row("W-9", VILLAGE).replace(",30000,", ",30000.123,"), // 10: three decimals
    ];

    let refused = import(&app, "项目表.csv", file(&rows).as_bytes(), &town)
        .await
        .unwrap_err();

    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(refused.message(), "项目表有8处错误，未导入任何数据");
    let violations = refused.get_details_bad_request().unwrap().field_violations;
    let mut reported: Vec<(String, String)> = violations
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect();
    reported.sort();
    let expected = [
        ("第10行/中央资金", "金额最多两位小数"),
        ("第3行/项目编号", "与第2行项目编号重复"),
        ("第4行/项目编号", "项目编号已存在"),
        (
            "第5行/项目类型",
            "项目类型应为道路交通、饮水安全、住房保障、产业发展、教育、医疗卫生、人居环境或其他",
        ),
        (
            "第6行/批复金额",
            "各来源资金合计（50000.00元）应等于批复金额（50001.00元）",
        ),
        ("第7行/村代码", "村代码不存在或不属于该乡镇"),
        ("第8行/乡镇代码", "该项目不在您的管辖范围内"),
        ("第9行/计划完工日期", "计划完工日期不能早于计划开工日期"),
    ];
    let mut expected: Vec<(String, String)> = expected
        .iter()
        .map(|(f, d)| ((*f).to_owned(), (*d).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(reported, expected);
    let found = search(&app, in_village(VILLAGE)).await;
    assert_eq!(found.totals.unwrap().projects, 1, "only OLD-1");
}

#[tokio::test]
async fn a_file_missing_a_required_column_is_refused_at_the_header() {
    let app = TestApp::spawn().await;
    let text = "项目编号,项目名称\nW-1,某工程\n";

    let refused = import(&app, "项目表.csv", text.as_bytes(), &admin(&app))
        .await
        .unwrap_err();

    assert_eq!(refused.code(), Code::InvalidArgument);
    let fields: Vec<String> = refused
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert!(fields.contains(&"第1行/批复金额".to_owned()), "{fields:?}");
}

#[tokio::test]
async fn an_export_resumed_after_a_dropped_connection_loses_and_repeats_nothing() {
    let app = TestApp::spawn().await;
    let rows: Vec<String> = (0..120)
        .map(|i| row(&format!("W-{i:03}"), VILLAGE))
        .collect();
    import(&app, "项目表.csv", file(&rows).as_bytes(), &admin(&app))
        .await
        .unwrap();
    let provincial = app.token(Role::Provincial, None);
    let request = |after_cursor| ExportProjectsRequest {
        after_cursor,
        batch_size: 25,
        ..ExportProjectsRequest::default()
    };

    let mut seen: Vec<String> = Vec::new();
    let mut cursor = 0;
    {
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client =
            huimin_proto::registry::v1::registry_service_client::RegistryServiceClient::new(
                channel,
            );
        let mut stream = client
            .export_projects(authed(request(0), &provincial))
            .await
            .unwrap()
            .into_inner();
        for _ in 0..2 {
            let batch = stream.message().await.unwrap().unwrap();
            seen.extend(batch.projects.into_iter().map(|p| p.code));
            cursor = batch.cursor;
        }
    }
    let mut stream = app
        .registry()
        .export_projects(authed(request(cursor), &provincial))
        .await
        .unwrap()
        .into_inner();
    while let Some(batch) = stream.message().await.unwrap() {
        seen.extend(batch.projects.into_iter().map(|p| p.code));
    }

    let expected: Vec<String> = (0..120).map(|i| format!("W-{i:03}")).collect();
    assert_eq!(seen, expected, "every project once, in order");
}

#[tokio::test]
async fn the_public_sees_a_villages_projects_with_totals_and_money_history() {
    let app = TestApp::spawn().await;
    let token = admin(&app);
    let kept = create(&app, road("BB-1"), &token).await.unwrap();
    update(&app, &kept, |d| d.disbursed_fen = 4_000_000, &token)
        .await
        .unwrap();
    let mut school = road("BB-2");
    let details = school.details.as_mut().unwrap();
    details.kind = ProjectKind::Education as i32;
    details.year = 2025;
    details.beneficiary_households = 300;
    create(&app, school, &token).await.unwrap();
    let dropped = create(&app, road("BB-3"), &token).await.unwrap();
    set_status(&app, &dropped, ProjectStatus::Cancelled, &token)
        .await
        .unwrap();
    let mut elsewhere = road("BB-4");
    elsewhere.details.as_mut().unwrap().village_code = "450923100202".into();
    create(&app, elsewhere, &token).await.unwrap();

    let village = search(&app, in_village(VILLAGE)).await;
    let roads_2026 = search(
        &app,
        SearchProjectsRequest {
            town_code: TOWN.into(),
            kind: ProjectKind::Roads as i32,
            year: 2026,
            ..SearchProjectsRequest::default()
        },
    )
    .await;
    let public = app
        .registry()
        .public_project(PublicProjectRequest {
            code: "BB-1".into(),
        })
        .await
        .unwrap()
        .into_inner();

    let codes: Vec<&str> = village.projects.iter().map(|p| p.code.as_str()).collect();
    assert_eq!(codes, ["BB-1", "BB-2", "BB-3"]);
    let totals = village.totals.unwrap();
    assert_eq!(
        (
            totals.projects,
            totals.approved_fen,
            totals.disbursed_fen,
            totals.beneficiary_households
        ),
        (2, 20_000_000, 4_000_000, 420),
        "the cancelled project is listed but not counted"
    );
    let codes: Vec<&str> = roads_2026
        .projects
        .iter()
        .map(|p| p.code.as_str())
        .collect();
    assert_eq!(codes, ["BB-1", "BB-3", "BB-4"]);
    assert_eq!(public.details.unwrap().officer, "李建国");
    let history: Vec<Vec<&str>> = public
        .money_history
        .iter()
        .map(|m| m.changes.iter().map(|c| c.field.as_str()).collect())
        .collect();
    assert_eq!(
        history,
        [
            vec!["approved_fen", "disbursed_fen", "funding"],
            vec!["disbursed_fen"]
        ],
        "creation and the disbursement; only money fields"
    );
}

#[tokio::test]
async fn a_change_invalidates_the_cached_village_lookup() {
    let app = TestApp::spawn().await;
    let token = admin(&app);
    let project = create(&app, road("BB-1"), &token).await.unwrap();
    let before = search(&app, in_village(VILLAGE)).await;
    let mut redis = redis::Client::open(crate::helpers::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let cached: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}registry:search:*", app.redis_prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(cached.len(), 1, "the lookup was cached");

    update(&app, &project, |d| d.disbursed_fen = 1_000_000, &token)
        .await
        .unwrap();
    let after = search(&app, in_village(VILLAGE)).await;

    assert_eq!(before.projects[0].disbursed_fen, 0);
    assert_eq!(after.projects[0].disbursed_fen, 1_000_000);
    assert_eq!(after.totals.unwrap().disbursed_fen, 1_000_000);
}

#[tokio::test]
async fn an_import_invalidates_a_cached_public_search() {
    let app = TestApp::spawn().await;
    let town = app.token(Role::Town, Some(TOWN));
    import(
        &app,
        "项目表.csv",
        file(&[row("I-1", VILLAGE)]).as_bytes(),
        &town,
    )
    .await
    .unwrap();
    let before = search(&app, in_village(VILLAGE)).await;
    let mut redis = redis::Client::open(crate::helpers::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let cached: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}registry:search:*", app.redis_prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(cached.len(), 1, "the lookup was cached");

    import(
        &app,
        "项目表.csv",
        file(&[row("I-2", VILLAGE)]).as_bytes(),
        &town,
    )
    .await
    .unwrap();
    let after = search(&app, in_village(VILLAGE)).await;

    assert_eq!(before.projects.len(), 1);
    assert_eq!(
        after.projects.len(),
        2,
        "the second file's project is seen at once"
    );
    assert_eq!(after.totals.unwrap().approved_fen, 2 * 5_000_000);
}
