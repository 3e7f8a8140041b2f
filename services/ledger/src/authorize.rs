//! Who may read whose payments: staff within their scope, and the gateway
//! for a citizen only where identity says the openid may.
//!
//! A citizen's lookup is one question to identity (`AuthorizeLookup`),
//! answered from the register; ledger keeps the answer in the shared cache
//! under the openid's binding generation, which identity moves on at every
//! bind and unbind before the call returns (an unbinding it cannot announce
//! fails, so the caller retries). Only allowances are kept. So a hot lookup
//! asks nobody, an unbinding counts on the very next lookup, and one cache stands between
//! the register and the answer (before, a 5 s per-replica memo of identity's
//! own cached answer did, and an unbound openid still read for up to 5 s).

use huimin_kit::{
    auth::{Caller, Role},
    cache::{BINDING_ANSWER_TTL, Current, openid_bindings_generation},
    openid::OpenId,
};
use huimin_proto::identity::v1::{AuthorizeLookupRequest, authorize_lookup_request};

use crate::{Ledger, LedgerError, lookup::Subject};

impl Ledger {
    /// Checks that `caller` may read `subject`'s payments: the gateway only
    /// for an openid bound to that person or a member of that household,
    /// staff within their scope.
    pub async fn authorize(
        &self,
        caller: &Caller,
        openid: &str,
        subject: &Subject,
    ) -> Result<(), LedgerError> {
        match caller.role {
            Role::Gateway => {
                let openid = OpenId::parse(openid)
                    .map_err(|_| LedgerError::forbidden("请先绑定本人身份信息"))?;
                if self.openid_may_read(&openid, subject).await? {
                    Ok(())
                } else {
                    Err(LedgerError::forbidden("只能查询本人或本户的补贴信息"))
                }
            }
            Role::Town => {
                let town: Option<String> = match subject {
                    Subject::Person(key) => {
                        sqlx::query_scalar("SELECT town_code FROM payments WHERE person_key = $1 ORDER BY id DESC LIMIT 1")
                            .bind(key.as_bytes().as_slice())
                            .fetch_optional(&self.pool)
                            .await?
                    }
                    Subject::Household(code) => {
                        sqlx::query_scalar("SELECT town_code FROM payments WHERE household_code = $1 ORDER BY id DESC LIMIT 1")
                            .bind(code)
                            .fetch_optional(&self.pool)
                            .await?
                    }
                };
                match town {
                    Some(town) if !caller.covers_town(&town) => {
                        Err(LedgerError::forbidden("该人员不在您的管辖范围内"))
                    }
                    _ => Ok(()),
                }
            }
            Role::Admin | Role::Inspector | Role::Department | Role::Auditor | Role::Service => {
                Ok(())
            }
            Role::Provincial => Err(LedgerError::forbidden("当前角色无权执行此操作")),
        }
    }

    /// identity's answer, kept under the openid's binding generation.
    async fn openid_may_read(
        &self,
        openid: &OpenId,
        subject: &Subject,
    ) -> Result<bool, LedgerError> {
        let openid = openid.as_str();
        let (asked, key) = match subject {
            Subject::Person(key) => (
                authorize_lookup_request::Subject::PersonKey(key.to_hex()),
                format!("ledger:authz:{openid}:person:{}", key.to_hex()),
            ),
            Subject::Household(code) => (
                authorize_lookup_request::Subject::HouseholdCode(code.clone()),
                format!("ledger:authz:{openid}:household:{code}"),
            ),
        };
        let request = AuthorizeLookupRequest {
            openid: openid.to_owned(),
            subject: Some(asked),
        };
        let ask = async {
            self.identity
                .call(|mut identity| {
                    let request = request.clone();
                    async move { identity.authorize_lookup(request).await }
                })
                .await
                .map(|answer| answer.into_inner().allowed)
                .map_err(|status| LedgerError::peer_unavailable("identity", status))
        };
        let generation = openid_bindings_generation(openid);
        let kept = self
            .cache
            .get_current_shared::<bool>(&generation, &key)
            .await;
        if matches!(&kept, Current::Hit(allowed) if **allowed) {
            return Ok(true);
        }
        let allowed = ask.await?;
        // Only an allowance is kept: a refusal is asked again every time, so a
        // member the register gains (a binding, a persons import) counts at once.
        if let (true, Current::Miss(under)) = (allowed, kept) {
            self.cache
                .put_current(&generation, &key, under, &allowed, BINDING_ANSWER_TTL)
                .await;
        }
        Ok(allowed)
    }
}
