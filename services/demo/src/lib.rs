//! huimin-demo: demo data for `huimin seed`, the bench and tests — a synthetic 博白县
//! ([`county`]), ten years of what its programs would have paid it ([`payments`]), with
//! planted irregularities for supervision to find, and the loading of both ([`seed`])
//! through identity's and ledger's bulk APIs. A tool: no service depends on it.

#![forbid(unsafe_code)]

pub mod county;
pub mod payments;
pub mod seed;
