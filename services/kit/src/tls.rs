//! TLS between services (rustls, through tonic): a server certificate and
//! key for this process's gRPC port, and the CA its peers' certificates are
//! checked against. Off unless configured; the production values turn it on.
//!
//! Not mutual TLS: callers are authenticated by their signed tokens, and
//! staff consoles and provincial systems would otherwise each need a client
//! certificate. TLS here keeps tokens and personal data off the wire in clear
//! and proves to a caller that it reached the service it meant.

use std::path::PathBuf;

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::config::{ConfigError, Env};

/// The certificates, read once at start.
#[derive(Clone)]
pub struct TlsSettings {
    cert: Vec<u8>,
    key: Vec<u8>,
    ca: Vec<u8>,
    /// The name peers' certificates are checked for, when it is not the
    /// host of their URL (`serve all` reaches itself at 127.0.0.1).
    domain: Option<String>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

fn read(env: &Env, name: &'static str) -> Result<Vec<u8>, ConfigError> {
    let path = PathBuf::from(env.required_str(name)?);
    let bytes = std::fs::read(&path).map_err(|e| ConfigError::Malformed {
        name,
        reason: format!("cannot read {}: {e}", path.display()),
    })?;
    if !bytes.starts_with(b"-----BEGIN") {
        return Err(ConfigError::Malformed {
            name,
            reason: format!("{} is not a PEM file", path.display()),
        });
    }
    Ok(bytes)
}

impl TlsSettings {
    /// `HUIMIN_TLS_CERT`, `HUIMIN_TLS_KEY` and `HUIMIN_TLS_CA` (PEM files),
    /// all or none; `HUIMIN_TLS_DOMAIN` optional.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let names = ["HUIMIN_TLS_CERT", "HUIMIN_TLS_KEY", "HUIMIN_TLS_CA"];
        let set = names
            .iter()
            .filter(|name| env.optional_str(name).is_some())
            .count();
        if set == 0 {
            return Ok(None);
        }
        Ok(Some(Self {
            cert: read(env, "HUIMIN_TLS_CERT")?,
            key: read(env, "HUIMIN_TLS_KEY")?,
            ca: read(env, "HUIMIN_TLS_CA")?,
            domain: env.optional_str("HUIMIN_TLS_DOMAIN"),
        }))
    }

    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new().identity(Identity::from_pem(&self.cert, &self.key))
    }

    pub fn client(&self) -> ClientTlsConfig {
        let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca));
        match &self.domain {
            Some(domain) => config.domain_name(domain.clone()),
            None => config,
        }
    }
}
