//! Pushes as a WeChat-compatible webhook receives them, in every mode.

use std::time::Duration;

use huimin_wechat_sim::{Event, Mode, Passive, PushError};

use crate::helpers::{Answer, OPENID, T, http, sim, token, webhook};

#[tokio::test]
async fn plain_mode_pushes_signed_xml_and_reads_the_text_reply() {
    let hook = webhook(Answer::Echo, None).await;
    let sim = sim(Mode::Plain, &hook.url).await;
    let passive = sim.send_text(OPENID, "查询").await.expect("a reply");
    assert_eq!(passive, Passive::Text("收到：查询".to_owned()));
    let seen = hook.seen.lock().expect("not poisoned")[0].clone();
    assert!(seen.signatures_ok);
    assert_eq!(seen.query["openid"], OPENID);
    assert!(!seen.query.contains_key("encrypt_type"));
    assert_eq!(seen.field("MsgType"), Some("text"));
    assert_eq!(seen.field("FromUserName"), Some(OPENID));
    assert_eq!(seen.field("ToUserName"), Some("gh_huimindev0001"));
    assert!(
        seen.field("MsgId")
            .is_some_and(|id| id.parse::<u64>().is_ok())
    );
    assert!(
        seen.field("CreateTime")
            .is_some_and(|t| t.parse::<u64>().is_ok())
    );
}

#[tokio::test]
async fn safe_mode_sends_only_the_ciphertext_and_opens_the_encrypted_reply() {
    let hook = webhook(Answer::Echo, None).await;
    let sim = sim(Mode::Safe, &hook.url).await;
    let passive = sim.send_text(OPENID, "查询 低保").await.expect("a reply");
    assert_eq!(passive.text(), Some("收到：查询 低保"));
    let seen = hook.seen.lock().expect("not poisoned")[0].clone();
    assert!(seen.signatures_ok, "signature and msg_signature both valid");
    assert_eq!(seen.query["encrypt_type"], "aes");
    assert!(
        !seen.raw_body.contains("查询"),
        "no plaintext in safe mode: {}",
        seen.raw_body
    );
    assert!(!seen.raw_body.contains("MsgType"));
    assert_eq!(seen.field("Content"), Some("查询 低保"));
}

#[tokio::test]
async fn compatible_mode_carries_plaintext_and_ciphertext() {
    let hook = webhook(Answer::Echo, None).await;
    let sim = sim(Mode::Compatible, &hook.url).await;
    let passive = sim.send_text(OPENID, "帮助").await.expect("a reply");
    assert_eq!(passive.text(), Some("收到：帮助"));
    let seen = hook.seen.lock().expect("not poisoned")[0].clone();
    assert!(seen.signatures_ok);
    assert!(seen.raw_body.contains("<Encrypt>"));
    assert!(seen.raw_body.contains("帮助"), "plaintext fields too");
}

#[tokio::test]
async fn a_reply_with_a_wrong_msg_signature_is_refused() {
    let hook = webhook(Answer::BadSignature, None).await;
    let sim = sim(Mode::Safe, &hook.url).await;
    let error = sim.send_text(OPENID, "查询").await.expect_err("refused");
    assert!(matches!(error, PushError::BadSignature), "{error:?}");
}

#[tokio::test]
async fn success_and_an_empty_body_mean_nothing_now() {
    for (answer, expected) in [
        (Answer::Success, Passive::Success),
        (Answer::Empty, Passive::Empty),
    ] {
        let hook = webhook(answer, None).await;
        let sim = sim(Mode::Safe, &hook.url).await;
        assert_eq!(
            sim.send_text(OPENID, "查询").await.expect("an answer"),
            expected
        );
    }
}

#[tokio::test]
async fn a_slow_webhook_gets_the_same_msgid_three_times_when_retries_are_asked_for() {
    // The sim waits 300 ms per attempt; the first two answers take 600 ms.
    let hook = webhook(Answer::Echo, Some((2, Duration::from_millis(600)))).await;
    let sim = sim(Mode::Safe, &hook.url).await;
    let message = sim.text_message(OPENID, "查询");
    let delivery = sim
        .push_with_retries(&message)
        .await
        .expect("third time answered");
    assert_eq!(delivery.attempts, 3);
    assert_eq!(delivery.passive.text(), Some("收到：查询"));
    let seen = hook.seen.lock().expect("not poisoned").clone();
    assert_eq!(seen.len(), 3);
    let ids: Vec<_> = seen
        .iter()
        .map(|s| s.field("MsgId").map(str::to_owned))
        .collect();
    assert!(
        ids.iter().all(|id| id == &ids[0] && id.is_some()),
        "{ids:?}"
    );
    let times: Vec<_> = seen
        .iter()
        .map(|s| s.field("CreateTime").map(str::to_owned))
        .collect();
    assert!(times.iter().all(|t| t == &times[0]));
}

#[tokio::test]
async fn without_retries_a_slow_webhook_is_no_reply() {
    let hook = webhook(Answer::Echo, Some((1, Duration::from_millis(600)))).await;
    let sim = sim(Mode::Plain, &hook.url).await;
    let error = sim.send_text(OPENID, "查询").await.expect_err("too slow");
    assert!(
        matches!(error, PushError::NoReply { attempts: 1, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn events_carry_no_msgid_and_clicks_carry_their_key() {
    let hook = webhook(Answer::Success, None).await;
    let sim = sim(Mode::Safe, &hook.url).await;
    sim.send_event(OPENID, Event::Subscribe)
        .await
        .expect("answered");
    sim.send_event(OPENID, Event::Click("MY_PAYMENTS".to_owned()))
        .await
        .expect("answered");
    let seen = hook.seen.lock().expect("not poisoned").clone();
    assert_eq!(seen[0].field("MsgType"), Some("event"));
    assert_eq!(seen[0].field("Event"), Some("subscribe"));
    assert_eq!(seen[0].field("MsgId"), None);
    assert_eq!(seen[1].field("Event"), Some("CLICK"));
    assert_eq!(seen[1].field("EventKey"), Some("MY_PAYMENTS"));
}

#[tokio::test]
async fn an_image_is_pushed_by_media_id_and_downloadable_through_media_get() {
    let hook = webhook(Answer::Success, None).await;
    let sim = sim(Mode::Safe, &hook.url).await;
    let photo = vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3];
    sim.send_image(OPENID, photo.clone())
        .await
        .expect("answered");
    let seen = hook.seen.lock().expect("not poisoned")[0].clone();
    assert_eq!(seen.field("MsgType"), Some("image"));
    let media_id = seen.field("MediaId").expect("a media id").to_owned();
    assert!(seen.field("PicUrl").is_some());
    let token = token(&sim).await;
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
    assert_eq!(got.headers["content-type"], "image/jpeg");
}

#[tokio::test]
async fn the_chat_page_is_served_with_its_script() {
    let hook = webhook(Answer::Echo, None).await;
    let sim = sim(Mode::Safe, &hook.url).await;
    let page = http().get(&sim.chat_url(), T).await.expect("the page");
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains("本地微信"));
    assert!(html.contains("/sim/page.js"));
    let js = http()
        .get(&format!("{}/sim/page.js", sim.api_base()), T)
        .await
        .expect("js");
    assert_eq!(js.status, 200);
    // What the page does when one types: the push runs, the log shows both lines.
    let (status, _) = http()
        .post(
            &format!("{}/sim/send", sim.api_base()),
            "application/json",
            serde_json::json!({"openid": OPENID, "text": "查询"})
                .to_string()
                .into_bytes(),
            T,
        )
        .await
        .expect("send answers");
    assert_eq!(status, 202);
    let mut lines = Vec::new();
    for _ in 0..50 {
        let log = http()
            .get(&format!("{}/sim/log?openid={OPENID}", sim.api_base()), T)
            .await
            .expect("log answers");
        lines = serde_json::from_slice::<Vec<serde_json::Value>>(&log.body).expect("json");
        if lines.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(lines[0]["from"], "citizen");
    assert_eq!(lines[1]["from"], "reply");
    assert_eq!(lines[1]["text"], "收到：查询");
}
