use huimin_kit::error::CoreError;

use super::*;

const VILLAGE: &str = "450923100201";
const ID: &str = "11010519491231002X";

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()
}

fn villages() -> HashSet<String> {
    [VILLAGE.to_owned()].into_iter().collect()
}

fn parse(kind: DatasetKind, text: &str) -> Result<Vec<FactRow>, IdentityError> {
    parse_facts(
        kind,
        "facts.csv",
        text.as_bytes(),
        &villages(),
        today(),
        &ImportLimits::default(),
    )
}

fn one(kind: DatasetKind, text: &str) -> FactRow {
    let mut rows = parse(kind, text).expect("valid file");
    assert_eq!(rows.len(), 1);
    rows.remove(0)
}

fn fields(result: Result<Vec<FactRow>, IdentityError>) -> Vec<(String, String)> {
    let Err(IdentityError::Core(CoreError::Invalid { violations, .. })) = result else {
        panic!("expected a report");
    };
    violations
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn attrs(row: &FactRow) -> Vec<(&str, &str)> {
    row.attrs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn deceased_rows_keep_the_source_text() {
    let row = one(
        DatasetKind::Deceased,
        &format!("姓名,身份证号,死亡日期,信息来源\n张三,{ID},2024/3/5,火化记录\n"),
    );
    assert_eq!((row.since, row.until), (date(2024, 3, 5), None));
    assert_eq!(attrs(&row), [("source_text", "火化记录")]);
    assert_eq!(row.name, "张三");
}

#[test]
fn public_employee_rows_may_hold_still() {
    let row = one(
        DatasetKind::PublicEmployee,
        &format!("姓名,身份证号,工作单位,起始日期,终止日期\n张三,{ID},博白县教育局,20150901,\n"),
    );
    assert_eq!((row.since, row.until), (date(2015, 9, 1), None));
    assert_eq!(attrs(&row), [("employer", "博白县教育局")]);
}

#[test]
fn village_cadre_rows_name_village_and_post() {
    let row = one(
        DatasetKind::VillageCadre,
        &format!(
            "姓名,身份证号,村代码,职务,任职起始,任职终止\n张三,{ID},{VILLAGE},村委会主任,2018-01-01,2021-01-01\n"
        ),
    );
    assert_eq!(row.until, Some(date(2021, 1, 1)));
    assert_eq!(
        attrs(&row),
        [("post", "村委会主任"), ("village_code", VILLAGE)]
    );
}

#[test]
fn cadre_relative_rows_are_the_relatives_from_birth() {
    let cadre = IdNumber::from_parts("450923", date(1980, 1, 1), 11);
    let cadre = cadre.expose();
    let row = one(
        DatasetKind::CadreRelative,
        &format!("干部身份证号,亲属姓名,亲属身份证号,关系\n{cadre},张三,{ID},配偶\n"),
    );
    assert_eq!(row.id_number.expose(), ID);
    assert_eq!(row.cadre.as_ref().map(IdNumber::expose), Some(cadre));
    assert_eq!(row.since, date(1949, 12, 31));
    assert_eq!(attrs(&row), [("relation", "配偶")]);
}

#[test]
fn vehicle_owner_rows_keep_plate_and_type() {
    let row = one(
        DatasetKind::VehicleOwner,
        &format!("姓名,身份证号,号牌号码,车辆类型,登记日期\n张三,{ID},桂K12345,摩托车,2020-5-6\n"),
    );
    assert_eq!(row.since, date(2020, 5, 6));
    assert_eq!(
        attrs(&row),
        [("plate", "桂K12345"), ("vehicle_type", "摩托车")]
    );
    assert_eq!(row.detail, "摩托车 桂K12345");
}

#[test]
fn company_owner_rows_keep_company_code_and_role() {
    let row = one(
        DatasetKind::CompanyOwner,
        &format!(
            "姓名,身份证号,企业名称,统一社会信用代码,身份,成立日期\n张三,{ID},博白县绿源商贸有限公司,91450923MA5KXXXX1A,股东,2019年7月1日\n"
        ),
    );
    assert_eq!(row.since, date(2019, 7, 1));
    assert_eq!(
        attrs(&row),
        [
            ("company", "博白县绿源商贸有限公司"),
            ("credit_code", "91450923MA5KXXXX1A"),
            ("role", "股东")
        ]
    );
}

#[test]
fn property_owner_rows_keep_the_area_in_hundredths() {
    let row = one(
        DatasetKind::PropertyOwner,
        &format!(
            "姓名,身份证号,坐落,建筑面积,登记日期\n张三,{ID},博白镇城南路12号,186.5,2022-01-02\n"
        ),
    );
    assert_eq!(
        attrs(&row),
        [("area_centi_m2", "18650"), ("location", "博白镇城南路12号")]
    );
    assert_eq!(row.detail, "博白镇城南路12号，建筑面积186.50平方米");
}

#[test]
fn moved_out_rows_keep_the_destination() {
    let row = one(
        DatasetKind::MovedOut,
        &format!("迁往地,迁出日期,身份证号,姓名\n广东省广州市,2023-08-01,{ID},张三\n"),
    );
    assert_eq!(row.since, date(2023, 8, 1));
    assert_eq!(attrs(&row), [("destination", "广东省广州市")]);
}

#[test]
fn every_kind_lists_its_documented_headers() {
    let listed: Vec<(DatasetKind, &[&str])> = DatasetKind::ALL
        .into_iter()
        .map(|kind| (kind, headers(kind)))
        .collect();
    assert_eq!(
        listed[3].1,
        ["干部身份证号", "亲属姓名", "亲属身份证号", "关系"]
    );
    assert_eq!(
        listed[5].1,
        [
            "姓名",
            "身份证号",
            "企业名称",
            "统一社会信用代码",
            "身份",
            "成立日期"
        ]
    );
    assert_eq!(
        listed[6].1,
        ["姓名", "身份证号", "坐落", "建筑面积", "登记日期"]
    );
    for (kind, headers) in listed {
        let text = format!("{}\n", headers.join(","));
        let problems = fields(parse(kind, &text));
        assert_eq!(
            problems,
            [("file".to_owned(), "文件中没有数据行".to_owned())]
        );
    }
}

#[test]
fn a_missing_column_is_named() {
    let problems = fields(parse(
        DatasetKind::Deceased,
        &format!("姓名,身份证号,信息来源\n张三,{ID},火化记录\n"),
    ));
    assert_eq!(
        problems,
        [("第1行/死亡日期".to_owned(), "缺少列「死亡日期」".to_owned())]
    );
}

#[test]
fn bad_cells_are_named_by_row_and_column_without_their_content() {
    let text = format!(
        "姓名,身份证号,工作单位,起始日期,终止日期\n\
         张三,110105194912310021,博白县教育局,2015-09-01,\n\
         李四,{ID},博白县教育局,2015-13-01,\n\
         王五,{ID},博白县卫健局,2020-01-01,2019-12-31\n\
         赵六,{ID},博白县财政局,2030-01-01,\n"
    );
    let problems = fields(parse(DatasetKind::PublicEmployee, &text));
    let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "第2行/身份证号",
            "第3行/起始日期",
            "第4行/终止日期",
            "第5行/起始日期"
        ]
    );
    assert_eq!(problems[0].1, "身份证号校验位错误，请核对");
    assert_eq!(problems[2].1, "终止日期早于起始日期");
    assert!(problems.iter().all(|(_, m)| !m.contains("11010519")));
}

#[test]
fn the_same_fact_twice_in_a_file_is_a_problem() {
    let text = format!(
        "姓名,身份证号,死亡日期,信息来源\n张三,{ID},2024-03-05,甲\n张三,{ID},2024-03-06,乙\n"
    );
    let problems = fields(parse(DatasetKind::Deceased, &text));
    assert_eq!(
        problems,
        [(
            "第3行/身份证号".to_owned(),
            "与第2行是同一条记录".to_owned()
        )]
    );
}

#[test]
fn an_unknown_village_and_a_bad_area_are_problems() {
    let cadre = format!(
        "姓名,身份证号,村代码,职务,任职起始,任职终止\n张三,{ID},450923999999,主任,2018-01-01,\n"
    );
    assert_eq!(
        fields(parse(DatasetKind::VillageCadre, &cadre))[0].0,
        "第2行/村代码"
    );
    let property =
        format!("姓名,身份证号,坐落,建筑面积,登记日期\n张三,{ID},某路1号,12.345,2022-01-02\n");
    assert_eq!(
        fields(parse(DatasetKind::PropertyOwner, &property))[0].0,
        "第2行/建筑面积"
    );
}

#[test]
fn gbk_files_parse() {
    let text = format!("姓名,身份证号,迁出日期,迁往地\n张三,{ID},2023-08-01,广州\n");
    let (bytes, _, _) = encoding_rs::GBK.encode(&text);
    let rows = parse_facts(
        DatasetKind::MovedOut,
        "迁出.csv",
        &bytes,
        &villages(),
        today(),
        &ImportLimits::default(),
    )
    .unwrap();
    assert_eq!(rows[0].name, "张三");
}

#[test]
fn dates_come_in_the_forms_departments_write() {
    let expected = Some(date(2024, 3, 5));
    for text in [
        "2024-03-05",
        "2024/3/5",
        "20240305",
        "2024.3.5",
        "2024年3月5日",
    ] {
        assert_eq!(
            parse_date(&Cell::String(text.into())),
            Ok(expected),
            "{text}"
        );
    }
    assert_eq!(parse_date(&Cell::Float(20240305.0)), Ok(expected));
    assert_eq!(
        parse_date(&Cell::DateTimeIso("2024-03-05T00:00:00".into())),
        Ok(expected)
    );
    assert_eq!(parse_date(&Cell::String(String::new())), Ok(None));
    for bad in ["2024-02-30", "5/3/2024", "昨天", "18000101"] {
        assert!(parse_date(&Cell::String(bad.into())).is_err(), "{bad}");
    }
}

#[test]
fn areas_are_hundredths_of_a_square_metre() {
    let area = |text: &str| parse_area(&Cell::String(text.into()));
    assert_eq!(area("186.5"), Some(18650));
    assert_eq!(area("186.50㎡"), Some(18650));
    assert_eq!(area("90平方米"), Some(9000));
    assert_eq!(parse_area(&Cell::Float(120.1)), Some(12010));
    for bad in ["", "0", "-5", "1.234", "abc", "1e3"] {
        assert_eq!(area(bad), None, "{bad}");
    }
}
