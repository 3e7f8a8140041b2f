//! A citizen on the local WeChat in safe mode, talking to the gateway of a real
//! `serve all`: each message signed and encrypted as WeChat sends it, each reply
//! checked, decrypted and read back. The gateway calls the same local WeChat's API
//! (access token, media downloads, late customer-service replies).

use std::time::Duration;

use huimin_kit::auth::Role;
use huimin_proto::identity::v1::{BoundPerson, ResolveOpenIdRequest};
use huimin_wechat_sim::{Event, Mode, Passive, Sim, SimConfig, WeChatSim};
use tonic::Code;

use crate::{
    helpers::{
        Options, Resident, TEST_WECHAT_AES_KEY, TEST_WECHAT_APPID, TEST_WECHAT_TOKEN, TestApp,
        authed, import_persons, persons_csv,
    },
    proxy::Proxy,
};

const ACCOUNT: &str = "gh_huimintest001";
/// An answer that missed the webhook's deadline comes as a customer-service message;
/// waited for this long (a loaded debug build can be slow, silence is still a failure).
const LATE: Duration = Duration::from_secs(15);

pub struct Chat {
    pub app: TestApp,
    pub sim: Sim,
    /// The gateway's address as the local WeChat knows it: the local WeChat must exist
    /// before the app (the gateway is configured with its API), and its webhook URL
    /// must be known when it starts, so it goes through a proxy pointed afterwards.
    _front: Proxy,
}

impl Chat {
    /// A fresh app with `people` registered, and the local WeChat pushing to it.
    pub async fn start(people: &[Resident]) -> Self {
        Self::start_with(people, Vec::new()).await
    }

    /// The same, with more settings for the app (a peer's URL, the reply deadline).
    pub async fn start_with(people: &[Resident], env: Vec<(&'static str, String)>) -> Self {
        let front = Proxy::unaimed().await;
        let mut config = SimConfig::dev(&format!("http://{}/wechat", front.addr));
        config.token = TEST_WECHAT_TOKEN.to_owned();
        config.appid = TEST_WECHAT_APPID.to_owned();
        config.appsecret = "test-appsecret".to_owned();
        config.aes_key = Some(TEST_WECHAT_AES_KEY.to_owned());
        config.account = ACCOUNT.to_owned();
        config.mode = Mode::Safe;
        let sim = WeChatSim::start(config).await.expect("local wechat starts");
        let app = TestApp::spawn_with(Options {
            env: std::iter::once(("HUIMIN_WECHAT_API_BASE", sim.api_base()))
                .chain(env)
                .collect(),
            ..Options::default()
        })
        .await;
        front.aim(&app.http_addrs[0].to_string());
        if !people.is_empty() {
            import_persons(&app, persons_csv(people).as_bytes())
                .await
                .expect("residents import");
        }
        Self {
            app,
            sim,
            _front: front,
        }
    }

    /// `openid` types `text`; the answer.
    pub async fn say(&self, openid: &str, text: &str) -> String {
        let before = self.sim.customer_messages(openid).len();
        let passive = self.sim.send_text(openid, text).await.expect("pushed");
        self.answer(openid, passive, before).await
    }

    /// `openid` sends a photo; the answer.
    pub async fn photo(&self, openid: &str, bytes: Vec<u8>) -> String {
        let before = self.sim.customer_messages(openid).len();
        let passive = self.sim.send_image(openid, bytes).await.expect("pushed");
        self.answer(openid, passive, before).await
    }

    /// `openid` follows, taps a menu button, …; the answer.
    pub async fn event(&self, openid: &str, event: Event) -> String {
        let before = self.sim.customer_messages(openid).len();
        let passive = self.sim.send_event(openid, event).await.expect("pushed");
        self.answer(openid, passive, before).await
    }

    /// The passive reply's text, or the late one sent after it.
    async fn answer(&self, openid: &str, passive: Passive, before: usize) -> String {
        match passive {
            Passive::Text(text) => text,
            Passive::Success | Passive::Empty => self
                .sim
                .wait_customer_messages(openid, before + 1, LATE)
                .await
                .get(before)
                .and_then(|m| m.text.clone())
                .expect("an answer, not silence"),
            other => panic!("not a text answer: {other:?}"),
        }
    }

    /// `openid` binds `person` through the chat, as a citizen does.
    pub async fn bind(&self, openid: &str, person: &Resident) -> String {
        let text = format!("绑定 {} {}", person.id_number.expose(), person.name);
        let answer = self.say(openid, &text).await;
        assert!(answer.contains("绑定成功"), "{answer}");
        answer
    }

    /// Whom identity has `openid` bound to, as the gateway asks it.
    pub async fn bound(&self, openid: &str) -> Vec<BoundPerson> {
        let request = ResolveOpenIdRequest {
            openid: openid.to_owned(),
        };
        match self
            .app
            .identity()
            .resolve_open_id(authed(request, &self.app.token(Role::Gateway, None)))
            .await
        {
            Ok(response) => response.into_inner().persons,
            Err(status) if status.code() == Code::NotFound => Vec::new(),
            Err(status) => panic!("resolve failed: {status:?}"),
        }
    }
}

/// Whether `text` holds something shaped like a full ID number (17 digits and a check
/// character); masked ones (4509**********1234) do not count.
pub fn has_id_number(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(18).any(|w| {
        w[..17].iter().all(char::is_ascii_digit) && (w[17].is_ascii_digit() || w[17] == 'X')
    })
}
