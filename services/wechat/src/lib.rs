//! WeChat's Official Account message protocol, shared by the gateway (which receives pushes)
//! and the local WeChat (which sends them): request signatures, the WXBizMsgCrypt safe-mode
//! cipher, and the XML of pushes, envelopes and passive replies.
//!
//! No service dependencies on purpose: both sides of the protocol link it, and neither should
//! drag the other's runtime in. The vectors in `/work/shared/WECHAT.md` (P1–P3, A1, C) are
//! reproduced byte for byte by the unit tests.
#![forbid(unsafe_code)]

pub mod crypt;
pub mod signature;
pub mod xml;

pub use crypt::{AesKey, CryptError, Decrypted, MsgCrypt};
pub use xml::{Envelope, Event, Inbound, InboundKind, XmlError};
