//! Which persons a WeChat openid is bound to, as identity answers it,
//! remembered for a few seconds per process.
//!
//! A citizen's page makes several lookups in a row, each authorized by the
//! openid's bindings; asking identity once for the burst instead of once per
//! call takes a gRPC hop off every cached lookup. Only what a binding
//! *allows* is remembered: a refusal is always re-checked with identity, so
//! a member bound a moment ago is seen at once, and an unbinding takes
//! effect on this replica within [`REMEMBER_FOR`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use huimin_proto::identity::v1::{BoundPerson, ResolveOpenIdRequest};

use crate::{IdentityClient, LedgerError};

/// How long an answer from identity is reused.
pub const REMEMBER_FOR: Duration = Duration::from_secs(5);
/// Openids remembered at most; the memo is emptied when it is full.
const CAPACITY: usize = 10_000;

/// When identity answered, and the persons the openid is bound to.
type Answer = (Instant, Arc<[BoundPerson]>);

/// openid → identity's latest answer.
#[derive(Clone, Default)]
pub struct BindingMemo {
    entries: Arc<Mutex<HashMap<String, Answer>>>,
}

/// The persons an openid is bound to, and whether identity just said so.
pub struct Bound {
    pub persons: Arc<[BoundPerson]>,
    pub fresh: bool,
}

impl BindingMemo {
    /// The openid's bound persons: remembered if identity answered within
    /// [`REMEMBER_FOR`] (unless `fresh` is asked for), else from identity.
    pub async fn resolve(
        &self,
        identity: &IdentityClient,
        openid: &str,
        fresh: bool,
    ) -> Result<Bound, LedgerError> {
        if !fresh && let Some(persons) = self.remembered(openid) {
            return Ok(Bound {
                persons,
                fresh: false,
            });
        }
        let persons: Arc<[BoundPerson]> = match identity
            .clone()
            .resolve_open_id(ResolveOpenIdRequest {
                openid: openid.to_owned(),
            })
            .await
        {
            Ok(response) => response.into_inner().persons.into(),
            Err(status) if status.code() == tonic::Code::NotFound => Arc::from([]),
            Err(status) => return Err(LedgerError::peer_unavailable("identity", status)),
        };
        if !persons.is_empty()
            && let Ok(mut entries) = self.entries.lock()
        {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(openid.to_owned(), (Instant::now(), persons.clone()));
        }
        Ok(Bound {
            persons,
            fresh: true,
        })
    }

    fn remembered(&self, openid: &str) -> Option<Arc<[BoundPerson]>> {
        let entries = self.entries.lock().ok()?;
        let (at, persons) = entries.get(openid)?;
        (at.elapsed() < REMEMBER_FOR).then(|| persons.clone())
    }
}
