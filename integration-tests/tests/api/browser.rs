//! The citizen's side in a real browser: Debian's chromium driven through
//! chromedriver (WebDriver) against the local WeChat's chat page and the
//! gateway's H5 pages. 关注, bind and 查询 in the chat, 我的补贴 opened from
//! the welcome's link, a report with a photo, and every H5 page loaded once
//! with no console error, screenshotted at a phone's and a desktop's size.
//!
//! Console errors are read from chromium's own browser log (the
//! `goog:loggingPrefs` capability, fetched from chromedriver's log endpoint):
//! it holds uncaught exceptions, `console.error` calls and failed loads from
//! the start of each page, which a script injected after loading would miss.

use std::{
    collections::BTreeSet,
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use huimin_wechat_sim::{Mode, Passive, Sim, SimConfig, WeChatSim};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::{
    h5::PNG,
    helpers::{
        Options, Resident, TEST_WECHAT_AES_KEY, TEST_WECHAT_APPID, TEST_WECHAT_TOKEN, TestApp,
        import_persons, persons_csv, residents,
    },
    proxy::Proxy,
    rolls::{RollRow, import_csv},
};

/// What a missing browser says: CI runs scripts/setup first, so a machine
/// without one is set up wrong, and the test fails rather than skips.
const SETUP: &str = "is not installed: run scripts/setup, which installs Debian's chromium and \
chromium-driver for the browser tests";

/// The demo citizen the chat page plays first.
const CITIZEN: &str = "o-demo-citizen-1";

/// How long a page or a chat reply may take on a slow CI machine.
const PATIENCE: Duration = Duration::from_secs(20);

/// The GET pages of services/gateway/src/h5/mod.rs (`/h5` is `/h5/`,
/// `/h5/oauth` WeChat's callback and `/h5/h5.css` the stylesheet), with
/// 村务公示 once more showing a list, since the bare page shows only its
/// form. The test fails if a page links to one not listed here.
const PAGES: &[&str] = &[
    "/h5/",
    "/h5/my",
    "/h5/bind",
    "/h5/disclosure",
    "/h5/disclosure?village=%E5%A4%A7%E6%97%BA%E6%9D%91&program=DIBAO_RURAL&period=2026-07",
    "/h5/projects",
    "/h5/policies",
    "/h5/report",
    "/h5/progress",
];

/// A phone (an iPhone X's CSS pixels) and a laptop.
const SIZES: [(&str, u32, u32, bool); 2] =
    [("phone", 375, 812, true), ("desktop", 1280, 800, false)];

/// The suite, its WeChat the local one: the sim pushes to the gateway's
/// webhook and the gateway calls the sim's API and OAuth. Persons are
/// imported and one roll paid: 170.50 yuan to 庞秀英, 170 to her son.
struct Stage {
    sim: Sim,
    app: TestApp,
    /// The gateway's public address (`HUIMIN_PUBLIC_URL`), where links in
    /// chat replies and the OAuth redirect point.
    gateway: Proxy,
    people: Vec<Resident>,
}

impl Stage {
    async fn start() -> Self {
        // The gateway's public URL is in its configuration, and the sim's
        // webhook URL in the sim's, before the gateway's port is known: both
        // name a proxy aimed at the gateway once it listens.
        let gateway = Proxy::unaimed().await;
        let public_url = format!("http://{}", gateway.addr);
        let sim = WeChatSim::start({
            let mut config = SimConfig::dev(&format!("{public_url}/wechat"));
            config.token = TEST_WECHAT_TOKEN.to_owned();
            config.appid = TEST_WECHAT_APPID.to_owned();
            config.appsecret = "test-appsecret".to_owned();
            config.aes_key = Some(TEST_WECHAT_AES_KEY.to_owned());
            config.mode = Mode::Safe;
            config
        })
        .await
        .unwrap();
        let app = TestApp::spawn_with(Options {
            env: vec![
                ("HUIMIN_WECHAT_API_BASE", sim.api_base()),
                ("HUIMIN_WECHAT_OAUTH_BASE", sim.api_base()),
                ("HUIMIN_PUBLIC_URL", public_url),
            ],
            ..Options::default()
        })
        .await;
        gateway.aim(&app.http_addrs[0].to_string());
        let people = residents();
        import_persons(&app, persons_csv(&people).as_bytes())
            .await
            .unwrap();
        import_csv(
            &app,
            &[
                RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170.5"),
                RollRow::pay(&people[1], "DIBAO_RURAL", "2026-07", "170"),
            ],
        )
        .await
        .unwrap();
        Self {
            sim,
            app,
            gateway,
            people,
        }
    }

    fn gateway_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway.addr)
    }

    /// What a citizen types to bind 庞秀英.
    fn bind_command(&self) -> String {
        format!(
            "绑定 {} {}",
            self.people[0].id_number.expose(),
            self.people[0].name
        )
    }
}

/// chromium under chromedriver, both started for one test and stopped with it.
struct Browser {
    client: Client,
    /// chromedriver's base URL, for the endpoints fantoccini has no call for.
    driver_url: String,
    session: String,
    http: reqwest::Client,
    /// Killed when the browser is dropped.
    driver: Child,
    /// chromium's browser process, killed by id if the test ends without
    /// closing the session (a failed assertion).
    chromium_pid: Option<u64>,
    profile: PathBuf,
    closed: bool,
}

/// The first `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

impl Browser {
    async fn start() -> Self {
        let chromium = on_path("chromium").unwrap_or_else(|| panic!("chromium {SETUP}"));
        let chromedriver =
            on_path("chromedriver").unwrap_or_else(|| panic!("chromedriver {SETUP}"));
        // Port 0: chromedriver picks a free port and says which on stdout.
        let mut driver = Command::new(&chromedriver)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("chromedriver does not start ({error}); {SETUP}"));
        let stdout = driver.stdout.take().expect("stdout is piped");
        // A thread reads stdout (tokio's process support is not compiled
        // in): the port line, then the rest, so a chatty chromedriver never
        // blocks on a full pipe.
        let (port_tx, port_rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut port_tx = Some(port_tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("started successfully on port ").nth(1)
                    && let Some(tx) = port_tx.take()
                {
                    let _ = tx.send(rest.trim_end_matches('.').parse::<u16>().ok());
                }
            }
        });
        let port = tokio::time::timeout(PATIENCE, port_rx)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
            .expect("chromedriver says which port it listens on");
        let driver_url = format!("http://127.0.0.1:{port}");

        let profile =
            std::env::temp_dir().join(format!("huimin-chromium-{}", uuid::Uuid::new_v4().simple()));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": chromium,
                // As root chromium needs --no-sandbox; without the background
                // networking switches it dials Google and stalls on a machine
                // without the internet.
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver_url)
            .await
            .unwrap_or_else(|error| panic!("chromedriver cannot start chromium: {error}"));
        let session = client
            .session_id()
            .await
            .unwrap()
            .expect("a WebDriver session has an id");
        let chromium_pid = client
            .capabilities()
            .and_then(|c| c.get("goog:processID"))
            .and_then(Value::as_u64);
        Self {
            client,
            driver_url,
            session,
            http: reqwest::Client::new(),
            driver,
            chromium_pid,
            profile,
            closed: false,
        }
    }

    /// A chromedriver endpoint of this session that fantoccini has no call for.
    async fn driver_post(&self, endpoint: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!(
                "{}/session/{}/{endpoint}",
                self.driver_url, self.session
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{endpoint}: {answer}");
        answer["value"].clone()
    }

    /// The errors chromium logged since the last call: uncaught exceptions,
    /// `console.error`, loads that failed (a 404 stylesheet, say).
    async fn console_errors(&self) -> Vec<String> {
        let entries = self
            .driver_post("se/log", json!({ "type": "browser" }))
            .await;
        entries
            .as_array()
            .expect("the log is a list")
            .iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| {
                let field = |name: &str| entry[name].as_str().unwrap_or_default().to_owned();
                format!("{}: {}", field("source"), field("message"))
            })
            .collect()
    }

    /// Lays pages out as on a screen `width`×`height` CSS pixels (a phone's
    /// viewport rules apply when `mobile`), the window's own chrome aside.
    async fn emulate(&self, width: u32, height: u32, mobile: bool) {
        self.driver_post(
            "goog/cdp/execute",
            json!({
                "cmd": "Emulation.setDeviceMetricsOverride",
                "params": {
                    "width": width, "height": height,
                    "deviceScaleFactor": 1, "mobile": mobile,
                },
            }),
        )
        .await;
    }

    async fn wait_for(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(error) => panic!("no {css} on {}: {error}", self.url().await),
        }
    }

    async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    async fn body_text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Types `text` into the chat page's box and sends it.
    async fn say(&self, text: &str) {
        let input = self.wait_for("#text").await;
        input.send_keys(text).await.unwrap();
        self.client
            .find(Locator::Css("#compose button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// The first reply in the chat that contains `needle`, once it arrives.
    async fn reply_containing(&self, needle: &str) -> Element {
        let deadline = Instant::now() + PATIENCE;
        loop {
            for line in self
                .client
                .find_all(Locator::Css(".line.reply"))
                .await
                .unwrap()
            {
                if line.text().await.unwrap().contains(needle) {
                    return line;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "no reply with {needle:?} in the chat: {}",
                    self.body_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Ends the session, which quits chromium.
    async fn close(mut self) {
        self.closed = true;
        self.client.clone().close().await.unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.closed {
            // A failed assertion left the session open: chromium outlives a
            // killed chromedriver unless it is ended too, at once, so it
            // writes nothing more into its profile.
            if let Some(pid) = self.chromium_pid {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // chromium's helpers may still be closing files for a moment.
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.profile).is_ok() || !self.profile.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A photo on disk for the browser to attach (a small valid PNG), removed
/// when dropped.
struct PhotoFile(PathBuf);

impl PhotoFile {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!(
            "huimin-photo-{}.png",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&path, PNG).unwrap();
        Self(path)
    }
}

impl Drop for PhotoFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
async fn in_the_chat_page_a_citizen_binds_asks_opens_her_subsidies_and_reports_with_a_photo() {
    let stage = Stage::start().await;
    let browser = Browser::start().await;
    let client = &browser.client;
    let screenshots = Screenshots::new();
    let (_, width, height, mobile) = SIZES[0];
    browser.emulate(width, height, mobile).await;

    client.goto(&stage.sim.chat_url()).await.unwrap();
    browser.wait_for("#citizens option").await;
    let playing = client
        .execute("return document.getElementById('citizens').value", vec![])
        .await
        .unwrap();
    assert_eq!(
        playing, CITIZEN,
        "the chat page plays the first demo citizen"
    );

    // 关注: the welcome carries the link to 我的补贴.
    client
        .find(Locator::Id("follow"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let welcome = browser.reply_containing("/h5/my").await;

    browser.say(&stage.bind_command()).await;
    let bound = browser.reply_containing("绑定成功").await;
    assert!(
        bound.text().await.unwrap().contains(&stage.people[0].name),
        "{}",
        browser.body_text().await
    );

    browser.say("查询").await;
    let answer = browser.reply_containing("2026年7月").await;
    screenshots.take(&browser, "chat", (width, height)).await;
    let text = answer.text().await.unwrap();
    assert!(text.contains("170.50元"), "her own payment: {text}");
    assert!(
        text.contains("170元"),
        "her son's, as the household's: {text}"
    );
    assert!(!text.contains(stage.people[0].id_number.expose()));
    assert_eq!(browser.console_errors().await, Vec::<String>::new());

    // The welcome's link to 我的补贴 opens in a new tab as this citizen,
    // through the local WeChat's OAuth.
    let link = welcome
        .find(Locator::Css("a"))
        .await
        .expect("the welcome links to 我的补贴");
    assert_eq!(
        link.text().await.unwrap(),
        stage.gateway_url("/h5/my"),
        "the link names the gateway's public URL"
    );
    let chat_tab = client.window().await.unwrap();
    link.click().await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    let my_tab = loop {
        let tabs = client.windows().await.unwrap();
        if let Some(tab) = tabs.into_iter().find(|t| *t != chat_tab) {
            break tab;
        }
        assert!(Instant::now() < deadline, "the link opens a tab");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    client.switch_to_window(my_tab).await.unwrap();
    browser.emulate(width, height, mobile).await;
    let deadline = Instant::now() + PATIENCE;
    while !browser
        .url()
        .await
        .starts_with(&stage.gateway_url("/h5/my"))
    {
        assert!(
            Instant::now() < deadline,
            "signed in and back on 我的补贴: {}",
            browser.url().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let heading = browser.wait_for("main h1").await.text().await.unwrap();
    assert_eq!(heading, "我的补贴");
    let my = browser.body_text().await;
    assert!(my.contains("已绑定：庞秀英"), "{my}");
    assert!(my.contains("170.50"), "{my}");
    assert!(my.contains("全家合计 340.50 元"), "{my}");
    assert_eq!(browser.console_errors().await, Vec::<String>::new());

    // 我要举报 from the page's menu: a report with a photo, anonymous.
    client
        .find(Locator::LinkText("我要举报"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for("#text")
        .await
        .send_keys("村里有人冒领低保，已拍照。")
        .await
        .unwrap();
    let photo = PhotoFile::new();
    client
        .find(Locator::Id("photos"))
        .await
        .unwrap()
        .send_keys(&photo.0.to_string_lossy())
        .await
        .unwrap();
    client
        .find(Locator::Css(
            "form[action='/h5/report'] button[type=submit]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let receipt = browser
        .wait_for(".receipt .code")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        receipt.len() >= 16,
        "a high-entropy receipt code: {receipt:?}"
    );
    assert!(browser.body_text().await.contains("只显示这一次"));
    screenshots.take(&browser, "receipt", (width, height)).await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());

    client.goto(&stage.gateway_url("/h5/report")).await.unwrap();
    browser.wait_for("#text").await;
    assert!(
        client
            .find_all(Locator::Css(".receipt"))
            .await
            .unwrap()
            .is_empty()
            && !browser.body_text().await.contains(&receipt),
        "the receipt code is shown once"
    );

    let mut db = stage.app.db_schema("whistle").await;
    type Row = (bool, Option<String>, String, i32, i32);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT r.anonymous, r.reporter_openid, p.kind, p.width, p.height
           FROM reports r JOIN report_photos p ON p.report_id = r.id",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![(true, None, "png".to_owned(), 1, 1)],
        "one anonymous report with the browser's photo"
    );

    // 举报进度 by that code.
    client
        .goto(&stage.gateway_url("/h5/progress"))
        .await
        .unwrap();
    browser
        .wait_for("#receipt")
        .await
        .send_keys(&receipt)
        .await
        .unwrap();
    client
        .find(Locator::Css(
            "form[action='/h5/progress'] button[type=submit]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let status = browser.wait_for(".card[role=status]").await;
    assert!(status.text().await.unwrap().contains("处理状态"));
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    browser.close().await;
}

/// Where screenshots go: `HUIMIN_SCREENSHOT_DIR` to keep them and look at
/// them, else a temporary directory removed when the test ends.
struct Screenshots {
    dir: PathBuf,
    keep: bool,
}

impl Screenshots {
    fn new() -> Self {
        let (dir, keep) = match std::env::var_os("HUIMIN_SCREENSHOT_DIR") {
            Some(dir) => (PathBuf::from(dir), true),
            None => (
                std::env::temp_dir().join(format!(
                    "huimin-screenshots-{}",
                    uuid::Uuid::new_v4().simple()
                )),
                false,
            ),
        };
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir, keep }
    }

    /// Takes one of what the browser shows, `width`×`height` CSS pixels.
    async fn take(&self, browser: &Browser, name: &str, (width, height): (u32, u32)) {
        let png = browser.client.screenshot().await.unwrap();
        assert_eq!(png_size(&png), (width, height), "{name}");
        std::fs::write(self.dir.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Screenshots {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("screenshots in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `/h5/disclosure?village=…` as `disclosure-q`, for a file name.
fn slug(page: &str) -> String {
    let (path, query) = page.split_once('?').unwrap_or((page, ""));
    let name = path.trim_start_matches("/h5").trim_matches('/');
    let name = if name.is_empty() { "index" } else { name };
    if query.is_empty() {
        name.to_owned()
    } else {
        format!("{name}-q")
    }
}

/// The width and height of a PNG, from its IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().expect("4 bytes"));
    (be(16), be(20))
}

#[tokio::test]
async fn every_h5_page_loads_without_a_console_error_on_a_phone_and_a_desktop() {
    let stage = Stage::start().await;
    match stage
        .sim
        .send_text(CITIZEN, &stage.bind_command())
        .await
        .unwrap()
    {
        Passive::Text(text) => assert!(text.contains("绑定成功"), "{text}"),
        other => panic!("not a text reply: {other:?}"),
    }
    let browser = Browser::start().await;
    let client = &browser.client;

    // The check sees an error when there is one: a page that throws.
    client
        .goto("data:text/html,<script>throw%20new%20Error('seen%20by%20the%20console%20check')</script>")
        .await
        .unwrap();
    let seen = browser.console_errors().await;
    assert!(
        seen.iter().any(|e| e.contains("seen by the console check")),
        "{seen:?}"
    );

    // Holding the phone as the citizen: the local WeChat's OAuth signs her in.
    client
        .goto(&format!(
            "{}sim/open?openid={CITIZEN}&url={}",
            stage.sim.chat_url(),
            stage.gateway_url("/h5/")
        ))
        .await
        .unwrap();
    assert_eq!(browser.url().await, stage.gateway_url("/h5/"));
    assert_eq!(browser.console_errors().await, Vec::<String>::new());

    let screenshots = Screenshots::new();
    let listed: BTreeSet<&str> = PAGES
        .iter()
        .map(|page| page.split('?').next().expect("split yields one part"))
        .collect();
    for (n, page) in PAGES.iter().enumerate() {
        let (_, width, height, mobile) = SIZES[0];
        browser.emulate(width, height, mobile).await;
        client.goto(&stage.gateway_url(page)).await.unwrap();
        let url = browser.url().await;
        assert!(
            url.starts_with(&stage.gateway_url(page.split('?').next().expect("a path"))),
            "{page} ended on {url}"
        );
        let heading = browser.wait_for("main h1").await.text().await.unwrap();
        assert!(!heading.is_empty(), "{page} has a heading");
        let title = client.title().await.unwrap();
        assert!(title.ends_with("惠民资金监督"), "{page}: {title}");
        assert_eq!(
            browser.console_errors().await,
            Vec::<String>::new(),
            "{page}"
        );

        // Every page it links to is on the list, so a new page is not missed.
        let links = client
            .execute(
                "return [...document.querySelectorAll('a[href^=\"/h5\"]')].map(a => a.getAttribute('href').split('?')[0])",
                vec![],
            )
            .await
            .unwrap();
        for link in links.as_array().expect("a list of links") {
            let link = link.as_str().expect("a path");
            assert!(
                listed.contains(link),
                "{page} links to {link}, not in PAGES"
            );
        }

        for (size, width, height, mobile) in SIZES {
            browser.emulate(width, height, mobile).await;
            let fits = client
                .execute(
                    "return document.documentElement.scrollWidth <= window.innerWidth",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(fits, json!(true), "{page} scrolls sideways on a {size}");
            let name = format!("{n:02}-{}-{size}", slug(page));
            screenshots.take(&browser, &name, (width, height)).await;
        }
        assert_eq!(
            browser.console_errors().await,
            Vec::<String>::new(),
            "{page}"
        );
    }
    browser.close().await;
}
