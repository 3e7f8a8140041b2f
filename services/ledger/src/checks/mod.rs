//! Big-data cross-checks (大数据比对): rules that find what people hide, run as set-based
//! SQL over the payments and a mirror of identity's person facts, and kept as findings
//! staff dismiss or open as whistle reports.
//!
//! - [`rules`]: the rules as data (thresholds, exemptions, standards by band), validated.
//! - [`sql`]: each rule's query.
//! - [`run`]: full and incremental runs; findings deduplicated, reopened, closed.
//! - [`facts`]: the facts mirror, followed from identity's stream.
//! - [`findings`]: listing, dismissing, reporting, the rules' versions, audit and metrics.
//! - [`worker`]: the background runs after every roll and every facts import.

pub mod facts;
pub mod findings;
pub mod rules;
pub mod run;
pub mod sql;
pub mod worker;

pub use run::{RuleDone, RunOutcome, Scope};
