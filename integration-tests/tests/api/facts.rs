//! Reference datasets (比对数据): files of every kind imported into identity, all or
//! nothing, idempotent per file, corrections in place, household history from persons
//! imports, and the stream of facts in version order.

use std::collections::HashMap;

use huimin_kit::auth::Role;
use huimin_proto::identity::v1::{
    ImportFactsChunk, ImportFactsResponse, PersonFact, StreamPersonFactsRequest,
};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::{
    helpers::{Resident, TestApp, app_with_residents, authed, import_persons, logs, persons_csv},
    ledger_import::person_key,
};

/// Sends a dataset file as `role`, in small chunks as a client would.
async fn send(
    app: &TestApp,
    role: Role,
    kind: &str,
    file_name: &str,
    bytes: &[u8],
) -> Result<ImportFactsResponse, tonic::Status> {
    let chunks: Vec<ImportFactsChunk> = bytes
        .chunks(512)
        .enumerate()
        .map(|(i, data)| {
            let first = |text: &str| {
                if i == 0 {
                    text.to_owned()
                } else {
                    String::new()
                }
            };
            ImportFactsChunk {
                file_name: first(file_name),
                kind: first(kind),
                source_department: first("博白县公安局"),
                data: data.to_vec(),
            }
        })
        .collect();
    let request = authed(tokio_stream::iter(chunks), &app.token(role, None));
    app.identity()
        .import_facts(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn import(
    app: &TestApp,
    kind: &str,
    text: &str,
) -> Result<ImportFactsResponse, tonic::Status> {
    send(app, Role::Admin, kind, "facts.csv", text.as_bytes()).await
}

/// Every fact after `after`, as ledger reads them.
async fn stream(app: &TestApp, after: i64) -> Vec<PersonFact> {
    let request = authed(
        StreamPersonFactsRequest {
            after_version: after,
        },
        &app.service_token("ledger"),
    );
    let mut stream = app
        .identity()
        .stream_person_facts(request)
        .await
        .unwrap()
        .into_inner();
    let mut facts = Vec::new();
    while let Some(fact) = stream.message().await.unwrap() {
        facts.push(fact);
    }
    facts
}

/// The streamed facts of one kind.
async fn of_kind(app: &TestApp, kind: &str) -> Vec<PersonFact> {
    stream(app, 0)
        .await
        .into_iter()
        .filter(|f| f.kind == kind)
        .collect()
}

async fn imports(app: &TestApp) -> i64 {
    let mut db = app.db().await;
    sqlx::query_scalar("SELECT count(*) FROM fact_imports")
        .fetch_one(&mut db)
        .await
        .unwrap()
}

fn id(person: &Resident) -> &str {
    person.id_number.expose()
}

fn attrs(fact: &PersonFact) -> Vec<(&str, &str)> {
    let mut attrs: Vec<(&str, &str)> = fact
        .attrs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    attrs.sort_unstable();
    attrs
}

/// One file of every kind, each row about a registered resident.
fn every_kind(people: &[Resident]) -> Vec<(&'static str, String)> {
    let (a, b, c) = (&people[0], &people[1], &people[2]);
    vec![
        (
            "deceased",
            format!(
                "姓名,身份证号,死亡日期,信息来源\n{},{},2024-03-05,火化记录\n",
                a.name,
                id(a)
            ),
        ),
        (
            "public_employee",
            format!(
                "姓名,身份证号,工作单位,起始日期,终止日期\n{},{},博白县教育局,2015/9/1,\n",
                b.name,
                id(b)
            ),
        ),
        (
            "village_cadre",
            format!(
                "姓名,身份证号,村代码,职务,任职起始,任职终止\n{},{},450923106201,村委会主任,20180101,\n",
                b.name,
                id(b)
            ),
        ),
        (
            "cadre_relative",
            format!(
                "干部身份证号,亲属姓名,亲属身份证号,关系\n{},{},{},母亲\n",
                id(b),
                a.name,
                id(a)
            ),
        ),
        (
            "vehicle_owner",
            format!(
                "姓名,身份证号,号牌号码,车辆类型,登记日期\n{},{},桂K12345,小型汽车,2020-05-06\n",
                c.name,
                id(c)
            ),
        ),
        (
            "company_owner",
            format!(
                "姓名,身份证号,企业名称,统一社会信用代码,身份,成立日期\n{},{},博白县绿源商贸有限公司,91450923MA5K00001A,法定代表人,2019-07-01\n",
                c.name,
                id(c)
            ),
        ),
        (
            "property_owner",
            format!(
                "姓名,身份证号,坐落,建筑面积,登记日期\n{},{},博白镇城南路12号,186.5,2022-01-02\n",
                c.name,
                id(c)
            ),
        ),
        (
            "moved_out",
            format!(
                "姓名,身份证号,迁出日期,迁往地\n{},{},2023-08-01,广东省广州市\n",
                b.name,
                id(b)
            ),
        ),
    ]
}

#[tokio::test]
async fn every_kinds_headers_are_accepted_and_stream_with_their_attrs() {
    let (app, people) = app_with_residents().await;

    for (kind, text) in every_kind(&people) {
        let summary = import(&app, kind, &text).await.unwrap();
        assert_eq!((summary.rows, summary.inserted), (1, 1), "{kind}");
    }

    let facts = stream(&app, 0).await;
    let by_kind: HashMap<&str, &PersonFact> = facts.iter().map(|f| (f.kind.as_str(), f)).collect();
    let cadre_key = &by_kind["village_cadre"].person_key;
    assert_eq!(attrs(by_kind["deceased"]), [("source_text", "火化记录")]);
    assert_eq!(
        attrs(by_kind["public_employee"]),
        [("employer", "博白县教育局")]
    );
    assert_eq!(
        attrs(by_kind["village_cadre"]),
        [("post", "村委会主任"), ("village_code", "450923106201")]
    );
    assert_eq!(
        attrs(by_kind["cadre_relative"]),
        [("cadre_key", cadre_key.as_str()), ("relation", "母亲")]
    );
    assert_ne!(&by_kind["cadre_relative"].person_key, cadre_key);
    assert_eq!(
        attrs(by_kind["vehicle_owner"]),
        [("plate", "桂K12345"), ("vehicle_type", "小型汽车")]
    );
    assert_eq!(
        attrs(by_kind["company_owner"]),
        [
            ("company", "博白县绿源商贸有限公司"),
            ("credit_code", "91450923MA5K00001A"),
            ("role", "法定代表人")
        ]
    );
    assert_eq!(
        attrs(by_kind["property_owner"]),
        [("area_centi_m2", "18650"), ("location", "博白镇城南路12号")]
    );
    assert_eq!(
        attrs(by_kind["moved_out"]),
        [("destination", "广东省广州市")]
    );
    assert_eq!(by_kind["public_employee"].source, "博白县公安局");
    assert_eq!(by_kind["public_employee"].since, "2015-09-01");
    assert_eq!(by_kind["public_employee"].until, "");
    assert_eq!(by_kind["born"].source, "户籍登记");
    assert_eq!(imports(&app).await, 8);
}

#[tokio::test]
async fn a_gbk_csv_and_an_xlsx_with_date_cells_import() {
    let (app, people) = app_with_residents().await;
    let csv = format!(
        "姓名,身份证号,迁出日期,迁往地\n{},{},2023-08-01,广东省东莞市\n",
        people[1].name,
        id(&people[1])
    );
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&csv);
    assert!(!unmappable);
    let xlsx = {
        use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
        let mut book = Workbook::new();
        let sheet = book.add_worksheet();
        // Column order is free: the headers say what each column is.
        for (col, title) in ["登记日期", "车辆类型", "号牌号码", "身份证号", "姓名"]
            .iter()
            .enumerate()
        {
            sheet
                .write_string(0, u16::try_from(col).unwrap(), *title)
                .unwrap();
        }
        let date = ExcelDateTime::from_ymd(2021, 4, 9).unwrap();
        sheet
            .write_datetime_with_format(1, 0, &date, &Format::new().set_num_format("yyyy/m/d"))
            .unwrap();
        sheet.write_string(1, 1, "摩托车").unwrap();
        sheet.write_string(1, 2, "桂K6789A").unwrap();
        sheet.write_string(1, 3, id(&people[2])).unwrap();
        sheet.write_string(1, 4, &people[2].name).unwrap();
        book.save_to_buffer().unwrap()
    };

    let moved = send(&app, Role::Admin, "moved_out", "迁出.csv", &gbk)
        .await
        .unwrap();
    let vehicles = send(&app, Role::Admin, "vehicle_owner", "车辆.xlsx", &xlsx)
        .await
        .unwrap();

    assert_eq!((moved.inserted, vehicles.inserted), (1, 1));
    let moved = of_kind(&app, "moved_out").await;
    assert_eq!(attrs(&moved[0]), [("destination", "广东省东莞市")]);
    let vehicle = &of_kind(&app, "vehicle_owner").await[0];
    assert_eq!(vehicle.since, "2021-04-09");
    assert_eq!(
        attrs(vehicle),
        [("plate", "桂K6789A"), ("vehicle_type", "摩托车")]
    );
}

#[tokio::test]
async fn a_bad_row_is_named_by_row_and_column_and_nothing_is_written() {
    let (app, people) = app_with_residents().await;
    let text = format!(
        "姓名,身份证号,工作单位,起始日期,终止日期\n\
         {},{},博白县教育局,2015-09-01,\n\
         {},{},博白县财政局,2016-02-30,\n\
         {},{},博白县卫健局,2020-01-01,2019-01-01\n",
        people[0].name,
        id(&people[0]),
        people[1].name,
        id(&people[1]),
        people[2].name,
        id(&people[2]),
    );

    let status = import(&app, "public_employee", &text).await.unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument);
    let violations: Vec<(String, String)> = status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect();
    assert_eq!(violations[0].0, "第3行/起始日期");
    assert_eq!(
        violations[1],
        (
            "第4行/终止日期".to_owned(),
            "终止日期早于起始日期".to_owned()
        )
    );
    assert!(of_kind(&app, "public_employee").await.is_empty());
    assert_eq!(imports(&app).await, 0);
}

#[tokio::test]
async fn a_name_that_is_not_the_registers_is_a_problem_of_its_row() {
    let (app, people) = app_with_residents().await;
    let text = format!(
        "姓名,身份证号,死亡日期,信息来源\n{},{},2024-03-05,火化记录\n错名字,{},2024-03-05,火化记录\n",
        people[0].name,
        id(&people[0]),
        id(&people[1]),
    );

    let status = import(&app, "deceased", &text).await.unwrap_err();

    let violation = &status.get_details_bad_request().unwrap().field_violations[0];
    assert_eq!(violation.field, "第3行/姓名");
    assert_eq!(violation.description, "与户籍登记的姓名不一致");
    assert!(of_kind(&app, "deceased").await.is_empty());
}

#[tokio::test]
async fn an_unknown_kind_and_a_missing_column_are_refused() {
    let (app, people) = app_with_residents().await;
    let text = format!("姓名,身份证号\n{},{}\n", people[0].name, id(&people[0]));

    let kind = import(&app, "pension", &text).await.unwrap_err();
    let column = import(&app, "deceased", &text).await.unwrap_err();

    assert_eq!(kind.code(), Code::InvalidArgument);
    assert_eq!(
        kind.get_details_bad_request().unwrap().field_violations[0].field,
        "kind"
    );
    let fields: Vec<String> = column
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["第1行/死亡日期", "第1行/信息来源"]);
}

#[tokio::test]
async fn rows_of_persons_not_in_the_register_are_counted_and_kept_out() {
    let (app, people) = app_with_residents().await;
    let stranger = huimin_kit::pii::IdNumber::from_parts(
        "450923",
        chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
        17,
    );
    let text = format!(
        "干部身份证号,亲属姓名,亲属身份证号,关系\n{},{},{},母亲\n{},{},{},配偶\n{},某人,{},子\n",
        id(&people[1]),
        people[0].name,
        id(&people[0]),
        stranger.expose(),
        people[2].name,
        id(&people[2]),
        id(&people[1]),
        stranger.expose(),
    );

    let summary = import(&app, "cadre_relative", &text).await.unwrap();

    assert_eq!(
        (summary.rows, summary.inserted, summary.not_in_register),
        (3, 1, 2)
    );
    assert_eq!(of_kind(&app, "cadre_relative").await.len(), 1);
}

#[tokio::test]
async fn a_correction_updates_the_fact_in_place_under_a_new_version() {
    let (app, people) = app_with_residents().await;
    let cadre = |until: &str| {
        format!(
            "姓名,身份证号,村代码,职务,任职起始,任职终止\n{},{},450923106201,村委会主任,2018-01-01,{until}\n",
            people[1].name,
            id(&people[1])
        )
    };
    import(&app, "village_cadre", &cadre("")).await.unwrap();
    let before = of_kind(&app, "village_cadre").await.remove(0);

    let corrected = import(&app, "village_cadre", &cadre("2021-01-15"))
        .await
        .unwrap();
    let again = import(&app, "village_cadre", &format!("{}\n", cadre("2021/1/15")))
        .await
        .unwrap();

    assert_eq!((corrected.inserted, corrected.updated), (0, 1));
    assert_eq!((again.updated, again.unchanged), (0, 1));
    let after = of_kind(&app, "village_cadre").await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].fact_id, before.fact_id);
    assert_eq!(after[0].until, "2021-01-15");
    assert!(after[0].version > before.version);
    assert_eq!(
        stream(&app, before.version).await.len(),
        1,
        "only the correction is new"
    );
}

#[tokio::test]
async fn a_corrected_date_of_death_replaces_the_first() {
    let (app, people) = app_with_residents().await;
    let death = |date: &str| {
        format!(
            "姓名,身份证号,死亡日期,信息来源\n{},{},{date},火化记录\n",
            people[0].name,
            id(&people[0])
        )
    };
    import(&app, "deceased", &death("2024-03-05"))
        .await
        .unwrap();

    let corrected = import(&app, "deceased", &death("2024-02-28"))
        .await
        .unwrap();

    assert_eq!(corrected.updated, 1);
    let deaths = of_kind(&app, "deceased").await;
    assert_eq!(deaths.len(), 1);
    assert_eq!(deaths[0].since, "2024-02-28");
}

#[tokio::test]
async fn the_same_file_imported_twice_writes_nothing_new() {
    let (app, people) = app_with_residents().await;
    let text = every_kind(&people).remove(4).1;
    let first = import(&app, "vehicle_owner", &text).await.unwrap();
    let versions = stream(&app, 0).await;

    let second = import(&app, "vehicle_owner", &text).await.unwrap();

    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(second.import_id, first.import_id);
    assert_eq!(second.inserted, 1, "the earlier import's counts");
    assert_eq!(imports(&app).await, 1);
    assert_eq!(stream(&app, 0).await, versions);
}

#[tokio::test]
async fn the_stream_after_a_version_gives_exactly_the_later_facts_in_order() {
    let (app, people) = app_with_residents().await;
    let files = every_kind(&people);
    import(&app, files[1].0, &files[1].1).await.unwrap();
    let seen = stream(&app, 0).await;
    let last = seen.last().unwrap().version;
    import(&app, files[6].0, &files[6].1).await.unwrap();
    import(&app, files[0].0, &files[0].1).await.unwrap();

    let later = stream(&app, last).await;
    let all = stream(&app, 0).await;

    let kinds: Vec<&str> = later.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, ["property_owner", "deceased"]);
    assert!(all.windows(2).all(|w| w[0].version < w[1].version));
    assert_eq!(all[seen.len()..], later[..]);
    assert_eq!(attrs(&later[0])[0], ("area_centi_m2", "18650"));
}

#[tokio::test]
async fn a_person_moved_to_another_household_has_two_spans() {
    let (app, mut people) = app_with_residents().await;
    people[1].household = "H-0003".to_owned();
    people[1].relation = "户主".to_owned();

    import_persons(&app, persons_csv(&people).as_bytes())
        .await
        .unwrap();

    let key = person_key(&app, &people[1]).await;
    let spans: Vec<PersonFact> = of_kind(&app, "household_member")
        .await
        .into_iter()
        .filter(|f| f.person_key == key)
        .collect();
    let today = huimin_kit::clock::china_today();
    assert_eq!(spans.len(), 2);
    assert_eq!(
        attrs(&spans[0]),
        [("household_code", "H-0001"), ("relation", "子")]
    );
    assert_eq!(spans[0].since, "1972-11-30");
    assert_eq!(
        spans[0].until,
        (today - chrono::Duration::days(1)).to_string()
    );
    assert_eq!(
        attrs(&spans[1]),
        [("household_code", "H-0003"), ("relation", "户主")]
    );
    assert_eq!(
        (spans[1].since.as_str(), spans[1].until.as_str()),
        (today.to_string().as_str(), "")
    );
    let mut db = app.db().await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM household_members")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(rows, 4, "one span each, two for the one who moved");
}

#[tokio::test]
async fn only_admins_import_facts() {
    let (app, people) = app_with_residents().await;
    let text = every_kind(&people).remove(0).1;

    let inspector = send(&app, Role::Inspector, "deceased", "d.csv", text.as_bytes())
        .await
        .unwrap_err();
    let town = send(&app, Role::Town, "deceased", "d.csv", text.as_bytes())
        .await
        .unwrap_err();

    assert_eq!(inspector.code(), Code::PermissionDenied);
    assert_eq!(town.code(), Code::PermissionDenied);
    assert_eq!(imports(&app).await, 0);
}

#[tokio::test]
async fn facts_imports_log_no_id_number_or_name() {
    let logs = logs();
    let app = TestApp::spawn().await;
    let people = vec![Resident {
        household: "H-7001".to_owned(),
        name: "冼梓琪".to_owned(),
        id_number: huimin_kit::pii::IdNumber::from_parts(
            "450923",
            chrono::NaiveDate::from_ymd_opt(1977, 7, 7).unwrap(),
            321,
        ),
        relation: "户主".to_owned(),
        village: "450923100201".to_owned(),
    }];
    import_persons(&app, persons_csv(&people).as_bytes())
        .await
        .unwrap();
    let person = &people[0];
    let good = format!(
        "姓名,身份证号,迁出日期,迁往地\n{},{},2023-08-01,广州\n",
        person.name,
        id(person)
    );
    let wrong_name = format!(
        "姓名,身份证号,迁出日期,迁往地\n禤婉清,{},2023-08-01,广州\n",
        id(person)
    );
    let bad_number = "姓名,身份证号,迁出日期,迁往地\n禤婉清,450923197707073210,2023-08-01,广州\n";

    import(&app, "moved_out", &good).await.unwrap();
    import(&app, "moved_out", &wrong_name).await.unwrap_err();
    import(&app, "moved_out", bad_number).await.unwrap_err();
    stream(&app, 0).await;

    let text = logs.text();
    assert!(text.contains("facts imported"), "logs were captured");
    for secret in [
        id(person),
        &id(person)[..17],
        "450923197707073210",
        "冼梓琪",
        "禤婉清",
    ] {
        assert!(!text.contains(secret), "personal data in the logs");
    }
}

#[tokio::test]
async fn a_bulk_registered_county_streams_in_process_with_its_history_and_property() {
    use huimin_identity::bulk::{Fact, FactKind, Household, PastMembership, Person, Property};
    let app = TestApp::spawn().await;
    let identity = crate::tokens::identity_beside(&app);
    let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let person = |born, seq, relation: &str| Person {
        name: "测试".to_owned(),
        id_number: huimin_kit::pii::IdNumber::from_parts("450923", born, seq),
        relation: relation.to_owned(),
        facts: Vec::new(),
        properties: Vec::new(),
        member_since: None,
        past_households: Vec::new(),
    };
    let village = "450923100201".to_owned();
    let mut parent = person(day(1960, 1, 1), 11, "户主");
    parent.facts.push(Fact {
        kind: FactKind::VehicleOwner,
        since: day(2015, 3, 1),
        detail: "小型汽车 桂K12345".to_owned(),
    });
    let mut son = person(day(1995, 5, 5), 13, "户主");
    son.member_since = Some(day(2020, 6, 1));
    son.past_households.push(PastMembership {
        household_code: "4509231002010001".to_owned(),
        relation: "子".to_owned(),
        since: day(1995, 5, 5),
        until: day(2020, 5, 31),
    });
    son.properties.push(Property {
        since: day(2021, 1, 1),
        location: "博白镇城南路12号".to_owned(),
        area_centi_m2: 18_650,
    });
    let households = vec![
        Household {
            code: "4509231002010001".to_owned(),
            village_code: village.clone(),
            members: vec![parent],
        },
        Household {
            code: "4509231002010002".to_owned(),
            village_code: village,
            members: vec![son],
        },
    ];

    let registered = identity
        .register_county(households.into_iter())
        .await
        .unwrap();
    let first = identity.facts_after(0, 3).await.unwrap();
    let rest = identity.facts_after(first[2].version, 100).await.unwrap();

    assert_eq!(registered.unwrap().facts, 2, "the vehicle and the property");
    let all: Vec<_> = first.iter().chain(&rest).collect();
    let kinds: Vec<&str> = all.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "vehicle_owner",
            "born",
            "household_member",
            "property_owner",
            "born",
            "household_member",
            "household_member"
        ]
    );
    assert!(all.windows(2).all(|w| w[0].version < w[1].version));
    let plate = |f: &huimin_identity::StreamedFact, k: &str| f.attrs.get(k).cloned();
    assert_eq!(plate(all[0], "vehicle_type").as_deref(), Some("小型汽车"));
    assert_eq!(plate(all[3], "area_centi_m2").as_deref(), Some("18650"));
    assert_eq!(
        (all[5].since, all[5].until, plate(all[5], "household_code")),
        (
            day(1995, 5, 5),
            Some(day(2020, 5, 31)),
            Some("4509231002010001".to_owned())
        )
    );
    assert_eq!(
        (all[6].since, all[6].until, plate(all[6], "relation")),
        (day(2020, 6, 1), None, Some("户主".to_owned()))
    );
    assert_eq!(all[0].source, "huimin seed");
}

#[tokio::test]
async fn a_second_move_on_the_same_day_corrects_that_days_span() {
    let (app, mut people) = app_with_residents().await;
    people[1].household = "H-0003".to_owned();
    import_persons(&app, persons_csv(&people).as_bytes())
        .await
        .unwrap();
    people[1].household = "H-0004".to_owned();

    import_persons(&app, persons_csv(&people).as_bytes())
        .await
        .unwrap();

    let key = person_key(&app, &people[1]).await;
    let spans: Vec<PersonFact> = of_kind(&app, "household_member")
        .await
        .into_iter()
        .filter(|f| f.person_key == key)
        .collect();
    let households: Vec<&str> = spans
        .iter()
        .map(|f| f.attrs["household_code"].as_str())
        .collect();
    assert_eq!(households, ["H-0001", "H-0004"]);
    assert_eq!(spans[1].until, "");
}
