//! WeChat bindings: bind, resolve, unbind, refusals and lockout.

use crate::helpers::app_with_residents;
use huimin_kit::auth::Role;
use huimin_proto::identity::v1::{BindOpenIdRequest, ResolveOpenIdRequest, UnbindOpenIdRequest};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::{Resident, TestApp, authed, import_persons, persons_csv};

async fn bind(
    app: &TestApp,
    openid: &str,
    id_number: &str,
    name: &str,
) -> Result<huimin_proto::identity::v1::BindOpenIdResponse, tonic::Status> {
    let request = BindOpenIdRequest {
        openid: openid.to_owned(),
        id_number: id_number.to_owned(),
        name: name.to_owned(),
    };
    app.identity()
        .bind_open_id(authed(request, &app.token(Role::Gateway, None)))
        .await
        .map(tonic::Response::into_inner)
}

async fn resolve(
    app: &TestApp,
    openid: &str,
) -> Result<Vec<huimin_proto::identity::v1::BoundPerson>, tonic::Status> {
    let request = ResolveOpenIdRequest {
        openid: openid.to_owned(),
    };
    app.identity()
        .resolve_open_id(authed(request, &app.token(Role::Gateway, None)))
        .await
        .map(|r| r.into_inner().persons)
}

#[tokio::test]
async fn bound_openid_resolves_to_the_person_with_masked_id() {
    let (app, people) = app_with_residents().await;
    let grandmother = &people[0];

    let bound = bind(
        &app,
        "oWx-grandma",
        grandmother.id_number.expose(),
        &grandmother.name,
    )
    .await
    .unwrap();
    let persons = resolve(&app, "oWx-grandma").await.unwrap();

    assert_eq!(bound.remaining_slots, 5);
    assert_eq!(persons.len(), 1);
    assert_eq!(persons[0].name, "庞秀英");
    assert_eq!(persons[0].household_code, "H-0001");
    assert_eq!(persons[0].id_number_masked, grandmother.id_number.masked());
    assert_eq!(persons[0].person_key, bound.person.unwrap().person_key);
}

#[tokio::test]
async fn a_family_binds_several_members_to_one_openid() {
    let (app, people) = app_with_residents().await;
    for person in &people[..2] {
        bind(&app, "oWx-family", person.id_number.expose(), &person.name)
            .await
            .unwrap();
    }
    // Binding the same person again changes nothing.
    bind(
        &app,
        "oWx-family",
        people[0].id_number.expose(),
        &people[0].name,
    )
    .await
    .unwrap();

    let names: Vec<String> = resolve(&app, "oWx-family")
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["庞秀英", "陈志强"]);
}

#[tokio::test]
async fn wrong_name_is_invalid_argument_naming_the_field() {
    let (app, people) = app_with_residents().await;

    let status = bind(&app, "oWx-1", people[0].id_number.expose(), "庞秀兰")
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("身份证号与姓名不匹配"),
        "{}",
        status.message()
    );
    let violations = status
        .get_details_bad_request()
        .expect("bad request details")
        .field_violations;
    assert_eq!(violations[0].field, "name");
}

#[tokio::test]
async fn bad_check_digit_is_invalid_argument_saying_so() {
    let (app, people) = app_with_residents().await;
    let mut wrong = people[0].id_number.expose().to_owned();
    let last = if wrong.ends_with('0') { '1' } else { '0' };
    wrong.pop();
    wrong.push(last);

    let status = bind(&app, "oWx-2", &wrong, &people[0].name)
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = status
        .get_details_bad_request()
        .expect("bad request details")
        .field_violations;
    assert_eq!(violations[0].field, "id_number");
    assert!(
        violations[0].description.contains("校验位"),
        "{}",
        violations[0].description
    );
}

#[tokio::test]
async fn unknown_openid_is_not_found() {
    let (app, _) = app_with_residents().await;
    let status = resolve(&app, "oWx-nobody").await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn repeated_failed_binds_lock_the_openid_but_not_others() {
    let (app, people) = app_with_residents().await;
    let person = &people[0];
    for _ in 0..huimin_identity::bindings::MAX_FAILURES {
        let status = bind(&app, "oWx-prober", person.id_number.expose(), "王五")
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
    }

    let locked = bind(&app, "oWx-prober", person.id_number.expose(), &person.name)
        .await
        .unwrap_err();
    let other = bind(&app, "oWx-honest", person.id_number.expose(), &person.name).await;

    assert_eq!(locked.code(), Code::ResourceExhausted);
    assert!(other.is_ok(), "another openid is not locked: {other:?}");
}

#[tokio::test]
async fn many_openids_guessing_one_persons_name_are_throttled() {
    let (app, people) = app_with_residents().await;
    let person = &people[0];
    for i in 0..huimin_identity::bindings::MAX_PERSON_FAILURES {
        let status = bind(
            &app,
            &format!("oWx-guesser-{i}"),
            person.id_number.expose(),
            "王五",
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
    }

    let right_guess = bind(
        &app,
        "oWx-guesser-last",
        person.id_number.expose(),
        &person.name,
    )
    .await
    .unwrap_err();
    let other_person = bind(
        &app,
        "oWx-guesser-last",
        people[1].id_number.expose(),
        &people[1].name,
    )
    .await;

    assert_eq!(
        right_guess.code(),
        Code::ResourceExhausted,
        "failures are counted per person, whatever the openid"
    );
    assert!(
        other_person.is_ok(),
        "other persons are not locked: {other_person:?}"
    );
}

#[tokio::test]
async fn a_family_at_its_binding_limit_cannot_tell_a_right_guess_from_a_wrong_one() {
    let (app, family) = six_bound_of_seven("oWx-full").await;

    let wrong = bind(&app, "oWx-full", family[6].id_number.expose(), "王五")
        .await
        .unwrap_err();
    let right = bind(
        &app,
        "oWx-full",
        family[6].id_number.expose(),
        &family[6].name,
    )
    .await
    .unwrap_err();

    assert_eq!(
        wrong.code(),
        Code::FailedPrecondition,
        "the limit is checked before the name"
    );
    assert_eq!(right.code(), wrong.code());
    assert_eq!(right.message(), wrong.message());
}

/// A household of seven, one more than an openid may bind, the first six
/// bound to `openid`.
async fn six_bound_of_seven(openid: &str) -> (TestApp, Vec<Resident>) {
    let app = TestApp::spawn().await;
    let family = big_family();
    import_persons(&app, persons_csv(&family).as_bytes())
        .await
        .unwrap();
    for person in &family[..6] {
        bind(&app, openid, person.id_number.expose(), &person.name)
            .await
            .unwrap();
    }
    (app, family)
}

fn big_family() -> Vec<Resident> {
    let born = chrono::NaiveDate::from_ymd_opt(1960, 1, 1).unwrap();
    (0..7u16)
        .map(|i| Resident {
            household: "H-BIG".to_owned(),
            name: format!(
                "李{}",
                ["一", "二", "三", "四", "五", "六", "七"][usize::from(i)]
            ),
            id_number: huimin_kit::pii::IdNumber::from_parts("450923", born, 100 + i),
            relation: if i == 0 { "户主" } else { "子" }.to_owned(),
            village: "450923100201".to_owned(),
        })
        .collect()
}

#[tokio::test]
async fn an_openid_binds_at_most_six_persons() {
    let (app, family) = six_bound_of_seven("oWx-big").await;

    let status = bind(
        &app,
        "oWx-big",
        family[6].id_number.expose(),
        &family[6].name,
    )
    .await
    .unwrap_err();

    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(resolve(&app, "oWx-big").await.unwrap().len(), 6);
}

#[tokio::test]
async fn unbind_removes_the_binding_even_when_cached() {
    let (app, people) = app_with_residents().await;
    bind(&app, "oWx-3", people[2].id_number.expose(), &people[2].name)
        .await
        .unwrap();
    resolve(&app, "oWx-3").await.unwrap(); // fills the cache

    let request = UnbindOpenIdRequest {
        openid: "oWx-3".to_owned(),
        person_key: String::new(),
    };
    let removed = app
        .identity()
        .unbind_open_id(authed(request, &app.token(Role::Gateway, None)))
        .await
        .unwrap()
        .into_inner()
        .removed;

    assert_eq!(removed, 1);
    assert_eq!(
        resolve(&app, "oWx-3").await.unwrap_err().code(),
        Code::NotFound
    );
}
