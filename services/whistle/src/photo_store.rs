//! Where report photos are kept: a local directory (the default; a volume in Kubernetes),
//! or an S3-compatible object store when `HUIMIN_PHOTOS_S3_BUCKET` is set, so that no
//! ReadWriteMany volume is needed (docs/scaling.md, "Photos in an object store").
//!
//! The S3 client is object_store's, signing with ring and sending through the
//! workspace's reqwest 0.12 by the small connector below, rather than the `aws` feature's
//! own reqwest 0.13 with aws-lc-rs: one HTTP client and one crypto stack in the binary.

use std::{future::Future, path::PathBuf, pin::Pin, sync::Arc};

use http_body_util::BodyExt as _;
use huimin_kit::config::{ConfigError, Env};
use object_store::{
    ObjectStore,
    aws::AmazonS3Builder,
    client::{
        ClientOptions, HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest,
        HttpResponse, HttpResponseBody, HttpService,
    },
    local::LocalFileSystem,
};
use secrecy::{ExposeSecret as _, SecretString};

/// An S3-compatible bucket for photos.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// HUIMIN_PHOTOS_S3_BUCKET
    pub bucket: String,
    /// HUIMIN_PHOTOS_S3_ENDPOINT: the store's URL (MinIO, Ceph RGW, a cloud's S3
    /// endpoint); unset, AWS's for the region. `http://` is allowed (a store inside the
    /// cluster's network).
    pub endpoint: Option<String>,
    /// HUIMIN_PHOTOS_S3_REGION (default `us-east-1`, what most S3-compatible stores accept).
    pub region: String,
    /// HUIMIN_PHOTOS_S3_ACCESS_KEY_ID and HUIMIN_PHOTOS_S3_SECRET_ACCESS_KEY.
    pub access_key_id: SecretString,
    pub secret_access_key: SecretString,
}

impl S3Config {
    /// The bucket's settings, or `None` when HUIMIN_PHOTOS_S3_BUCKET is unset.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(bucket) = env.optional_str("HUIMIN_PHOTOS_S3_BUCKET") else {
            return Ok(None);
        };
        Ok(Some(Self {
            bucket,
            endpoint: env.optional_str("HUIMIN_PHOTOS_S3_ENDPOINT"),
            region: env
                .optional_str("HUIMIN_PHOTOS_S3_REGION")
                .unwrap_or_else(|| "us-east-1".to_owned()),
            access_key_id: env.required_secret("HUIMIN_PHOTOS_S3_ACCESS_KEY_ID")?,
            secret_access_key: env.required_secret("HUIMIN_PHOTOS_S3_SECRET_ACCESS_KEY")?,
        }))
    }
}

/// The store photos are written to, and whether an anonymous report's photos go there.
pub struct PhotoStore {
    pub objects: Arc<dyn ObjectStore>,
    /// True for an object store: anonymous reports' photos move there, under random
    /// keys, once their day is sealed (a local file's ctime would date them to the
    /// second, and so would an object's Last-Modified if uploaded at once).
    pub holds_anonymous: bool,
}

impl PhotoStore {
    /// The S3 bucket when configured, else the local directory `dir` (created).
    pub fn open(s3: Option<&S3Config>, dir: &PathBuf) -> anyhow::Result<Self> {
        if let Some(s3) = s3 {
            let mut builder = AmazonS3Builder::new()
                .with_bucket_name(&s3.bucket)
                .with_region(&s3.region)
                .with_access_key_id(s3.access_key_id.expose_secret())
                .with_secret_access_key(s3.secret_access_key.expose_secret())
                .with_http_connector(ReqwestConnector);
            if let Some(endpoint) = &s3.endpoint {
                builder = builder
                    .with_endpoint(endpoint)
                    .with_allow_http(endpoint.starts_with("http://"));
            }
            let objects = builder.build().map_err(|e| {
                anyhow::anyhow!("configuration: HUIMIN_PHOTOS_S3_* are not usable: {e}")
            })?;
            return Ok(Self {
                objects: Arc::new(objects),
                holds_anonymous: true,
            });
        }
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!(
                "configuration: HUIMIN_ATTACHMENTS_DIR {} is not usable: {e}",
                dir.display()
            )
        })?;
        let objects = LocalFileSystem::new_with_prefix(dir).map_err(|e| {
            anyhow::anyhow!("configuration: HUIMIN_ATTACHMENTS_DIR is not usable: {e}")
        })?;
        Ok(Self {
            objects: Arc::new(objects),
            holds_anonymous: false,
        })
    }
}

/// object_store's HTTP transport on the workspace's reqwest.
#[derive(Debug)]
struct ReqwestConnector;

impl HttpConnector for ReqwestConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            })?;
        Ok(HttpClient::new(Reqwest(client)))
    }
}

#[derive(Debug)]
struct Reqwest(reqwest::Client);

type Call<'a> = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'a>>;

impl HttpService for Reqwest {
    // The trait is declared with async_trait; this is the signature it expands to.
    fn call<'life0, 'async_trait>(&'life0 self, req: HttpRequest) -> Call<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let url = reqwest::Url::parse(&parts.uri.to_string())
                .map_err(|e| HttpError::new(HttpErrorKind::Request, e))?;
            let mut request = reqwest::Request::new(parts.method, url);
            *request.headers_mut() = parts.headers;
            *request.body_mut() = Some(reqwest::Body::wrap(body));
            let response = self.0.execute(request).await.map_err(|e| {
                let kind = if e.is_timeout() {
                    HttpErrorKind::Timeout
                } else if e.is_connect() {
                    HttpErrorKind::Connect
                } else {
                    HttpErrorKind::Request
                };
                HttpError::new(kind, e)
            })?;
            let (parts, body) = http::Response::<reqwest::Body>::from(response).into_parts();
            let body = HttpResponseBody::new(
                body.map_err(|e| HttpError::new(HttpErrorKind::Interrupted, e)),
            );
            Ok(HttpResponse::from_parts(parts, body))
        })
    }
}
