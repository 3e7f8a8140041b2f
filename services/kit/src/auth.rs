//! Signed caller tokens and the layer that enforces who may call what.
//!
//! identity signs tokens with an Ed25519 key; every service verifies them
//! locally with the public key, so no call to identity is needed per request.
//! The format is deliberately small and fixed — `v1.<claims>.<signature>`,
//! both base64url — rather than JWT: there is one algorithm, so there is no
//! algorithm header for an attacker to choose.

use std::{
    collections::HashMap,
    fmt,
    str::FromStr,
    sync::Arc,
    task::{Context, Poll},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use chrono::Utc;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use tower::{Layer, Service};

/// What a caller is, and so what it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// County platform administrator.
    Admin,
    /// Discipline inspection (纪委监委): sees everything, changes reports.
    Inspector,
    /// A department's officer, scoped to the department code.
    Department,
    /// A town's officer, scoped to the 9-digit town code.
    Town,
    /// Read-only audit.
    Auditor,
    /// A provincial system: read-only exports and event feeds.
    Provincial,
    /// The WeChat gateway, acting for citizens whose openid it verified.
    Gateway,
    /// Another huimin service.
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Inspector => "inspector",
            Role::Department => "department",
            Role::Town => "town",
            Role::Auditor => "auditor",
            Role::Provincial => "provincial",
            Role::Gateway => "gateway",
            Role::Service => "service",
        }
    }

    /// What staff call the role, in refusals.
    pub fn label_zh(self) -> &'static str {
        match self {
            Role::Admin => "管理员",
            Role::Inspector => "纪委监委",
            Role::Department => "部门",
            Role::Town => "乡镇",
            Role::Auditor => "审计",
            Role::Provincial => "省级系统",
            Role::Gateway => "微信网关",
            Role::Service => "服务",
        }
    }

    /// Every role, in the order the README lists them.
    pub const ALL: [Role; 8] = [
        Role::Admin,
        Role::Inspector,
        Role::Department,
        Role::Town,
        Role::Auditor,
        Role::Provincial,
        Role::Gateway,
        Role::Service,
    ];

    /// Whether tokens of this role must name a scope.
    pub fn needs_scope(self) -> bool {
        matches!(self, Role::Department | Role::Town)
    }

    /// Whether this role belongs to a person (a staff account) rather than a system.
    pub fn is_staff(self) -> bool {
        matches!(
            self,
            Role::Admin | Role::Inspector | Role::Department | Role::Town | Role::Auditor
        )
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "admin" => Role::Admin,
            "inspector" => Role::Inspector,
            "department" => Role::Department,
            "town" => Role::Town,
            "auditor" => Role::Auditor,
            "provincial" => Role::Provincial,
            "gateway" => Role::Gateway,
            "service" => Role::Service,
            other => return Err(format!("unknown role {other:?}")),
        })
    }
}

/// The verified claims of a token: who calls, as what, within which scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// Staff username or service account name.
    pub sub: String,
    pub role: Role,
    /// Department code or town code for scoped roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub iat: i64,
    pub exp: i64,
    /// The services this token may be presented to (their component names,
    /// as in `huimin.<name>.v1`); any other refuses it. A token without an
    /// audience (issued before audiences existed) is refused everywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aud: Vec<String>,
    /// The token's id, by which it is revoked (see [`TokenVerifier::set_revoked`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
}

/// The audience of a staff member's token: every service of the suite,
/// since the console calls each with the staff member's own token.
pub const SUITE: &[&str] = &["identity", "ledger", "registry", "whistle", "notify"];

/// The service a gRPC path belongs to: `/huimin.ledger.v1.LedgerService/X`
/// is ledger's. Paths outside `huimin.*` (health, reflection) have none.
pub fn audience_of(path: &str) -> Option<&str> {
    let package = path.strip_prefix("/huimin.")?;
    let (service, rest) = package.split_once('.')?;
    rest.starts_with("v").then_some(service)
}

impl Caller {
    /// Whether the token may be presented to `service`.
    pub fn meant_for(&self, service: &str) -> bool {
        self.aud.iter().any(|aud| aud == service)
    }

    /// Whether this caller may see data of the given 9-digit town.
    pub fn covers_town(&self, town_code: &str) -> bool {
        match self.role {
            Role::Town => self.scope.as_deref() == Some(town_code),
            Role::Admin
            | Role::Inspector
            | Role::Auditor
            | Role::Department
            | Role::Provincial
            | Role::Service => true,
            Role::Gateway => false,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token has been revoked")]
    Revoked,
}

/// Writes a token in the one format every service verifies: `v1.<claims>.<signature>`,
/// both base64url, the Ed25519 signature over `v1.<claims>`. Only identity holds a
/// signing key (`huimin_identity::TokenSigner`); the format lives here beside
/// [`TokenVerifier::verify`], its one reader.
pub fn write_token(key: &SigningKey, claims: &Caller) -> String {
    let payload = B64.encode(serde_json::to_vec(claims).expect("claims always serialize"));
    let signed = format!("v1.{payload}");
    let signature = key.sign(signed.as_bytes());
    format!("{signed}.{}", B64.encode(signature.to_bytes()))
}

/// Tokens whose signature was checked, remembered per process so a caller
/// that sends the same token on every call (the gateway, a service) pays
/// for one Ed25519 verification, not one per call. Bounded: when full it is
/// emptied and refills from live traffic.
const VERIFIED_MEMO: usize = 4_096;

/// Verifies tokens; every service holds one, built from the public key.
#[derive(Clone)]
pub struct TokenVerifier {
    key: VerifyingKey,
    verified: Arc<std::sync::Mutex<HashMap<Box<str>, Caller>>>,
    capacity: usize,
    /// Ids of revoked tokens, shared by every clone: the process's
    /// revocation task replaces it from the published list.
    revoked: Arc<std::sync::RwLock<std::collections::HashSet<String>>>,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    fn new(key: VerifyingKey) -> Self {
        Self {
            key,
            verified: Arc::default(),
            capacity: VERIFIED_MEMO,
            revoked: Arc::default(),
        }
    }

    /// Replaces the set of revoked token ids this verifier (and every clone
    /// of it) refuses.
    pub fn set_revoked(&self, ids: std::collections::HashSet<String>) {
        if let Ok(mut revoked) = self.revoked.write() {
            *revoked = ids;
        }
    }

    fn is_revoked(&self, claims: &Caller) -> bool {
        !claims.jti.is_empty()
            && self
                .revoked
                .read()
                .is_ok_and(|revoked| revoked.contains(&claims.jti))
    }

    pub fn from_public_key(bytes: [u8; 32]) -> Result<Self, TokenError> {
        VerifyingKey::from_bytes(&bytes)
            .map(Self::new)
            .map_err(|_| TokenError::Malformed)
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The token's claims if its signature is ours and it has not expired.
    /// A token seen before is not verified again, but its expiry is.
    pub fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        let remembered = self
            .verified
            .lock()
            .ok()
            .and_then(|memo| memo.get(token).cloned());
        let claims = match remembered {
            Some(claims) => claims,
            None => {
                let claims = self.verify_signature(token)?;
                if let Ok(mut memo) = self.verified.lock() {
                    if memo.len() >= self.capacity {
                        memo.clear();
                    }
                    memo.insert(token.into(), claims.clone());
                }
                claims
            }
        };
        if claims.exp <= Utc::now().timestamp() {
            return Err(TokenError::Expired);
        }
        if self.is_revoked(&claims) {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    fn verify_signature(&self, token: &str) -> Result<Caller, TokenError> {
        let (signed, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let payload = signed.strip_prefix("v1.").ok_or(TokenError::Malformed)?;
        let signature = B64.decode(signature).map_err(|_| TokenError::Malformed)?;
        let signature = Signature::from_slice(&signature).map_err(|_| TokenError::Malformed)?;
        self.key
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| TokenError::BadSignature)?;
        let claims: Caller = B64
            .decode(payload)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(TokenError::Malformed)?;
        Ok(claims)
    }
}

/// What an RPC requires of its caller.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// Anyone, with or without a token.
    Public,
    /// A valid token of one of these roles.
    Roles(&'static [Role]),
    /// A service token of one of these named services (the token's `sub`):
    /// a service token opens only the RPCs meant for that service.
    Services(&'static [&'static str]),
    /// Either of the above.
    RolesOrServices(&'static [Role], &'static [&'static str]),
}

impl Access {
    /// The roles it admits, and the services by name.
    pub fn admitted(self) -> (&'static [Role], &'static [&'static str]) {
        match self {
            Access::Public => (&[], &[]),
            Access::Roles(roles) => (roles, &[]),
            Access::Services(names) => (&[], names),
            Access::RolesOrServices(roles, names) => (roles, names),
        }
    }

    /// Who it admits, as a refusal tells staff: 「管理员、纪委监委」.
    pub fn who_zh(self) -> String {
        let (roles, services) = self.admitted();
        roles
            .iter()
            .map(|role| role.label_zh().to_owned())
            .chain(services.iter().map(|name| format!("{name} 服务")))
            .collect::<Vec<_>>()
            .join("、")
    }

    fn needs_token(self) -> bool {
        !matches!(self, Access::Public)
    }

    fn admits(self, caller: &Caller) -> bool {
        let service =
            |names: &[&str]| caller.role == Role::Service && names.contains(&caller.sub.as_str());
        match self {
            Access::Public => true,
            Access::Roles(roles) => roles.contains(&caller.role),
            Access::Services(names) => service(names),
            Access::RolesOrServices(roles, names) => roles.contains(&caller.role) || service(names),
        }
    }
}

/// The access rule of every RPC of a server, keyed by full method path
/// (`/huimin.identity.v1.IdentityService/Login`). A method missing from the
/// policy is refused: forgetting a rule fails closed.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: HashMap<String, Access>,
    long_running: std::collections::HashSet<String>,
}

impl Policy {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the rule of `method` of the gRPC service `service` (full name).
    pub fn rule(mut self, service: &str, method: &str, access: Access) -> Self {
        self.rules.insert(format!("/{service}/{method}"), access);
        self
    }

    /// Marks a method whose handler may run longer than the request timeout
    /// (a client-streaming import of a county's roll takes minutes).
    pub fn long_running(mut self, service: &str, method: &str) -> Self {
        self.long_running.insert(format!("/{service}/{method}"));
        self
    }

    pub fn merge(mut self, other: Policy) -> Self {
        self.rules.extend(other.rules);
        self.long_running.extend(other.long_running);
        self
    }

    /// Every rule, by full method path, in path order.
    pub fn rules(&self) -> Vec<(&str, Access)> {
        let mut rules: Vec<(&str, Access)> = self
            .rules
            .iter()
            .map(|(path, access)| (path.as_str(), *access))
            .collect();
        rules.sort_by_key(|(path, _)| *path);
        rules
    }

    /// The methods the request timeout does not apply to.
    pub fn long_running_paths(&self) -> std::collections::HashSet<String> {
        self.long_running.clone()
    }

    fn access(&self, path: &str) -> Option<Access> {
        // Health and reflection are for probes and generic clients.
        if path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.") {
            return Some(Access::Public);
        }
        self.rules.get(path).copied()
    }
}

/// Verifies the `authorization: Bearer <token>` metadata and enforces the
/// [`Policy`]; the verified [`Caller`] goes into the request extensions.
#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<TokenVerifier>,
    policy: Arc<Policy>,
}

impl AuthLayer {
    pub fn new(verifier: TokenVerifier, policy: Policy) -> Self {
        Self {
            verifier: Arc::new(verifier),
            policy: Arc::new(policy),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            verifier: self.verifier.clone(),
            policy: self.policy.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    verifier: Arc<TokenVerifier>,
    policy: Arc<Policy>,
}

impl<S> Auth<S> {
    fn check<B>(&self, request: &mut http::Request<B>) -> Result<(), tonic::Status> {
        let path = request.uri().path();
        let access = self.policy.access(path).ok_or_else(|| {
            tracing::warn!(method = path, "no access rule for method; refused");
            tonic::Status::permission_denied("无权调用此接口")
        })?;
        let token = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let caller = match token.map(|t| self.verifier.verify(t)) {
            Some(Ok(caller)) => Some(caller),
            Some(Err(error)) => {
                if access.needs_token() {
                    tracing::info!(%error, "token refused");
                    return Err(tonic::Status::unauthenticated("登录凭证无效或已过期"));
                }
                None
            }
            None => None,
        };
        // A token is refused by every service outside its audience, even on
        // public methods, so a token taken from one service opens no other.
        let caller = match (caller, audience_of(path)) {
            (Some(caller), Some(service)) if !caller.meant_for(service) => {
                if access.needs_token() {
                    tracing::info!(role = %caller.role, method = path, "token not meant for this service");
                    return Err(tonic::Status::unauthenticated("登录凭证不适用于此服务"));
                }
                None
            }
            (caller, _) => caller,
        };
        if access.needs_token() {
            let caller = caller
                .as_ref()
                .ok_or_else(|| tonic::Status::unauthenticated("需要登录凭证"))?;
            if !access.admits(caller) {
                tracing::info!(role = %caller.role, method = path, "caller not allowed");
                return Err(tonic::Status::permission_denied(format!(
                    "当前角色无权执行此操作（可执行：{}）",
                    access.who_zh()
                )));
            }
        }
        if let Some(caller) = caller {
            request.extensions_mut().insert(caller);
        }
        Ok(())
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Auth<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::Either<
        S::Future,
        futures::future::Ready<Result<http::Response<ResBody>, S::Error>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        match self.check(&mut request) {
            Ok(()) => futures::future::Either::Left(self.inner.call(request)),
            Err(status) => {
                futures::future::Either::Right(futures::future::ready(Ok(status.into_http())))
            }
        }
    }
}

/// The verified caller of a request that passed [`AuthLayer`] with a token.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<&Caller, tonic::Status> {
    request
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| tonic::Status::unauthenticated("需要登录凭证"))
}

/// Adds a bearer token to outgoing requests.
#[derive(Clone)]
pub struct BearerToken(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl BearerToken {
    pub fn new(token: &str) -> Result<Self, TokenError> {
        format!("Bearer {token}")
            .parse()
            .map(Self)
            .map_err(|_| TokenError::Malformed)
    }
}

impl tonic::service::Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        crate::telemetry::inject_trace_context(request.metadata_mut());
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// identity's signer, as far as these tests need one.
    struct TokenSigner(SigningKey);

    impl TokenSigner {
        fn generate() -> Self {
            Self(SigningKey::generate(&mut rand::rngs::OsRng))
        }

        fn verifier(&self) -> TokenVerifier {
            TokenVerifier::new(self.0.verifying_key())
        }

        fn issue(&self, sub: &str, role: Role, scope: Option<&str>, ttl: Duration) -> (String, ()) {
            let now = Utc::now().timestamp();
            let claims = Caller {
                sub: sub.to_owned(),
                role,
                scope: scope.map(str::to_owned),
                iat: now,
                exp: now + i64::try_from(ttl.as_secs()).expect("short test lifetimes"),
                aud: SUITE.iter().map(|s| (*s).to_owned()).collect(),
                jti: format!("{sub}-{now}"),
            };
            (write_token(&self.0, &claims), ())
        }
    }

    #[test]
    fn issued_token_verifies_with_public_key() {
        let signer = TokenSigner::generate();
        let verifier =
            TokenVerifier::from_public_key(signer.verifier().public_key()).expect("valid key");
        let (token, _) = signer.issue(
            "wang",
            Role::Town,
            Some("450923100"),
            Duration::from_secs(60),
        );
        let caller = verifier.verify(&token).expect("fresh token verifies");
        assert_eq!(caller.sub, "wang");
        assert_eq!(caller.role, Role::Town);
        assert!(caller.covers_town("450923100"));
        assert!(!caller.covers_town("450923101"));
    }

    #[test]
    fn token_of_another_key_is_refused() {
        let (token, _) =
            TokenSigner::generate().issue("x", Role::Admin, None, Duration::from_secs(60));
        assert_eq!(
            TokenSigner::generate().verifier().verify(&token),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn altered_claims_are_refused() {
        let signer = TokenSigner::generate();
        let (token, _) = signer.issue("x", Role::Town, Some("450923100"), Duration::from_secs(60));
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = B64.encode(br#"{"sub":"x","role":"admin","iat":0,"exp":99999999999}"#);
        parts[1] = &forged;
        assert_eq!(
            signer.verifier().verify(&parts.join(".")),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_revoked_token_is_refused_even_once_remembered() {
        let signer = TokenSigner::generate();
        let verifier = signer.verifier();
        let (token, _) = signer.issue(
            "gx-province",
            Role::Provincial,
            None,
            Duration::from_secs(60),
        );
        let claims = verifier.verify(&token).expect("fresh token verifies");
        let other = signer
            .issue("other", Role::Provincial, None, Duration::from_secs(60))
            .0;
        verifier
            .clone()
            .set_revoked([claims.jti].into_iter().collect());
        assert_eq!(verifier.verify(&token), Err(TokenError::Revoked));
        assert!(
            verifier.verify(&other).is_ok(),
            "only the revoked id is refused"
        );
        verifier.set_revoked(Default::default());
        assert!(
            verifier.verify(&token).is_ok(),
            "the list is replaced, not added to"
        );
    }

    #[test]
    fn a_path_names_the_service_it_belongs_to() {
        assert_eq!(
            audience_of("/huimin.ledger.v1.LedgerService/Totals"),
            Some("ledger")
        );
        assert_eq!(
            audience_of("/huimin.whistle.v1.WhistleService/X"),
            Some("whistle")
        );
        assert_eq!(audience_of("/grpc.health.v1.Health/Check"), None);
        assert_eq!(audience_of("/huimin"), None);
    }

    #[test]
    fn expired_token_is_refused() {
        let signer = TokenSigner::generate();
        let (token, _) = signer.issue("x", Role::Admin, None, Duration::ZERO);
        assert_eq!(signer.verifier().verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let signer = TokenSigner::generate();
        let verifier = signer.verifier();
        let (token, _) = signer.issue("x", Role::Admin, None, Duration::from_secs(60));
        let mut claims = verifier.verify(&token).expect("valid");
        // The second verification comes from the memo: it sees the claims remembered.
        claims.exp = Utc::now().timestamp() - 1;
        verifier
            .verified
            .lock()
            .expect("memo lock")
            .insert(token.as_str().into(), claims);
        assert_eq!(verifier.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn the_memo_stays_bounded() {
        let signer = TokenSigner::generate();
        let mut verifier = signer.verifier();
        verifier.capacity = 8;
        for n in 0..20 {
            let (token, _) =
                signer.issue(&n.to_string(), Role::Admin, None, Duration::from_secs(60));
            verifier.verify(&token).expect("valid");
        }
        let remembered = verifier.verified.lock().expect("memo lock").len();
        assert!(remembered <= 8, "{remembered} tokens remembered");
    }

    #[test]
    fn garbage_is_malformed() {
        let verifier = TokenSigner::generate().verifier();
        assert_eq!(verifier.verify("v1.abc"), Err(TokenError::Malformed));
        assert_eq!(verifier.verify(""), Err(TokenError::Malformed));
    }
}
