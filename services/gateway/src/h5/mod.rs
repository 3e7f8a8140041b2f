//! The H5 pages (我的补贴, 绑定, 村务公示, 项目, 政策, 我要举报, 举报进度),
//! server-rendered, reached from the conversation and the menu.

use crate::Gateway;

pub fn router(gateway: Gateway) -> axum::Router {
    axum::Router::new().with_state(gateway)
}
