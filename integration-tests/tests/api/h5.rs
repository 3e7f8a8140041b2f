//! The H5 pages over HTTP against the gateway of a real `serve all`: the
//! OAuth flow (against a local fake of WeChat's two OAuth endpoints), each
//! page, cookie tampering, CSRF, the receipt code shown once, and an
//! anonymous report keeping no openid.

use std::{collections::HashMap, net::SocketAddr};

use axum::{Json, Router, extract::Query, routing::get};
use reqwest::{StatusCode, header};

use crate::{
    helpers::{Options, Resident, TestApp, import_persons, persons_csv, residents},
    rolls::{RollRow, import_csv},
};

/// WeChat's OAuth side, faked: a code `code-OPENID` is exchanged for OPENID.
pub async fn fake_wechat_oauth() -> SocketAddr {
    async fn exchange(Query(query): Query<HashMap<String, String>>) -> Json<serde_json::Value> {
        let code = query.get("code").cloned().unwrap_or_default();
        let secret_ok = query.get("secret").map(String::as_str) == Some("test-appsecret");
        match code.strip_prefix("code-") {
            Some(openid) if secret_ok => Json(serde_json::json!({
                "access_token": "t", "expires_in": 7200, "refresh_token": "r",
                "openid": openid, "scope": "snsapi_base"
            })),
            _ => Json(serde_json::json!({"errcode": 40029, "errmsg": "invalid code"})),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/sns/oauth2/access_token", get(exchange));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// An app whose gateway exchanges OAuth codes at the fake.
pub async fn h5_app(people: &[Resident]) -> TestApp {
    let wechat = fake_wechat_oauth().await;
    let app = TestApp::spawn_with(Options {
        env: vec![
            ("HUIMIN_WECHAT_API_BASE", format!("http://{wechat}")),
            (
                "HUIMIN_WECHAT_OAUTH_BASE",
                "http://open.wechat.test".to_owned(),
            ),
        ],
        ..Options::default()
    })
    .await;
    import_persons(&app, persons_csv(people).as_bytes())
        .await
        .unwrap();
    app
}

/// A phone's browser: keeps cookies by hand so tests can tamper with them,
/// never follows redirects so each hop is checked.
pub struct Phone {
    pub base: String,
    client: reqwest::Client,
    pub cookies: HashMap<String, String>,
}

impl Phone {
    pub fn new(app: &TestApp) -> Self {
        Self {
            base: format!("http://{}", app.http_addrs[0]),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(header::SET_COOKIE) {
            let value = value.to_str().unwrap();
            let (pair, _) = value.split_once(';').unwrap_or((value, ""));
            let (name, v) = pair.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), v.to_owned());
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header(header::COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    pub async fn post_form(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header(header::COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    pub async fn post_multipart(
        &mut self,
        path: &str,
        form: reqwest::multipart::Form,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header(header::COOKIE, self.cookie_header())
            .multipart(form)
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    async fn finish(
        &mut self,
        response: reqwest::Response,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        self.keep(&response);
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap())
    }

    /// Opens `path` as WeChat user `openid`: follows the OAuth redirect
    /// through the fake WeChat and lands back on the page.
    pub async fn sign_in(&mut self, path: &str, openid: &str) -> String {
        let (status, headers, _) = self.get(path).await;
        assert_eq!(status, StatusCode::FOUND, "{path} asks for OAuth first");
        let state = oauth_state(headers[header::LOCATION].to_str().unwrap());
        let (status, headers, _) = self
            .get(&format!("/h5/oauth?code=code-{openid}&state={state}"))
            .await;
        assert_eq!(status, StatusCode::FOUND);
        assert_eq!(headers[header::LOCATION], path);
        let (status, _, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub fn csrf(body: &str) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = body.find(marker).expect("the form carries a CSRF token") + marker.len();
        body[start..].split('"').next().unwrap().to_owned()
    }
}

/// The `state` of WeChat's authorize URL, after checking the URL is WeChat's.
pub fn oauth_state(location: &str) -> String {
    assert!(
        location.starts_with(
            "http://open.wechat.test/connect/oauth2/authorize?appid=wx0123456789abcdef&redirect_uri=http%3A%2F%2F"
        ),
        "{location}"
    );
    assert!(location.contains("%2Fh5%2Foauth&response_type=code&scope=snsapi_base&state="));
    assert!(location.ends_with("#wechat_redirect"), "{location}");
    let state = location
        .split("state=")
        .nth(1)
        .unwrap()
        .trim_end_matches("#wechat_redirect");
    assert!(state.len() <= 128 && state.bytes().all(|b| b.is_ascii_alphanumeric()));
    state.to_owned()
}

/// The smallest valid PNG: 1×1, one grey pixel.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3A, 0x7E, 0x9B,
    0x55, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x60, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x01, 0x48, 0xAF, 0xA4, 0x71, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

#[tokio::test]
async fn a_citizen_signs_in_binds_and_reads_her_payments_in_yuan() {
    let people = residents();
    let app = h5_app(&people).await;
    import_csv(
        &app,
        &[
            RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170"),
            RollRow::pay(&people[1], "DIBAO_RURAL", "2026-07", "170.5"),
        ],
    )
    .await
    .unwrap();
    let mut phone = Phone::new(&app);
    let my = phone.sign_in("/h5/my", "oWx-grandma").await;
    assert!(my.contains("还没有绑定"), "{my}");
    let session = &phone.cookies["hm_session"];
    assert!(!session.is_empty());

    let form = phone.get("/h5/bind").await.2;
    let csrf = Phone::csrf(&form);
    let id = people[0].id_number.expose().to_owned();
    let (status, _, wrong) = phone
        .post_form(
            "/h5/bind",
            &[("csrf", &csrf), ("id_number", &id), ("name", "庞秀")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(wrong.contains("role=\"alert\""), "{wrong}");
    assert!(!wrong.contains(&id), "the ID number is never echoed back");
    let (_, _, bound) = phone
        .post_form(
            "/h5/bind",
            &[
                ("csrf", &csrf),
                ("id_number", &id),
                ("name", &people[0].name),
            ],
        )
        .await;
    assert!(bound.contains("绑定成功"), "{bound}");
    assert!(!bound.contains(&id));

    let (status, headers, my) = phone.get("/h5/my").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert!(my.contains("lang=\"zh-CN\""));
    assert!(my.contains("2026 年"), "{my}");
    assert!(my.contains("170.00"), "{my}");
    assert!(
        my.contains("170.50"),
        "the son's payment, as the household's: {my}"
    );
    assert!(my.contains("全家合计 340.50 元"), "{my}");
    assert!(!my.contains(&id));
}

#[tokio::test]
async fn the_session_cookie_is_signed_httponly_and_lax() {
    let app = h5_app(&residents()).await;
    let mut phone = Phone::new(&app);
    let (_, headers, _) = phone.get("/h5/my").await;
    let oauth_cookie = headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(oauth_cookie.contains("HttpOnly") && oauth_cookie.contains("SameSite=Lax"));
    phone.sign_in("/h5/my", "oWx-someone").await;

    // A session whose payload names another openid, with the old signature.
    let session = phone.cookies["hm_session"].clone();
    let (_, tag) = session.split_once('.').unwrap();
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let forged =
        URL_SAFE_NO_PAD.encode(br#"{"openid":"oWx-victim","csrf":"x","expires":99999999999}"#);
    phone
        .cookies
        .insert("hm_session".into(), format!("{forged}.{tag}"));
    let (status, headers, _) = phone.get("/h5/my").await;
    assert_eq!(status, StatusCode::FOUND, "a forged session is no session");
    assert!(
        headers[header::LOCATION]
            .to_str()
            .unwrap()
            .contains("/connect/oauth2/authorize")
    );
}

#[tokio::test]
async fn an_oauth_callback_without_this_browsers_state_is_refused() {
    let app = h5_app(&residents()).await;
    let mut phone = Phone::new(&app);
    let (_, headers, _) = phone.get("/h5/my").await;
    let state = oauth_state(headers[header::LOCATION].to_str().unwrap());
    let (status, _, body) = phone
        .get("/h5/oauth?code=code-oWx-attacker&state=someotherstate")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("登录未完成"));
    // Another browser (no pre-session) with the right state: refused too.
    let mut other = Phone::new(&app);
    let (status, _, _) = other
        .get(&format!("/h5/oauth?code=code-oWx-attacker&state={state}"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A code WeChat refuses.
    let (status, _, _) = phone
        .get(&format!("/h5/oauth?code=bad&state={state}"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_form_posted_without_the_sessions_csrf_token_is_refused() {
    let people = residents();
    let app = h5_app(&people).await;
    let mut phone = Phone::new(&app);
    phone.sign_in("/h5/bind", "oWx-grandma").await;
    let id = people[0].id_number.expose().to_owned();
    let fields = [
        ("csrf", "not-the-token"),
        ("id_number", id.as_str()),
        ("name", people[0].name.as_str()),
    ];
    let (status, _, body) = phone.post_form("/h5/bind", &fields).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("页面已过期"));
    // No session at all: refused as well.
    let mut stranger = Phone::new(&app);
    let (status, _, _) = stranger
        .post_form("/h5/progress", &[("csrf", ""), ("receipt", "x")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let bindings = app
        .identity()
        .resolve_open_id(crate::helpers::authed(
            huimin_proto::identity::v1::ResolveOpenIdRequest {
                openid: "oWx-grandma".into(),
            },
            &app.token(huimin_kit::auth::Role::Gateway, None),
        ))
        .await;
    assert_eq!(
        bindings.unwrap_err().code(),
        tonic::Code::NotFound,
        "the refused form bound nobody"
    );
}

async fn report(phone: &mut Phone, anonymous: &str, text: &str) -> (StatusCode, String) {
    let csrf = Phone::csrf(&phone.get("/h5/report").await.2);
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf)
        .text("text", text.to_owned())
        .text("anonymous", anonymous.to_owned())
        .part(
            "photos",
            reqwest::multipart::Part::bytes(PNG.to_vec()).file_name("a.png"),
        );
    let (status, _, body) = phone.post_multipart("/h5/report", form).await;
    (status, body)
}

/// The receipt code on the page, its groups' boxes taken away.
fn receipt_of(body: &str) -> String {
    let start = body
        .find("<p class=\"code\">")
        .unwrap_or_else(|| panic!("the receipt code is shown: {body}"))
        + 16;
    let html = body[start..].split("</p>").next().unwrap();
    html.replace("<span>", "").replace("</span>", "")
}

#[tokio::test]
async fn an_anonymous_report_shows_its_receipt_once_and_keeps_no_openid() {
    let app = h5_app(&residents()).await;
    let mut phone = Phone::new(&app);
    phone.sign_in("/h5/report", "oWx-neighbour").await;
    let (status, body) = report(&mut phone, "1", "村支书冒领大旺村低保").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let receipt = receipt_of(&body);
    assert!(body.contains("只显示这一次"));
    let (_, _, again) = phone.get("/h5/report").await;
    let again = again.replace("<span>", "").replace("</span>", "");
    assert!(
        !again.contains(&receipt),
        "the receipt code is shown once only"
    );

    // A real-name report needs a bound person behind the openid.
    let people = residents();
    app.identity()
        .bind_open_id(crate::helpers::authed(
            huimin_proto::identity::v1::BindOpenIdRequest {
                openid: "oWx-neighbour".into(),
                id_number: people[2].id_number.expose().into(),
                name: people[2].name.clone(),
            },
            &app.token(huimin_kit::auth::Role::Gateway, None),
        ))
        .await
        .unwrap();
    let (_, real) = report(&mut phone, "0", "实名：项目资金去向不明").await;
    receipt_of(&real);

    let mut db = app.db_schema("whistle").await;
    let rows: Vec<(bool, Option<String>)> =
        sqlx::query_as("SELECT anonymous, reporter_openid FROM reports ORDER BY anonymous DESC")
            .fetch_all(&mut db)
            .await
            .unwrap();
    // Report ids are random, so the order is by kind, not by arrival.
    assert_eq!(
        rows,
        vec![(true, None), (false, Some("oWx-neighbour".to_owned()))]
    );

    // 举报进度 by the receipt code.
    let csrf = Phone::csrf(&phone.get("/h5/progress").await.2);
    let (status, _, progress) = phone
        .post_form("/h5/progress", &[("csrf", &csrf), ("receipt", &receipt)])
        .await;
    assert_eq!(status, StatusCode::OK, "{progress}");
    assert!(progress.contains("处理状态"), "{progress}");
}

#[tokio::test]
async fn a_photo_that_is_not_an_image_is_refused() {
    let app = h5_app(&residents()).await;
    let mut phone = Phone::new(&app);
    let body = phone.sign_in("/h5/report", "oWx-neighbour").await;
    let form = reqwest::multipart::Form::new()
        .text("csrf", Phone::csrf(&body))
        .text("text", "有问题")
        .text("anonymous", "1")
        .part(
            "photos",
            reqwest::multipart::Part::bytes(b"MZ\x90\x00 not a photo".to_vec())
                .file_name("a.jpg")
                .mime_str("image/jpeg")
                .unwrap(),
        );
    let (status, _, body) = phone.post_multipart("/h5/report", form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("JPG 或 PNG"), "{body}");
}

#[tokio::test]
async fn the_public_pages_answer_without_signing_in() {
    let people = residents();
    let app = h5_app(&people).await;
    import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170")],
    )
    .await
    .unwrap();
    let mut phone = Phone::new(&app);
    let (status, _, disclosure) = phone
        .get(
            "/h5/disclosure?village=%E5%A4%A7%E6%97%BA%E6%9D%91&program=DIBAO_RURAL&period=2026-07",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{disclosure}");
    assert!(disclosure.contains("大旺村"), "{disclosure}");
    assert!(
        disclosure.contains("共 1 人，合计 170.00 元"),
        "{disclosure}"
    );
    assert!(!disclosure.contains(&people[0].name), "names are masked");
    assert!(!disclosure.contains(people[0].id_number.expose()));

    let (status, _, unknown) = phone
        .get(
            "/h5/disclosure?village=%E6%97%A0%E6%AD%A4%E6%9D%91&program=DIBAO_RURAL&period=2026-07",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(unknown.contains("没有叫"), "{unknown}");

    for (path, expect) in [
        ("/h5/", "惠民资金监督"),
        ("/h5/policies", "政策"),
        ("/h5/projects", "项目"),
        ("/h5/progress", "回执码"),
        ("/h5/disclosure", "村名"),
    ] {
        let (status, _, body) = phone.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(body.contains(expect), "{path}");
        assert!(body.len() < 30 * 1024, "{path} is {} bytes", body.len());
    }
    let (status, headers, css) = phone.get("/h5/h5.css").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.len() < 8 * 1024);
}
