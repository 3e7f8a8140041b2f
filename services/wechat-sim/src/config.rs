//! The binary's configuration, read once from the environment. The sim
//! reads the gateway's own variables, so one `.huimin/env` serves both.

use std::{net::SocketAddr, time::Duration};

use huimin_kit::config::{ConfigError, Env};
use secrecy::ExposeSecret as _;

use crate::{Mode, SimConfig, demo_citizens};

/// Where the binary listens unless `HUIMIN_SIM_ADDR` says otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8081";

impl SimConfig {
    /// `HUIMIN_SIM_ADDR`, `HUIMIN_SIM_WEBHOOK_URL` (default
    /// `http://127.0.0.1:8080/wechat`), `HUIMIN_SIM_MODE` (plain, compatible
    /// or safe; safe when an EncodingAESKey is set) and the gateway's
    /// `HUIMIN_WECHAT_TOKEN`, `_APPID`, `_APPSECRET`, `_AES_KEY`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let aes_key = env.optional_str("HUIMIN_WECHAT_AES_KEY");
        let default_mode = if aes_key.is_some() {
            Mode::Safe
        } else {
            Mode::Plain
        };
        Ok(Self {
            addr: env.parse_or::<SocketAddr>(
                "HUIMIN_SIM_ADDR",
                DEFAULT_ADDR.parse().expect("the default address parses"),
            )?,
            token: env
                .required_secret("HUIMIN_WECHAT_TOKEN")?
                .expose_secret()
                .to_owned(),
            appid: env.required_str("HUIMIN_WECHAT_APPID")?,
            appsecret: env
                .required_secret("HUIMIN_WECHAT_APPSECRET")?
                .expose_secret()
                .to_owned(),
            aes_key,
            mode: env.parse_or("HUIMIN_SIM_MODE", default_mode)?,
            webhook_url: env
                .optional_str("HUIMIN_SIM_WEBHOOK_URL")
                .unwrap_or_else(|| "http://127.0.0.1:8080/wechat".to_owned()),
            account: env
                .optional_str("HUIMIN_SIM_ACCOUNT")
                .unwrap_or_else(|| "gh_huimindev0001".to_owned()),
            reply_timeout: Duration::from_secs(5),
            citizens: demo_citizens(),
        })
    }
}
