//! The WeChat webhook end to end against the running gateway: URL verification, the three
//! modes (driven by the local WeChat), key rotation, dedupe of retries, the deadline with a
//! late answer through the local WeChat's customer-service API, and every hostile request
//! of issue 11 refused without a crash and without the body or the openid in the logs.

use std::{net::SocketAddr, time::Duration};

use huimin_wechat::{
    AesKey, MsgCrypt, signature,
    xml::{EncryptedReply, Envelope, Reply},
};
use huimin_wechat_sim::{Mode, Passive, SimConfig, WeChatSim};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{
    Options, TEST_WECHAT_AES_KEY, TEST_WECHAT_APPID, TEST_WECHAT_TOKEN, TestApp, logs,
};

const ACCOUNT: &str = "gh_huimintest001";
/// A second EncodingAESKey, for rotation.
const NEW_AES_KEY: &str = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut";

/// One HTTP/1.0 exchange; write errors are ignored (a server may answer 413 and close
/// before an oversized body is sent).
pub(crate) async fn exchange(
    addr: SocketAddr,
    method: &str,
    target: &str,
    body: &[u8],
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {target} HTTP/1.0\r\nHost: test\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

pub(crate) fn crypt(key: &str) -> MsgCrypt {
    MsgCrypt::new(AesKey::parse(key).unwrap(), TEST_WECHAT_APPID)
}

pub(crate) fn text_xml(openid: &str, content: &str, msg_id: u64) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>1733100000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )
}

/// The query WeChat signs a plain push with.
fn plain_query(timestamp: &str, nonce: &str) -> String {
    let sig = signature::sign(TEST_WECHAT_TOKEN, &[timestamp, nonce]);
    format!("/wechat?signature={sig}&timestamp={timestamp}&nonce={nonce}&openid=x")
}

/// A safe-mode push of `xml` sealed with `with`: (target, body).
pub(crate) fn safe_push(with: &MsgCrypt, xml: &str) -> (String, String) {
    let (timestamp, nonce) = ("1733100000", "424242");
    let encrypt = with.encrypt_random(xml);
    let msg_signature = signature::sign(TEST_WECHAT_TOKEN, &[timestamp, nonce, &encrypt]);
    let target = format!(
        "{}&encrypt_type=aes&msg_signature={msg_signature}",
        plain_query(timestamp, nonce)
    );
    let body = Envelope {
        to_user: Some(ACCOUNT.to_owned()),
        encrypt,
    }
    .to_xml();
    (target, body)
}

/// The text of a passive reply; decrypted with `with` when the reply is sealed.
pub(crate) fn reply_text(body: &str, with: Option<&MsgCrypt>) -> String {
    let xml = match with {
        None => body.to_owned(),
        Some(crypt) => {
            let sealed = EncryptedReply::parse(body.as_bytes()).expect("an encrypted reply");
            assert!(sealed.verify(TEST_WECHAT_TOKEN), "reply msg_signature");
            crypt.decrypt_for_app(&sealed.encrypt).expect("reply opens")
        }
    };
    match Reply::parse(xml.as_bytes()).expect("a passive reply") {
        Reply::Text {
            content,
            to_user,
            from_user,
            ..
        } => {
            assert_eq!(from_user, ACCOUNT, "the reply swaps the users");
            assert!(to_user.starts_with('o'), "the reply goes to the sender");
            content
        }
        other => panic!("not a text reply: {other:?}"),
    }
}

/// A counter's value on the admin port's /metrics (0 when absent).
pub(crate) async fn metric(app: &TestApp, line_start: &str) -> u64 {
    let (_, text) = exchange(app.admin_addr, "GET", "/metrics", b"").await;
    text.lines()
        .filter(|l| l.starts_with(line_start))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[tokio::test]
async fn url_verification_echoes_echostr_only_when_signed() {
    let app = TestApp::spawn().await;
    let gateway = app.http_addrs[0];
    let target = format!(
        "{}&echostr=4375120948345356249",
        plain_query("1714036504", "1514711492")
    );
    assert_eq!(
        exchange(gateway, "GET", &target, b"").await,
        (200, "4375120948345356249".to_owned())
    );
    let forged = "/wechat?signature=f464b24fc39322e44b38aa78f5edd27bd1441696&timestamp=1714036504&nonce=1514711492&echostr=1";
    assert_eq!(exchange(gateway, "GET", forged, b"").await.0, 403);
}

#[tokio::test]
async fn plain_compatible_and_safe_modes_round_trip_with_the_local_wechat() {
    let app = TestApp::spawn().await;
    for mode in [Mode::Plain, Mode::Compatible, Mode::Safe] {
        let mut config = SimConfig::dev(&format!("http://{}/wechat", app.http_addrs[0]));
        config.token = TEST_WECHAT_TOKEN.to_owned();
        config.appid = TEST_WECHAT_APPID.to_owned();
        config.aes_key = Some(TEST_WECHAT_AES_KEY.to_owned());
        config.account = ACCOUNT.to_owned();
        config.mode = mode;
        let sim = WeChatSim::start(config).await.unwrap();
        let passive = sim.send_text("o-mode-citizen", "帮助").await.unwrap();
        match passive {
            Passive::Text(text) => assert!(!text.is_empty(), "{mode:?}"),
            other => panic!("{mode:?}: not a text reply: {other:?}"),
        }
        sim.shutdown().await;
    }
    assert_eq!(
        metric(
            &app,
            "webhook_requests_total{mode=\"plain\",outcome=\"replied\"}"
        )
        .await,
        1
    );
    assert_eq!(
        metric(
            &app,
            "webhook_requests_total{mode=\"compat\",outcome=\"replied\"}"
        )
        .await,
        1
    );
    assert_eq!(
        metric(
            &app,
            "webhook_requests_total{mode=\"safe\",outcome=\"replied\"}"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn during_a_rotation_both_keys_open_and_the_reply_uses_the_key_that_worked() {
    let app = TestApp::spawn_with(Options {
        env: vec![
            ("HUIMIN_WECHAT_AES_KEY", NEW_AES_KEY.to_owned()),
            (
                "HUIMIN_WECHAT_AES_KEY_PREVIOUS",
                TEST_WECHAT_AES_KEY.to_owned(),
            ),
        ],
        ..Options::default()
    })
    .await;
    let gateway = app.http_addrs[0];
    let (old, new) = (crypt(TEST_WECHAT_AES_KEY), crypt(NEW_AES_KEY));

    let (target, body) = safe_push(&old, &text_xml("o-rotation", "帮助", 1));
    let (code, reply) = exchange(gateway, "POST", &target, body.as_bytes()).await;
    assert_eq!(code, 200, "{reply}");
    let sealed = EncryptedReply::parse(reply.as_bytes()).unwrap();
    assert!(
        new.decrypt_for_app(&sealed.encrypt).is_err(),
        "not sealed with the new key"
    );
    assert!(!reply_text(&reply, Some(&old)).is_empty());

    let (target, body) = safe_push(&new, &text_xml("o-rotation", "帮助", 2));
    let (code, reply) = exchange(gateway, "POST", &target, body.as_bytes()).await;
    assert_eq!(code, 200, "{reply}");
    assert!(!reply_text(&reply, Some(&new)).is_empty());
}

#[tokio::test]
async fn a_retried_msgid_runs_once_and_every_delivery_gets_the_same_reply() {
    let app = TestApp::spawn().await;
    let gateway = app.http_addrs[0];
    let key = crypt(TEST_WECHAT_AES_KEY);
    let xml = text_xml("o-retried", "帮助", 6054768590064713728);
    // Three concurrent deliveries (a retry while the first runs), then a late retry.
    let mut deliveries = Vec::new();
    for _ in 0..3 {
        let (target, body) = safe_push(&key, &xml);
        deliveries.push(tokio::spawn(async move {
            exchange(gateway, "POST", &target, body.as_bytes()).await
        }));
    }
    let mut replies = Vec::new();
    for d in deliveries {
        let (code, body) = d.await.unwrap();
        assert_eq!(code, 200, "{body}");
        replies.push(body);
    }
    let (target, body) = safe_push(&key, &xml);
    replies.push(exchange(gateway, "POST", &target, body.as_bytes()).await.1);

    let texts: Vec<String> = replies.iter().map(|r| reply_text(r, Some(&key))).collect();
    assert!(
        texts.iter().all(|t| t == &texts[0] && !t.is_empty()),
        "{texts:?}"
    );
    assert_eq!(
        metric(&app, "webhook_work_runs_total").await,
        1,
        "the conversation ran once"
    );
    assert_eq!(
        metric(
            &app,
            "webhook_requests_total{mode=\"safe\",outcome=\"duplicate\"}"
        )
        .await,
        3
    );
}

#[tokio::test]
async fn hostile_requests_are_refused_without_a_crash_or_a_trace_of_their_content() {
    let app = TestApp::spawn().await;
    let gateway = app.http_addrs[0];
    let key = crypt(TEST_WECHAT_AES_KEY);
    let openid = "oHostileSecretOpenid0042";
    let marker = "秘密内容marker-9f3b";
    let xml = text_xml(openid, marker, 77);
    let signed = plain_query("1733100000", "424242");

    let bad_signature = "/wechat?signature=0000000000000000000000000000000000000000&timestamp=1733100000&nonce=424242";
    assert_eq!(
        exchange(gateway, "POST", bad_signature, xml.as_bytes())
            .await
            .0,
        403,
        "bad signature"
    );
    assert_eq!(
        exchange(gateway, "POST", "/wechat", xml.as_bytes()).await.0,
        403,
        "no signature"
    );

    // Tampered ciphertext, re-signed so only the decryption can notice.
    let (target, body) = safe_push(&key, &xml);
    let envelope = Envelope::parse(body.as_bytes()).unwrap();
    let mut raw = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        &envelope.encrypt,
    )
    .unwrap();
    let at = raw.len() - 20;
    raw[at] ^= 0x5a;
    let tampered = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &raw);
    let msg_signature = signature::sign(TEST_WECHAT_TOKEN, &["1733100000", "424242", &tampered]);
    let target_tampered = format!("{signed}&encrypt_type=aes&msg_signature={msg_signature}");
    let body_tampered = Envelope {
        to_user: None,
        encrypt: tampered,
    }
    .to_xml();
    let (code, _) = exchange(gateway, "POST", &target_tampered, body_tampered.as_bytes()).await;
    assert!(code == 400 || code == 403, "tampered ciphertext: {code}");

    // A ciphertext whose signature no longer covers it.
    let forged_target = target.replace("msg_signature=", "msg_signature=0");
    assert_eq!(
        exchange(gateway, "POST", &forged_target, body.as_bytes())
            .await
            .0,
        403,
        "msg_signature"
    );

    // Sealed for another Official Account.
    let other = MsgCrypt::new(
        AesKey::parse(TEST_WECHAT_AES_KEY).unwrap(),
        "wxffffffffffffffff",
    );
    let (target, body) = safe_push(&other, &xml);
    let (code, answer) = exchange(gateway, "POST", &target, body.as_bytes()).await;
    assert_eq!(
        (code, answer.as_str()),
        (403, "message was encrypted for another appid")
    );

    let bomb = format!(
        r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "{marker}"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]><xml><FromUserName>{openid}</FromUserName><Content>&lol4;</Content></xml>"#
    );
    let (code, answer) = exchange(gateway, "POST", &signed, bomb.as_bytes()).await;
    assert_eq!(code, 400, "billion laughs");
    assert!(answer.contains("DOCTYPE"), "{answer}");
    let xxe = format!(
        r#"<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><FromUserName>{openid}</FromUserName><Content>&xxe;</Content></xml>"#
    );
    assert_eq!(
        exchange(gateway, "POST", &signed, xxe.as_bytes()).await.0,
        400,
        "DOCTYPE"
    );
    // The same bomb sealed in safe mode is refused after decryption.
    let (target, body) = safe_push(&key, &bomb);
    assert_eq!(
        exchange(gateway, "POST", &target, body.as_bytes()).await.0,
        400,
        "sealed bomb"
    );

    let oversized = format!("<xml><Content>{}</Content></xml>", marker.repeat(8 * 1024));
    assert_eq!(
        exchange(gateway, "POST", &signed, oversized.as_bytes())
            .await
            .0,
        413,
        "oversized"
    );

    // Still serving, and a good message still gets its answer.
    let (target, body) = safe_push(&key, &text_xml(openid, "帮助", 78));
    let (code, reply) = exchange(gateway, "POST", &target, body.as_bytes()).await;
    assert_eq!(code, 200);
    assert!(!reply_text(&reply, Some(&key)).is_empty());

    let logged = logs().text();
    assert!(
        logged.contains("webhook request refused"),
        "refusals are logged"
    );
    assert!(!logged.contains(openid), "openid logged in clear");
    assert!(!logged.contains(marker), "body logged");
    assert!(!logged.contains("lol2"), "body logged");
}

#[tokio::test]
async fn an_answer_past_the_deadline_is_success_now_and_a_customer_service_message_later() {
    // A budget no conversation meets: 0 ms, so every answer goes out late. (A slow peer
    // behind a proxy: chat::a_slow_ledger_is_answered_in_time_and_the_payments_follow….)
    let (sim, app) = late_app(vec![]).await;
    let openid = "o-late-citizen";
    // WeChat lets the account write to a citizen who wrote within 48 h; the push below is
    // that message, sent past the local WeChat, so tell it.
    sim.core().state.citizen_interacted(openid);
    let started = std::time::Instant::now();
    let (code, body) = exchange(
        app.http_addrs[0],
        "POST",
        &plain_query("1733100000", "1"),
        text_xml(openid, "帮助", 901).as_bytes(),
    )
    .await;
    assert_eq!((code, body.as_str()), (200, "success"));
    assert!(started.elapsed() < Duration::from_secs(1));
    let sent = sim
        .wait_customer_message(openid, Duration::from_secs(10))
        .await
        .expect("the answer arrives as a customer-service message");
    assert_eq!(sent.msgtype, "text");
    assert!(sent.text.is_some_and(|t| !t.is_empty()));
    assert_eq!(
        metric(&app, "webhook_late_replies_total{outcome=\"sent\"}").await,
        1
    );
}

/// The local WeChat's API for the gateway to call, and the app under test pointed at it
/// with every answer sent late (a 0 ms budget).
async fn late_app(extra: Vec<(&'static str, String)>) -> (huimin_wechat_sim::Sim, TestApp) {
    let sim = WeChatSim::start({
        let mut c = SimConfig::dev("http://127.0.0.1:9/wechat");
        c.appid = TEST_WECHAT_APPID.to_owned();
        c.appsecret = "test-appsecret".to_owned();
        c.token = TEST_WECHAT_TOKEN.to_owned();
        c
    })
    .await
    .unwrap();
    let mut env = vec![
        ("HUIMIN_WECHAT_API_BASE", sim.api_base()),
        ("HUIMIN_WECHAT_REPLY_DEADLINE_MS", "0".to_owned()),
    ];
    env.extend(extra);
    let app = TestApp::spawn_with(Options {
        env,
        ..Options::default()
    })
    .await;
    (sim, app)
}

#[tokio::test]
async fn an_expired_access_token_is_fetched_again_and_the_message_still_goes_out() {
    let (sim, app) = late_app(vec![]).await;
    let openid = "o-token-citizen";
    sim.core().state.citizen_interacted(openid);
    let gateway = app.http_addrs[0];
    let push = |msg_id: u64| {
        let target = plain_query("1733100000", "7");
        let body = text_xml(openid, "帮助", msg_id);
        async move { exchange(gateway, "POST", &target, body.as_bytes()).await }
    };
    assert_eq!(push(1).await.1, "success");
    assert_eq!(
        sim.wait_customer_messages(openid, 1, Duration::from_secs(10))
            .await
            .len(),
        1
    );
    sim.expire_tokens();
    assert_eq!(push(2).await.1, "success");
    let sent = sim
        .wait_customer_messages(openid, 2, Duration::from_secs(10))
        .await;
    assert_eq!(sent.len(), 2, "sent again with a fresh token");
    assert_eq!(
        metric(&app, "webhook_late_replies_total{outcome=\"sent\"}").await,
        2
    );
}

#[tokio::test]
async fn with_redis_down_a_retry_is_still_answered_once_from_memory() {
    let app = TestApp::spawn_with(Options {
        proxy_redis: true,
        ..Options::default()
    })
    .await;
    app.redis_proxy.as_ref().unwrap().cut();
    let gateway = app.http_addrs[0];
    let key = crypt(TEST_WECHAT_AES_KEY);
    let xml = text_xml("o-no-redis", "帮助", 31337);
    let mut texts = Vec::new();
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let (target, body) = safe_push(&key, &xml);
        let (code, reply) = exchange(gateway, "POST", &target, body.as_bytes()).await;
        assert_eq!(code, 200, "{reply}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "answered within WeChat's time"
        );
        texts.push(reply_text(&reply, Some(&key)));
    }
    assert!(texts.iter().all(|t| t == &texts[0]), "{texts:?}");
    assert_eq!(metric(&app, "webhook_work_runs_total").await, 1);
}
