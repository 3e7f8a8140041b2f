//! Registry writes: creating projects, the status machine, staff scope,
//! version history, the checks on money, dates and places, and the event feed.

use huimin_kit::auth::Role;
use huimin_proto::{
    common::v1::WatchEventsRequest,
    registry::v1::{
        ChangeStatusRequest, CreateProjectRequest, Funding, GetProjectRequest, ListVersionsRequest,
        Project, ProjectDetails, ProjectKind, ProjectStatus, UpdateProjectRequest,
    },
};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::{TestApp, authed};

pub const TOWN: &str = "450923100";
pub const VILLAGE: &str = "450923100201";
pub const ROADS_DEPARTMENT: &str = "博白县交通运输局";

/// A road in 金丰村 (博白镇), approved at 100,000 yuan: 60% central, 40% county.
pub fn road(code: &str) -> CreateProjectRequest {
    CreateProjectRequest {
        code: code.to_owned(),
        details: Some(ProjectDetails {
            name: "金丰村屯级道路硬化".to_owned(),
            kind: ProjectKind::Roads as i32,
            town_code: TOWN.to_owned(),
            village_code: VILLAGE.to_owned(),
            year: 2026,
            funding: Some(Funding {
                central_fen: 6_000_000,
                county_fen: 4_000_000,
                ..Funding::default()
            }),
            approved_fen: 10_000_000,
            disbursed_fen: 0,
            contractor: "博白县路桥工程有限公司".to_owned(),
            department: ROADS_DEPARTMENT.to_owned(),
            officer: "李建国".to_owned(),
            planned_start: "2026-03-01".to_owned(),
            planned_end: "2026-09-30".to_owned(),
            beneficiary_households: 120,
            ..ProjectDetails::default()
        }),
    }
}

pub async fn create(
    app: &TestApp,
    request: CreateProjectRequest,
    token: &str,
) -> Result<Project, tonic::Status> {
    app.registry()
        .create_project(authed(request, token))
        .await
        .map(tonic::Response::into_inner)
}

pub async fn update(
    app: &TestApp,
    project: &Project,
    change: impl FnOnce(&mut ProjectDetails),
    token: &str,
) -> Result<Project, tonic::Status> {
    let mut details = project.details.clone().unwrap();
    change(&mut details);
    let request = UpdateProjectRequest {
        code: project.code.clone(),
        expected_version: project.version,
        details: Some(details),
    };
    app.registry()
        .update_project(authed(request, token))
        .await
        .map(tonic::Response::into_inner)
}

pub async fn set_status(
    app: &TestApp,
    project: &Project,
    status: ProjectStatus,
    token: &str,
) -> Result<Project, tonic::Status> {
    let request = ChangeStatusRequest {
        code: project.code.clone(),
        expected_version: project.version,
        status: status as i32,
        reason: "村民会议决定".to_owned(),
        date: "2026-04-01".to_owned(),
    };
    app.registry()
        .change_status(authed(request, token))
        .await
        .map(tonic::Response::into_inner)
}

pub fn admin(app: &TestApp) -> String {
    app.token(Role::Admin, None)
}

#[tokio::test]
async fn a_town_officer_creates_a_planned_project_in_their_town() {
    let app = TestApp::spawn().await;
    let town = app.token(Role::Town, Some(TOWN));

    let created = create(&app, road("BB-2026-001"), &town).await.unwrap();
    let read = app
        .registry()
        .get_project(authed(
            GetProjectRequest {
                code: "BB-2026-001".into(),
            },
            &app.token(Role::Auditor, None),
        ))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(created.status, ProjectStatus::Planned as i32);
    assert_eq!(created.version, 1);
    assert_eq!(read, created);
    assert_eq!(read.details, road("").details);
    let again = create(&app, road("BB-2026-001"), &town).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn every_legal_status_change_is_made() {
    let app = TestApp::spawn().await;
    let token = admin(&app);
    let mut project = create(&app, road("BB-1"), &token).await.unwrap();

    for status in [
        ProjectStatus::Approved,
        ProjectStatus::UnderConstruction,
        ProjectStatus::Accepted,
    ] {
        project = set_status(&app, &project, status, &token).await.unwrap();
        assert_eq!(project.status, status as i32);
    }
    let mut cancelled = Vec::new();
    for (code, steps) in [("BB-2", 0), ("BB-3", 1), ("BB-4", 2)] {
        let mut p = create(&app, road(code), &token).await.unwrap();
        for status in [ProjectStatus::Approved, ProjectStatus::UnderConstruction]
            .into_iter()
            .take(steps)
        {
            p = set_status(&app, &p, status, &token).await.unwrap();
        }
        cancelled.push(
            set_status(&app, &p, ProjectStatus::Cancelled, &token)
                .await
                .unwrap()
                .status,
        );
    }

    assert_eq!(project.version, 4);
    let details = project.details.unwrap();
    assert_eq!(
        (details.actual_start.as_str(), details.actual_end.as_str()),
        ("2026-04-01", "2026-04-01")
    );
    assert_eq!(cancelled, [ProjectStatus::Cancelled as i32; 3]);
}

#[tokio::test]
async fn every_illegal_status_change_is_refused_naming_both_states() {
    let app = TestApp::spawn().await;
    let token = admin(&app);
    let planned = create(&app, road("P"), &token).await.unwrap();
    let mut accepted = create(&app, road("A"), &token).await.unwrap();
    for status in [
        ProjectStatus::Approved,
        ProjectStatus::UnderConstruction,
        ProjectStatus::Accepted,
    ] {
        accepted = set_status(&app, &accepted, status, &token).await.unwrap();
    }
    let cancelled = create(&app, road("C"), &token).await.unwrap();
    let cancelled = set_status(&app, &cancelled, ProjectStatus::Cancelled, &token)
        .await
        .unwrap();

    let cases = [
        (
            &accepted,
            ProjectStatus::UnderConstruction,
            "项目状态不能从「已验收」改为「在建」",
        ),
        (
            &accepted,
            ProjectStatus::Cancelled,
            "项目状态不能从「已验收」改为「已取消」",
        ),
        (
            &cancelled,
            ProjectStatus::Approved,
            "项目状态不能从「已取消」改为「已批复」",
        ),
        (
            &planned,
            ProjectStatus::UnderConstruction,
            "项目状态不能从「计划」改为「在建」",
        ),
        (
            &planned,
            ProjectStatus::Accepted,
            "项目状态不能从「计划」改为「已验收」",
        ),
        (
            &planned,
            ProjectStatus::Planned,
            "项目状态不能从「计划」改为「计划」",
        ),
    ];
    for (project, to, message) in cases {
        let refused = set_status(&app, project, to, &token).await.unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition, "{message}");
        assert_eq!(refused.message(), message);
    }
}

#[tokio::test]
async fn staff_outside_their_scope_are_refused() {
    let app = TestApp::spawn().await;
    let project = create(&app, road("BB-1"), &admin(&app)).await.unwrap();
    let other_town = app.token(Role::Town, Some("450923101"));
    let other_department = app.token(Role::Department, Some("博白县水利局"));
    let own_department = app.token(Role::Department, Some(ROADS_DEPARTMENT));
    let auditor = app.token(Role::Auditor, None);

    let create_elsewhere = create(&app, road("BB-2"), &other_town).await.unwrap_err();
    let update_elsewhere = update(
        &app,
        &project,
        |d| d.contractor = "某公司".into(),
        &other_department,
    )
    .await
    .unwrap_err();
    let moved_into_scope = update(
        &app,
        &project,
        |d| {
            d.town_code = "450923101".into();
            d.village_code = "450923101201".into();
        },
        &other_town,
    )
    .await
    .unwrap_err();
    let status_elsewhere = set_status(&app, &project, ProjectStatus::Approved, &other_town)
        .await
        .unwrap_err();
    let auditor_writes = set_status(&app, &project, ProjectStatus::Approved, &auditor)
        .await
        .unwrap_err();
    let read_elsewhere = app
        .registry()
        .list_versions(authed(
            ListVersionsRequest {
                code: "BB-1".into(),
            },
            &other_town,
        ))
        .await
        .unwrap_err();
    let own = set_status(&app, &project, ProjectStatus::Approved, &own_department).await;

    for refused in [
        &create_elsewhere,
        &update_elsewhere,
        &moved_into_scope,
        &status_elsewhere,
        &auditor_writes,
        &read_elsewhere,
    ] {
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    }
    assert!(own.is_ok(), "{own:?}");
}

#[tokio::test]
async fn every_change_is_kept_as_a_version_with_who_and_what() {
    let app = TestApp::spawn().await;
    let town = app.token(Role::Town, Some(TOWN));
    let department = app.token(Role::Department, Some(ROADS_DEPARTMENT));
    let v1 = create(&app, road("BB-1"), &admin(&app)).await.unwrap();
    let v2 = update(
        &app,
        &v1,
        |d| {
            d.contractor = "玉林市公路建设公司".into();
            d.disbursed_fen = 3_000_000;
        },
        &town,
    )
    .await
    .unwrap();
    let v3 = set_status(&app, &v2, ProjectStatus::Approved, &department)
        .await
        .unwrap();

    let stale = update(&app, &v2, |d| d.beneficiary_households = 130, &town)
        .await
        .unwrap_err();
    let versions = app
        .registry()
        .list_versions(authed(
            ListVersionsRequest {
                code: "BB-1".into(),
            },
            &app.token(Role::Auditor, None),
        ))
        .await
        .unwrap()
        .into_inner()
        .versions;

    assert_eq!(stale.code(), Code::Aborted);
    assert_eq!(v3.version, 3);
    let summary: Vec<(i64, &str, &str, &str)> = versions
        .iter()
        .map(|v| {
            (
                v.version,
                v.staff.as_str(),
                v.role.as_str(),
                v.action.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (3, "test-department", "department", "status_changed"),
            (2, "test-town", "town", "updated"),
            (1, "test-admin", "admin", "created"),
        ]
    );
    let update: Vec<(&str, &str, &str)> = versions[1]
        .changes
        .iter()
        .map(|c| (c.field.as_str(), c.old_json.as_str(), c.new_json.as_str()))
        .collect();
    assert_eq!(
        update,
        [
            (
                "contractor",
                "\"博白县路桥工程有限公司\"",
                "\"玉林市公路建设公司\""
            ),
            ("disbursed_fen", "0", "3000000"),
        ]
    );
    assert_eq!(versions[0].changes[0].field, "status");
    assert_eq!(versions[0].note, "村民会议决定");
    assert!(versions[2].changes.len() > 10, "creation lists every field");
}

#[tokio::test]
async fn disbursing_more_than_approved_is_refused_with_a_clear_error() {
    let app = TestApp::spawn().await;
    let token = admin(&app);
    let project = create(&app, road("BB-1"), &token).await.unwrap();

    let refused = update(&app, &project, |d| d.disbursed_fen = 10_000_001, &token)
        .await
        .unwrap_err();

    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        refused.message(),
        "拨付金额（100000.01元）不能超过批复金额（100000.00元）"
    );
    let violations = refused.get_details_bad_request().unwrap().field_violations;
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].field, "disbursed_fen");
    let read = app
        .registry()
        .get_project(authed(
            GetProjectRequest {
                code: "BB-1".into(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((read.version, read.details.unwrap().disbursed_fen), (1, 0));
}

#[tokio::test]
async fn wrong_money_dates_and_places_are_refused_field_by_field() {
    let app = TestApp::spawn().await;
    let token = admin(&app);
    let with = |change: fn(&mut ProjectDetails)| {
        let mut request = road("BB-1");
        change(request.details.as_mut().unwrap());
        request
    };
    type Change = fn(&mut ProjectDetails);
    let cases: [(Change, &str, &str); 6] = [
        (
            |d| d.village_code = "450923101201".into(),
            "village_code",
            "该村不属于所选乡镇",
        ),
        (
            |d| d.village_code = "450923100999".into(),
            "village_code",
            "村代码不存在或不属于该乡镇",
        ),
        (
            |d| {
                d.town_code = "450923999".into();
                d.village_code.clear();
            },
            "town_code",
            "乡镇代码不存在",
        ),
        (
            |d| d.planned_end = "2026-02-01".into(),
            "planned_end",
            "计划完工日期不能早于计划开工日期",
        ),
        (
            |d| d.funding.as_mut().unwrap().other_fen = 100,
            "funding",
            "各来源资金合计（100001.00元）应等于批复金额（100000.00元）",
        ),
        (
            |d| d.planned_start = "2026-02-30".into(),
            "planned_start",
            "日期应为2000至2100年间的有效日期，如2026-03-01",
        ),
    ];

    for (change, field, message) in cases {
        let refused = create(&app, with(change), &token).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{field}");
        let violations = refused.get_details_bad_request().unwrap().field_violations;
        let found: Vec<(&str, &str)> = violations
            .iter()
            .map(|v| (v.field.as_str(), v.description.as_str()))
            .collect();
        assert_eq!(found, [(field, message)]);
    }
    let whole_town = create(&app, with(|d| d.village_code.clear()), &token).await;
    assert!(whole_town.is_ok(), "{whole_town:?}");
}

#[tokio::test]
async fn creation_status_changes_and_disbursements_are_announced() {
    let app = TestApp::spawn().await;
    let token = admin(&app);
    let project = create(&app, road("BB-1"), &token).await.unwrap();
    let project = update(&app, &project, |d| d.disbursed_fen = 2_500_000, &token)
        .await
        .unwrap();
    set_status(&app, &project, ProjectStatus::Approved, &token)
        .await
        .unwrap();

    let mut events = app
        .registry()
        .watch_events(authed(
            WatchEventsRequest::default(),
            &app.token(Role::Provincial, None),
        ))
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = events.message().await.unwrap().unwrap();
        let payload: serde_json::Value = serde_json::from_str(&event.payload_json).unwrap();
        seen.push((event.kind, payload));
    }

    let kinds: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "project.created",
            "project.funds_disbursed",
            "project.status_changed"
        ]
    );
    assert_eq!(seen[0].1["village_code"], VILLAGE);
    assert_eq!(seen[1].1["delta_fen"], 2_500_000);
    assert_eq!(seen[1].1["approved_fen"], 10_000_000);
    assert_eq!(
        (&seen[2].1["from"], &seen[2].1["to"]),
        (&"planned".into(), &"approved".into())
    );
}
