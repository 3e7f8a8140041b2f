//! WeChat's server API as the sim serves it.

use serde_json::json;

use huimin_wechat_sim::{Mode, multipart};

use crate::helpers::{self, OPENID, T, get_json, http, post_json, token};

async fn plain_sim() -> huimin_wechat_sim::Sim {
    // No webhook needed for API calls; pushes go nowhere.
    helpers::sim(Mode::Plain, "http://127.0.0.1:9/wechat").await
}

#[tokio::test]
async fn wrong_appid_or_secret_gets_wechats_error_codes() {
    let sim = plain_sim().await;
    let base = sim.api_base();
    let bad_appid = get_json(&format!(
        "{base}/cgi-bin/token?grant_type=client_credential&appid=wxother&secret=huimin-dev-secret"
    ))
    .await;
    assert_eq!(bad_appid["errcode"], 40013);
    let bad_secret = get_json(&format!(
        "{base}/cgi-bin/token?grant_type=client_credential&appid=wxhuimindev00000&secret=nope"
    ))
    .await;
    assert_eq!(bad_secret["errcode"], 40125);
    let good = get_json(&format!(
        "{base}/cgi-bin/token?grant_type=client_credential&appid=wxhuimindev00000&secret=huimin-dev-secret"
    ))
    .await;
    assert_eq!(good["expires_in"], 7200);
    assert!(good["access_token"].as_str().is_some_and(|t| t.len() >= 32));
}

#[tokio::test]
async fn tokens_expire_on_demand_and_unknown_ones_are_invalid() {
    let sim = plain_sim().await;
    let token = token(&sim).await;
    let menu = |t: &str| format!("{}/cgi-bin/menu/get?access_token={t}", sim.api_base());
    assert_eq!(
        get_json(&menu(&token)).await["errcode"],
        46003,
        "valid token, no menu yet"
    );
    assert_eq!(get_json(&menu("forged")).await["errcode"], 40001);
    sim.expire_tokens();
    assert_eq!(get_json(&menu(&token)).await["errcode"], 42001);
    let fresh = helpers::token(&sim).await;
    assert_eq!(get_json(&menu(&fresh)).await["errcode"], 46003);
}

#[tokio::test]
async fn a_refetched_token_leaves_the_previous_one_working_for_a_while() {
    let sim = plain_sim().await;
    let first = token(&sim).await;
    let second = token(&sim).await;
    assert_ne!(first, second);
    let url = format!("{}/cgi-bin/menu/get?access_token={first}", sim.api_base());
    assert_eq!(get_json(&url).await["errcode"], 46003);
}

#[tokio::test]
async fn stable_token_is_the_same_until_force_refreshed() {
    let sim = plain_sim().await;
    let url = format!("{}/cgi-bin/stable_token", sim.api_base());
    let request = |force: bool| {
        json!({"grant_type": "client_credential", "appid": "wxhuimindev00000",
               "secret": "huimin-dev-secret", "force_refresh": force})
    };
    let a = post_json(&url, request(false)).await;
    let b = post_json(&url, request(false)).await;
    let c = post_json(&url, request(true)).await;
    assert_eq!(a["access_token"], b["access_token"]);
    assert_ne!(a["access_token"], c["access_token"]);
    let wrong = post_json(
        &url,
        json!({"grant_type": "client_credential", "appid": "wxhuimindev00000", "secret": "x"}),
    )
    .await;
    assert_eq!(wrong["errcode"], 40125);
}

#[tokio::test]
async fn customer_messages_are_recorded_for_citizens_who_wrote_recently() {
    let sim = plain_sim().await;
    let token = token(&sim).await;
    let url = format!(
        "{}/cgi-bin/message/custom/send?access_token={token}",
        sim.api_base()
    );
    let message =
        json!({"touser": OPENID, "msgtype": "text", "text": {"content": "您的7月低保170元"}});
    assert_eq!(
        post_json(&url, message.clone()).await["errcode"],
        45015,
        "a citizen who never wrote cannot be messaged"
    );
    // The citizen writes (the push itself fails: no webhook), which opens the window.
    let _ = sim.send_text(OPENID, "查询").await;
    let waiting = sim.wait_customer_message(OPENID, T);
    let sent = post_json(&url, message);
    let (received, sent) = tokio::join!(waiting, sent);
    assert_eq!(sent["errcode"], 0);
    let received = received.expect("the late reply arrives");
    assert_eq!(received.text.as_deref(), Some("您的7月低保170元"));
    assert_eq!(sim.customer_messages("o-someone-else"), vec![]);
}

#[tokio::test]
async fn customer_send_with_an_expired_token_is_42001_and_not_recorded() {
    let sim = plain_sim().await;
    let token = token(&sim).await;
    let _ = sim.send_text(OPENID, "查询").await;
    sim.expire_tokens();
    let url = format!(
        "{}/cgi-bin/message/custom/send?access_token={token}",
        sim.api_base()
    );
    let body = json!({"touser": OPENID, "msgtype": "text", "text": {"content": "x"}});
    assert_eq!(post_json(&url, body).await["errcode"], 42001);
    assert!(sim.customer_messages(OPENID).is_empty());
}

#[tokio::test]
async fn template_messages_are_recorded_with_a_msgid() {
    let sim = plain_sim().await;
    let token = token(&sim).await;
    let url = format!(
        "{}/cgi-bin/message/template/send?access_token={token}",
        sim.api_base()
    );
    let body =
        json!({"touser": OPENID, "template_id": "tpl1", "data": {"amount2": {"value": "170.00"}}});
    let answer = post_json(&url, body).await;
    assert_eq!(answer["errcode"], 0);
    assert!(answer["msgid"].is_u64());
    assert_eq!(
        sim.template_messages()[0]["data"]["amount2"]["value"],
        "170.00"
    );
    let no_template = post_json(&url, json!({"touser": OPENID})).await;
    assert_eq!(no_template["errcode"], 40037);
}

#[tokio::test]
async fn uploaded_media_comes_back_byte_for_byte_and_unknown_ids_are_40007() {
    let sim = plain_sim().await;
    let token = token(&sim).await;
    let photo = b"\x89PNG\r\n\x1a\n not really a png".to_vec();
    let body = multipart::encode("b0undary", "media", "a.png", "image/png", &photo);
    let (_, answer) = http()
        .post(
            &format!(
                "{}/cgi-bin/media/upload?access_token={token}&type=image",
                sim.api_base()
            ),
            "multipart/form-data; boundary=b0undary",
            body,
            T,
        )
        .await
        .expect("upload answers");
    let answer: serde_json::Value = serde_json::from_slice(&answer).expect("json");
    assert_eq!(answer["type"], "image");
    let media_id = answer["media_id"].as_str().expect("a media_id");
    let got = http()
        .get(
            &format!(
                "{}/cgi-bin/media/get?access_token={token}&media_id={media_id}",
                sim.api_base()
            ),
            T,
        )
        .await
        .expect("media/get answers");
    assert_eq!(got.body.as_ref(), photo.as_slice());
    assert_eq!(got.headers["content-type"], "image/png");
    let missing = get_json(&format!(
        "{}/cgi-bin/media/get?access_token={token}&media_id=nope",
        sim.api_base()
    ))
    .await;
    assert_eq!(missing["errcode"], 40007);
}

#[tokio::test]
async fn oauth_gives_a_single_use_code_for_the_chosen_citizen() {
    let sim = plain_sim().await;
    let url = sim.oauth_url(OPENID, "http://gateway.test/h5/mine?x=1");
    let redirect = http().get(&url, T).await.expect("authorize answers");
    assert_eq!(
        redirect.status, 302,
        "a redirect back to the page, as WeChat does"
    );
    let location = redirect.headers["location"].to_str().expect("ascii");
    assert!(
        location.starts_with("http://gateway.test/h5/mine?x=1&code="),
        "{location}"
    );
    assert!(location.ends_with("&state=sim"), "{location}");
    let code = location
        .split("code=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .expect("a code");
    let exchange = format!(
        "{}/sns/oauth2/access_token?appid=wxhuimindev00000&secret=huimin-dev-secret&code={code}&grant_type=authorization_code",
        sim.api_base()
    );
    let first = get_json(&exchange).await;
    assert_eq!(first["openid"], OPENID);
    assert_eq!(first["scope"], "snsapi_base");
    assert_eq!(
        get_json(&exchange).await["errcode"],
        40163,
        "a code works once"
    );
    let forged = exchange.replace(code, "forged");
    assert_eq!(get_json(&forged).await["errcode"], 40029);
}

#[tokio::test]
async fn oauth_without_a_chosen_citizen_offers_the_demo_citizens() {
    let sim = plain_sim().await;
    let url = format!(
        "{}/connect/oauth2/authorize?appid=wxhuimindev00000&redirect_uri=http%3A%2F%2Fg.test%2Fh5&response_type=code&scope=snsapi_base&state=s1",
        sim.api_base()
    );
    let page = http().get(&url, T).await.expect("authorize answers");
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains("openid=o-demo-citizen-1"), "{html}");
    let wrong_appid = http()
        .get(&url.replace("wxhuimindev00000", "wxother"), T)
        .await
        .expect("authorize answers");
    assert_eq!(wrong_appid.status, 400);
}

#[tokio::test]
async fn the_menu_created_is_the_menu_got() {
    let sim = plain_sim().await;
    let token = token(&sim).await;
    let menu = json!({"button": [{"type": "click", "name": "查询", "key": "QUERY"}]});
    let created = post_json(
        &format!(
            "{}/cgi-bin/menu/create?access_token={token}",
            sim.api_base()
        ),
        menu.clone(),
    )
    .await;
    assert_eq!(created["errcode"], 0);
    let got = get_json(&format!(
        "{}/cgi-bin/menu/get?access_token={token}",
        sim.api_base()
    ))
    .await;
    assert_eq!(got["menu"], menu);
    assert_eq!(sim.menu(), Some(menu));
    assert!(
        sim.received()
            .iter()
            .any(|r| r.path == "/cgi-bin/menu/create" && r.errcode == 0)
    );
}
