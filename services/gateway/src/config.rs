//! The gateway's configuration, read once from the environment.

use huimin_kit::config::{ConfigError, Env};
use std::net::IpAddr;

use secrecy::SecretString;

/// WeChat's API, unless `HUIMIN_WECHAT_API_BASE` points elsewhere (the local
/// WeChat in development and tests).
pub const WECHAT_API_BASE: &str = "https://api.weixin.qq.com";

/// Where WeChat's OAuth2 authorization page lives (`/connect/oauth2/authorize`).
pub const WECHAT_OAUTH_BASE: &str = "https://open.weixin.qq.com";

#[derive(Debug)]
pub struct GatewayConfig {
    /// The Token configured in the Official Account's server settings:
    /// every request's signature is made with it.
    pub wechat_token: SecretString,
    /// The Official Account's AppID; an encrypted message for another is refused.
    pub appid: String,
    pub appsecret: SecretString,
    /// The 43-character EncodingAESKey (safe and compatible modes); `None`
    /// runs plain mode only.
    pub aes_key: Option<SecretString>,
    /// The key being rotated out, still accepted during a rotation.
    pub aes_key_previous: Option<SecretString>,
    /// WeChat's API (`access_token`, customer-service messages, media).
    pub api_base: String,
    /// WeChat's OAuth2 authorization page host.
    pub oauth_base: String,
    /// The gateway's address as citizens' phones reach it, for links to the
    /// H5 pages in replies (`HUIMIN_PUBLIC_URL`, no trailing slash).
    pub public_url: String,
    /// How long the webhook waits for an answer before it replies `success` and sends the
    /// answer later as a customer-service message (`HUIMIN_WECHAT_REPLY_DEADLINE_MS`):
    /// well under WeChat's 5 s, which also covers the network both ways. 0 sends every
    /// answer as a customer-service message.
    pub reply_deadline: std::time::Duration,
    /// Signs the H5 session cookies (HMAC-SHA256, 32 bytes as base64,
    /// `HUIMIN_SESSION_KEY`).
    pub session_key: SessionKey,
    /// Reverse proxies whose `X-Forwarded-For` is believed
    /// (`HUIMIN_TRUSTED_PROXIES`, comma-separated IPs); anyone else could
    /// forge it to dodge the per-IP limits.
    pub trusted_proxies: Vec<IpAddr>,
    /// How often the usage counted in memory is sent to identity
    /// (`HUIMIN_USAGE_FLUSH_SECS`): what a crash can lose, against one
    /// small transaction per gateway replica that often.
    pub usage_flush: std::time::Duration,
}

/// The default of [`GatewayConfig::usage_flush`], in seconds.
pub const USAGE_FLUSH_SECS: u64 = 10;

/// The default of [`GatewayConfig::reply_deadline`], in milliseconds.
pub const REPLY_DEADLINE_MS: u64 = 3500;

impl GatewayConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            wechat_token: env.required_secret("HUIMIN_WECHAT_TOKEN")?,
            appid: env.required_str("HUIMIN_WECHAT_APPID")?,
            appsecret: env.required_secret("HUIMIN_WECHAT_APPSECRET")?,
            aes_key: env
                .optional_str("HUIMIN_WECHAT_AES_KEY")
                .map(SecretString::from),
            aes_key_previous: env
                .optional_str("HUIMIN_WECHAT_AES_KEY_PREVIOUS")
                .map(SecretString::from),
            api_base: env
                .optional_str("HUIMIN_WECHAT_API_BASE")
                .unwrap_or_else(|| WECHAT_API_BASE.to_owned()),
            oauth_base: env
                .optional_str("HUIMIN_WECHAT_OAUTH_BASE")
                .unwrap_or_else(|| WECHAT_OAUTH_BASE.to_owned()),
            public_url: env
                .optional_str("HUIMIN_PUBLIC_URL")
                .map(|url| url.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| "http://localhost:8080".to_owned()),
            reply_deadline: std::time::Duration::from_millis(
                env.parse_or("HUIMIN_WECHAT_REPLY_DEADLINE_MS", REPLY_DEADLINE_MS)?,
            ),
            session_key: SessionKey(env.key32("HUIMIN_SESSION_KEY")?),
            trusted_proxies: trusted_proxies(env.optional_str("HUIMIN_TRUSTED_PROXIES"))?,
            usage_flush: usage_flush(env.parse_or("HUIMIN_USAGE_FLUSH_SECS", USAGE_FLUSH_SECS)?)?,
        })
    }
}

fn usage_flush(secs: u64) -> Result<std::time::Duration, ConfigError> {
    if secs == 0 {
        return Err(ConfigError::Malformed {
            name: "HUIMIN_USAGE_FLUSH_SECS",
            reason: "must be at least 1 second".to_owned(),
        });
    }
    Ok(std::time::Duration::from_secs(secs))
}

fn trusted_proxies(value: Option<String>) -> Result<Vec<IpAddr>, ConfigError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse().map_err(|_| ConfigError::Malformed {
                name: "HUIMIN_TRUSTED_PROXIES",
                reason: format!("{s:?} is not an IP address"),
            })
        })
        .collect()
}

/// The H5 session cookies' signing key; never printed.
pub struct SessionKey(pub [u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usage_flush_of_zero_seconds_is_refused() {
        assert!(usage_flush(0).is_err());
        assert_eq!(
            usage_flush(USAGE_FLUSH_SECS).expect("the default"),
            std::time::Duration::from_secs(10)
        );
    }
}
