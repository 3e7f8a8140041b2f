//! The conversation end to end: a citizen on the local WeChat in safe mode (signed,
//! encrypted XML in, a sealed reply out) against the real services behind the gateway —
//! follow, bind, 查询, 公示, 政策, 项目, 举报 with photos and 进度, unfollow, and help for
//! whatever is not understood.

use std::time::{Duration, Instant};

use huimin_kit::auth::Role;
use huimin_proto::whistle::v1::GetReportRequest;
use huimin_wechat_sim::{Event, Passive};

use crate::{
    citizen::{Chat, has_id_number},
    h5::PNG,
    helpers::{authed, logs, residents},
    proxy::Proxy,
    registry::{admin, create, road},
    reports::{phone_jpeg, report_id},
    rolls::{RollRow, import_csv},
};

#[tokio::test]
async fn following_is_answered_with_a_welcome_saying_what_one_can_do() {
    let chat = Chat::start(&[]).await;

    let welcome = chat.event("o-chat-newcomer", Event::Subscribe).await;

    assert!(welcome.contains("欢迎关注"), "{welcome}");
    for command in [
        "查询",
        "绑定 身份证号 姓名",
        "政策",
        "项目",
        "公示 村名",
        "举报",
        "进度",
    ] {
        assert!(welcome.contains(command), "{command}: {welcome}");
    }
    assert!(welcome.contains("/h5/my"), "points to the page: {welcome}");
}

#[tokio::test]
async fn a_wrong_name_is_refused_politely_the_right_one_binds_and_the_id_number_is_never_repeated()
{
    let people = residents();
    let chat = Chat::start(&people).await;
    let openid = "o-chat-grandma";
    let id = people[0].id_number.expose().to_owned();

    let refused = chat.say(openid, &format!("绑定 {id} 庞秀")).await;
    let bound = chat
        .say(openid, &format!("绑定 {id} {}", people[0].name))
        .await;

    assert!(refused.contains("没有绑定成功"), "{refused}");
    assert!(refused.contains("请核对"), "says what to check: {refused}");
    assert!(bound.contains("绑定成功：庞秀英"), "{bound}");
    assert_eq!(chat.bound(openid).await.len(), 1);
    for reply in [&refused, &bound] {
        assert!(!reply.contains(&id), "{reply}");
        assert!(!has_id_number(reply), "{reply}");
    }
    assert!(
        !logs().text().contains(&id),
        "the typed ID number reached the logs"
    );
}

#[tokio::test]
async fn a_bound_citizen_reads_her_households_payments_in_exact_yuan_filtered_by_program_and_month()
{
    let people = residents();
    let chat = Chat::start(&people).await;
    import_csv(
        &chat.app,
        &[
            RollRow::pay(&people[0], "DIBAO_RURAL", "2026-06", "170.00"),
            RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170.00"),
            RollRow::pay(&people[1], "DIBAO_RURAL", "2026-07", "85.50"),
            RollRow::pay(&people[0], "ELDERLY", "2026-07", "50.00"),
        ],
    )
    .await
    .unwrap();
    let openid = "o-chat-payments";
    let before = chat.say(openid, "查询").await;
    chat.bind(openid, &people[0]).await;

    let all = chat.say(openid, "查询").await;
    let dibao = chat.say(openid, "查询 低保").await;
    let july = chat.say(openid, "查询 7月").await;

    assert!(before.contains("还没有绑定"), "{before}");
    assert!(
        all.contains("2026年7月 农村最低生活保障金 庞*英 170元"),
        "{all}"
    );
    assert!(
        all.contains("2026年7月 农村最低生活保障金 陈*强 85.50元"),
        "the son's payment, as the household's: {all}"
    );
    assert!(
        all.contains("2026年6月 农村最低生活保障金 庞*英 170元"),
        "{all}"
    );
    assert!(all.contains("2026年7月 高龄津贴 庞*英 50元"), "{all}");
    assert!(!all.contains("庞秀英") && !has_id_number(&all), "{all}");

    assert!(
        dibao.contains("农村最低生活保障金 陈*强 85.50元"),
        "{dibao}"
    );
    assert!(!dibao.contains("高龄津贴"), "only 低保: {dibao}");
    assert!(
        july.contains("高龄津贴") && july.contains("85.50元"),
        "{july}"
    );
    assert!(!july.contains("2026年6月"), "only July: {july}");
}

#[tokio::test]
async fn a_villages_disclosure_is_masked_and_an_ambiguous_name_offers_a_choice() {
    let people = residents();
    let chat = Chat::start(&people).await;
    import_csv(
        &chat.app,
        &[
            RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170.00"),
            RollRow::pay(&people[1], "DIBAO_RURAL", "2026-07", "85.50"),
        ],
    )
    .await
    .unwrap();
    let openid = "o-chat-neighbour";

    let named = chat.say(openid, "公示 大旺村").await;
    let ambiguous = chat.say(openid, "公示 旺").await;
    let choice = ambiguous
        .lines()
        .find(|line| line.contains("大旺村（三滩镇）"))
        .and_then(|line| line.split('.').next())
        .unwrap_or_else(|| panic!("大旺村 is offered: {ambiguous}"))
        .to_owned();
    let picked = chat.say(openid, &choice).await;

    assert!(
        named.contains("大旺村 农村最低生活保障金 2026年7月：共2人，合计255.50元"),
        "{named}"
    );
    assert!(
        named.contains("庞*英 170元") && named.contains("陈*强 85.50元"),
        "{named}"
    );
    assert!(ambiguous.contains("请回复序号"), "{ambiguous}");
    assert!(
        ambiguous.lines().count() > 2,
        "several villages: {ambiguous}"
    );
    assert!(picked.contains("庞*英 170元"), "{picked}");
    for reply in [&named, &picked] {
        assert!(
            !reply.contains("庞秀英") && !reply.contains("陈志强"),
            "{reply}"
        );
        assert!(!has_id_number(reply), "{reply}");
    }
    let unknown = chat.say(openid, "公示 没有这个村").await;
    assert!(unknown.contains("没有找到这个村"), "{unknown}");
}

#[tokio::test]
async fn policies_give_the_standards_and_projects_show_my_villages_money_by_source() {
    let people = residents();
    let chat = Chat::start(&people).await;
    create(&chat.app, road("JF-2026-001"), &admin(&chat.app))
        .await
        .unwrap();
    let openid = "o-chat-villager";

    let policies = chat.say(openid, "政策").await;
    let dibao = chat.say(openid, "政策 低保").await;
    let unbound = chat.say(openid, "项目").await;
    chat.bind(openid, &people[2]).await; // 黄丽 lives in 金丰村, where the road is built
    let projects = chat.say(openid, "项目").await;

    assert!(
        policies.contains("农村最低生活保障金：每人每月300元"),
        "{policies}"
    );
    assert!(policies.contains("高龄津贴：每人每月50元"), "{policies}");
    assert!(
        dibao.contains("农村最低生活保障金：每人每月300元"),
        "the short name finds it: {dibao}"
    );
    assert!(
        dibao.contains("条件：") && dibao.contains("依据："),
        "{dibao}"
    );
    assert!(!dibao.contains("高龄津贴"), "{dibao}");
    assert!(
        unbound.contains("绑定"),
        "projects are of one's village: {unbound}"
    );
    assert!(projects.contains("本村项目1个"), "{projects}");
    assert!(
        projects.contains("金丰村屯级道路硬化（2026年）批复100000元，已拨付0元"),
        "{projects}"
    );
    assert!(
        projects.contains("资金来源：中央60000元、县级40000元"),
        "{projects}"
    );
}

#[tokio::test]
async fn a_report_with_text_and_two_photos_gets_a_receipt_code_that_shows_its_progress() {
    let chat = Chat::start(&[]).await;
    let openid = "o-chat-reporter";

    let started = chat.say(openid, "举报").await;
    let noted = chat
        .say(
            openid,
            "大旺村有个已经去世两年的老人还在领低保，钱被别人领走了",
        )
        .await;
    let first = chat.photo(openid, phone_jpeg()).await;
    let second = chat.photo(openid, PNG.to_vec()).await;
    let asked = chat.say(openid, "提交").await;
    let receipt = chat.say(openid, "匿名").await;

    assert!(started.contains("请描述"), "{started}");
    assert!(noted.contains("已记下"), "{noted}");
    assert!(first.contains("第1张照片"), "{first}");
    assert!(second.contains("第2张照片"), "{second}");
    assert!(asked.contains("匿名") && asked.contains("实名"), "{asked}");
    assert!(receipt.contains("已提交"), "{receipt}");
    let field = |label: &str| {
        receipt
            .lines()
            .find_map(|line| line.split_once(label).map(|(_, v)| v.to_owned()))
            .unwrap_or_else(|| panic!("{label} in {receipt}"))
    };
    let number = field("编号").trim_end_matches('。').to_owned();
    let code = field("回执码：");
    assert_eq!(code.len(), 24, "{code}");

    let progress = chat
        .say(openid, &format!("进度 {}", code.to_lowercase()))
        .await;
    assert!(progress.contains(&format!("编号{number}")), "{progress}");
    let status = progress
        .lines()
        .find_map(|line| line.strip_prefix("状态："))
        .unwrap_or_default();
    assert!(!status.is_empty(), "a status in words: {progress}");

    let report = chat
        .app
        .whistle()
        .get_report(authed(
            GetReportRequest {
                id: report_id(&chat.app, &number).await,
            },
            &chat.app.token(Role::Inspector, None),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(report.anonymous);
    assert!(report.text.contains("去世两年"), "{}", report.text);
    assert_eq!(report.photos.len(), 2, "both photos reached whistle");

    let gone = chat.say(openid, "提交").await;
    assert!(
        gone.contains("没有正在填写的举报"),
        "the draft is spent: {gone}"
    );
}

#[tokio::test]
async fn unfollowing_removes_the_binding_and_the_draft() {
    let people = residents();
    let chat = Chat::start(&people).await;
    let openid = "o-chat-leaving";
    chat.bind(openid, &people[0]).await;
    // A 查询 first, so the gateway holds this openid's bindings in its cache: leaving must
    // count on the very next message all the same.
    let before = chat.say(openid, "查询").await;
    assert!(!before.contains("还没有绑定"), "{before}");
    chat.say(openid, "举报").await;
    chat.say(openid, "村干部优亲厚友").await;
    assert_eq!(chat.bound(openid).await.len(), 1);

    let passive = chat
        .sim
        .send_event(openid, Event::Unsubscribe)
        .await
        .unwrap();

    assert!(
        matches!(passive, Passive::Success | Passive::Empty),
        "nothing to say to someone who left: {passive:?}"
    );
    assert!(chat.bound(openid).await.is_empty(), "binding removed");
    let mut identity = chat.app.db_schema("identity").await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM wechat_bindings WHERE openid = $1")
        .bind(openid)
        .fetch_one(&mut identity)
        .await
        .unwrap();
    assert_eq!(rows, 0, "deleted, not hidden");
    let query = chat.say(openid, "查询").await;
    assert!(query.contains("还没有绑定"), "{query}");
    assert!(query.contains("绑定 身份证号 姓名"), "{query}");
    let submit = chat.say(openid, "提交").await;
    assert!(
        submit.contains("没有正在填写的举报"),
        "draft dropped: {submit}"
    );
}

#[tokio::test]
async fn whatever_is_not_understood_gets_help_never_silence() {
    let chat = Chat::start(&[]).await;
    let openid = "o-chat-puzzled";

    for text in ["你好", "？", "0", "12345", "绑"] {
        let answer = chat.say(openid, text).await;
        assert!(answer.contains("可以回复"), "{text}: {answer}");
        assert!(answer.contains("查询"), "{text}: {answer}");
    }
    let unknown_button = chat.event(openid, Event::Click("NO_SUCH_KEY".into())).await;
    assert!(unknown_button.contains("可以回复"), "{unknown_button}");
    let half_bind = chat.say(openid, "绑定 450923").await;
    assert!(half_bind.contains("请按格式回复"), "{half_bind}");
    let stray_photo = chat.photo(openid, PNG.to_vec()).await;
    assert!(stray_photo.contains("举报"), "{stray_photo}");
    let menu_button = chat.event(openid, Event::Click("POLICY".into())).await;
    assert!(menu_button.contains("补贴项目和标准"), "{menu_button}");
}

#[tokio::test]
async fn after_unbinding_the_next_query_asks_to_bind_again() {
    let people = residents();
    let chat = Chat::start(&people).await;
    let openid = "o-chat-unbinding";
    chat.bind(openid, &people[0]).await;
    // Bound, with nothing paid yet: the answer says so rather than asking to bind.
    let warm = chat.say(openid, "查询").await;
    assert!(warm.contains("暂未查到"), "{warm}");

    chat.say(openid, "解绑").await;

    let after = chat.say(openid, "查询").await;
    assert!(after.contains("还没有绑定"), "{after}");
    assert!(chat.bound(openid).await.is_empty());
}

#[tokio::test]
async fn a_slow_ledger_is_answered_in_time_and_the_payments_follow_as_a_customer_service_message() {
    let people = residents();
    // The gateway reaches ledger through a proxy that will hold what ledger sends back
    // 1.2 s, past a 0.5 s reply deadline (WeChat's own is 5 s) and within the gateway's
    // 3 s call timeout.
    let slow = Proxy::unaimed().await;
    let chat = Chat::start_with(
        &people,
        vec![
            ("HUIMIN_LEDGER_URL", format!("http://{}", slow.addr)),
            ("HUIMIN_WECHAT_REPLY_DEADLINE_MS", "500".to_owned()),
        ],
    )
    .await;
    slow.aim(&chat.app.grpc_addr.to_string());
    import_csv(
        &chat.app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170.00")],
    )
    .await
    .unwrap();
    let openid = "o-chat-patient";
    chat.bind(openid, &people[0]).await;
    // A first 查询 opens the gateway's connection to ledger while it is fast, so only the
    // answer itself is held, not the connection's handshake too.
    let fast = chat.say(openid, "查询").await;
    assert!(fast.contains("170元"), "{fast}");
    slow.delay(Duration::from_millis(1200));

    let started = Instant::now();
    let passive = chat.sim.send_text(openid, "查询").await.unwrap();
    let answered_in = started.elapsed();

    assert!(
        matches!(passive, Passive::Success | Passive::Empty),
        "nothing passive when late: {passive:?}"
    );
    assert!(answered_in < Duration::from_millis(1200), "{answered_in:?}");
    let late = chat
        .sim
        .wait_customer_message(openid, Duration::from_secs(15))
        .await
        .expect("the payments follow as a customer-service message");
    let text = late.text.unwrap_or_default();
    assert!(
        text.contains("2026年7月 农村最低生活保障金 庞*英 170元"),
        "{text}"
    );
}

#[tokio::test]
async fn a_message_starts_a_trace_that_its_grpc_calls_continue() {
    let people = residents();
    let chat = Chat::start(&people).await;
    import_csv(
        &chat.app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170.00")],
    )
    .await
    .unwrap();
    let openid = "o-chat-traced";
    chat.bind(openid, &people[0]).await;

    let answer = chat.say(openid, "查询").await;

    assert!(answer.contains("170元"), "{answer}");
    let logs = logs().text();
    let trace_of = |line: &str| {
        let start = line.find("\"trace_id\":\"")? + "\"trace_id\":\"".len();
        Some(line[start..start + 32].to_owned())
    };
    let ledger = logs
        .lines()
        .rfind(|l| l.contains("HouseholdPayments") && l.contains("request finished"))
        .expect("ledger logs the call");
    let trace = trace_of(ledger).expect("ledger's line names its trace");
    assert!(
        logs.lines()
            .any(|l| l.contains("webhook answered") && l.contains(&trace)),
        "the webhook's own line is in the trace ledger's call continued ({trace})"
    );
}
