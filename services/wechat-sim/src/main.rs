//! `huimin-wechat-sim`: the local WeChat for development (`scripts/up` runs it).

use huimin_kit::config::{Env, TelemetryConfig};
use huimin_wechat_sim::{SimConfig, WeChatSim};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = Env::from_process();
    let _telemetry = huimin_kit::telemetry::init(&TelemetryConfig::from_env(&env, "wechat-sim")?)?;
    let config = SimConfig::from_env(&env)?;
    let sim = WeChatSim::start(config).await?;
    println!("local wechat: chat page {}", sim.chat_url());
    huimin_kit::shutdown::signal().await;
    sim.shutdown().await;
    Ok(())
}
