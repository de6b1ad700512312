//! The S3 calls `object_store` does not make (it works inside one bucket): list, head, create and delete
//! buckets, and copy between buckets. Each is one request signed with SigV4 by `object_store`'s own
//! `AwsAuthorizer` and sent with reqwest; the XML answers are read with quick-xml.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::aws::{AwsAuthorizer, AwsCredential};
use object_store::client::{HttpRequest, HttpRequestBody};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use pluto_duck_application::ports::{BucketInfo, ObjectStoreError};
use pluto_duck_domain::{BucketName, ObjectKey};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// What S3 leaves unencoded in a path segment (SigV4's canonical URI encoding).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Where requests go: the endpoint, and whether buckets are path segments or host names.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    scheme: String,
    /// Host and port.
    authority: String,
    path_style: bool,
}

impl Endpoint {
    pub(crate) fn parse(
        endpoint: Option<&str>,
        region: &str,
        path_style: bool,
        allow_http: bool,
    ) -> Result<Self, ObjectStoreError> {
        let Some(endpoint) = endpoint else {
            return Ok(Self {
                scheme: "https".into(),
                authority: format!("s3.{region}.amazonaws.com"),
                path_style,
            });
        };
        // Messages never echo the configured text: it could carry credentials.
        let url = Url::parse(endpoint).map_err(|_| {
            ObjectStoreError::InvalidRequest("the S3 endpoint is not a URL (http(s)://host[:port])".into())
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ObjectStoreError::InvalidRequest(
                "the S3 endpoint must not carry credentials; configure them as secrets".into(),
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| ObjectStoreError::InvalidRequest("the S3 endpoint has no host".into()))?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            "http" => {
                return Err(ObjectStoreError::InvalidRequest(format!(
                    "the S3 endpoint http://{authority} is plain http: allow it explicitly"
                )))
            }
            _ => {
                return Err(ObjectStoreError::InvalidRequest(
                    "the S3 endpoint must be http(s)://host[:port]".into(),
                ))
            }
        }
        Ok(Self {
            scheme: url.scheme().to_owned(),
            authority,
            path_style,
        })
    }

    pub(crate) fn service_url(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }

    /// The base URL of a bucket: `<endpoint>/<bucket>` (path style) or `<scheme>://<bucket>.<host>`.
    pub(crate) fn bucket_url(&self, bucket: &BucketName) -> String {
        if self.path_style {
            format!("{}://{}/{bucket}", self.scheme, self.authority)
        } else {
            format!("{}://{bucket}.{}", self.scheme, self.authority)
        }
    }

    pub(crate) fn object_url(&self, bucket: &BucketName, key: &ObjectKey) -> String {
        format!("{}/{}", self.bucket_url(bucket), encode_key(key))
    }
}

pub(crate) fn encode_key(key: &ObjectKey) -> String {
    key.segments()
        .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

pub(crate) struct Signed {
    http: reqwest::Client,
    pub(crate) endpoint: Endpoint,
    region: String,
    key_id: String,
    secret: SecretString,
    token: Option<SecretString>,
}

struct Answer {
    status: StatusCode,
    body: Bytes,
}

impl Answer {
    /// S3's error code (`NoSuchBucket`, `BucketNotEmpty`...), when the body is an S3 error document.
    fn code(&self) -> Option<String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct ErrorDoc {
            code: String,
        }
        quick_xml::de::from_reader::<_, ErrorDoc>(self.body.as_ref())
            .ok()
            .map(|e| e.code)
    }
}

impl Signed {
    pub(crate) fn new(
        endpoint: Endpoint,
        region: String,
        key_id: String,
        secret: SecretString,
        token: Option<SecretString>,
        timeout: Duration,
    ) -> Result<Self, ObjectStoreError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .build()
            .map_err(|e| ObjectStoreError::Internal(format!("building the S3 client: {e}")))?;
        Ok(Self {
            http,
            endpoint,
            region,
            key_id,
            secret,
            token,
        })
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<Answer, ObjectStoreError> {
        let mut builder = http::Request::builder().method(method.clone()).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        let mut request: HttpRequest = builder
            .body(HttpRequestBody::from(body.clone()))
            .map_err(|e| ObjectStoreError::Internal(format!("building an S3 request: {e}")))?;
        // The credential lives for this one signature.
        let credential = AwsCredential {
            key_id: self.key_id.clone(),
            secret_key: self.secret.expose_secret().to_owned(),
            token: self.token.as_ref().map(|t| t.expose_secret().to_owned()),
        };
        AwsAuthorizer::new(&credential, "s3", &self.region).authorize(&mut request, None);
        drop(credential);
        let response = self
            .http
            .request(method, url)
            .headers(request.headers().clone())
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() || e.is_timeout() {
                    ObjectStoreError::Unavailable(format!(
                        "cannot reach the S3 endpoint {}",
                        self.endpoint.service_url()
                    ))
                } else {
                    ObjectStoreError::Unavailable(format!("S3 request failed: {}", without_url(&e)))
                }
            })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| ObjectStoreError::Unavailable(format!("reading an S3 answer: {}", without_url(&e))))?;
        Ok(Answer { status, body })
    }

    /// An answer that is neither success nor a case the caller handles.
    fn unexpected(&self, what: &str, answer: &Answer) -> ObjectStoreError {
        let code = answer.code().unwrap_or_default();
        match answer.status {
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => ObjectStoreError::Unavailable(format!(
                "{what}: the S3 endpoint refused the configured credentials ({code})"
            )),
            s if s.is_server_error() => ObjectStoreError::Unavailable(format!("{what}: S3 answered {s} {code}")),
            s => ObjectStoreError::Internal(format!("{what}: S3 answered {s} {code}")),
        }
    }

    pub(crate) async fn list_buckets(&self) -> Result<Vec<BucketInfo>, ObjectStoreError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct ListAllMyBucketsResult {
            #[serde(default)]
            buckets: Buckets,
            continuation_token: Option<String>,
        }
        #[derive(Deserialize, Default)]
        struct Buckets {
            #[serde(default, rename = "Bucket")]
            bucket: Vec<Bucket>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Bucket {
            name: String,
            creation_date: Option<String>,
        }
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!("{}/", self.endpoint.service_url());
            if let Some(t) = &token {
                url.push_str(&format!("?continuation-token={}", utf8_percent_encode(t, SEGMENT)));
            }
            let answer = self.send(Method::GET, &url, &[], Bytes::new()).await?;
            if !answer.status.is_success() {
                return Err(self.unexpected("listing buckets", &answer));
            }
            let doc: ListAllMyBucketsResult = quick_xml::de::from_reader(answer.body.as_ref())
                .map_err(|e| ObjectStoreError::Internal(format!("reading the bucket list: {e}")))?;
            for b in doc.buckets.bucket {
                // Buckets made elsewhere under older, laxer rules are not ours to show.
                let Ok(name) = BucketName::parse(b.name) else { continue };
                let created = b
                    .creation_date
                    .and_then(|d| DateTime::parse_from_rfc3339(&d).ok())
                    .map(|d| d.with_timezone(&Utc));
                out.push(BucketInfo { name, created });
            }
            match doc.continuation_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Whether the bucket exists (and we may use it).
    pub(crate) async fn bucket_exists(&self, bucket: &BucketName) -> Result<bool, ObjectStoreError> {
        let answer = self
            .send(
                Method::HEAD,
                &format!("{}/", self.endpoint.bucket_url(bucket)),
                &[],
                Bytes::new(),
            )
            .await?;
        match answer.status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.unexpected(&format!("checking bucket {bucket}"), &answer)),
        }
    }

    pub(crate) async fn create_bucket(&self, bucket: &BucketName) -> Result<(), ObjectStoreError> {
        // us-east-1 answers 200 to re-creating one's own bucket: ask first so that "exists" is always said.
        if self.bucket_exists(bucket).await? {
            return Err(ObjectStoreError::BucketExists(bucket.to_string()));
        }
        let body = if self.region == "us-east-1" {
            Bytes::new()
        } else {
            Bytes::from(format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.region
            ))
        };
        let answer = self
            .send(
                Method::PUT,
                &format!("{}/", self.endpoint.bucket_url(bucket)),
                &[],
                body,
            )
            .await?;
        match answer.status {
            s if s.is_success() => Ok(()),
            StatusCode::CONFLICT => Err(ObjectStoreError::BucketExists(bucket.to_string())),
            _ => Err(self.unexpected(&format!("creating bucket {bucket}"), &answer)),
        }
    }

    /// Deletes an empty bucket.
    pub(crate) async fn delete_bucket(&self, bucket: &BucketName) -> Result<(), ObjectStoreError> {
        let answer = self
            .send(
                Method::DELETE,
                &format!("{}/", self.endpoint.bucket_url(bucket)),
                &[],
                Bytes::new(),
            )
            .await?;
        match answer.status {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(ObjectStoreError::BucketNotFound(bucket.to_string())),
            StatusCode::CONFLICT => Err(ObjectStoreError::BucketNotEmpty(bucket.to_string())),
            _ => Err(self.unexpected(&format!("deleting bucket {bucket}"), &answer)),
        }
    }

    /// Server-side copy (CopyObject, objects up to 5 GiB), keeping content type and metadata.
    pub(crate) async fn copy_object(
        &self,
        from_bucket: &BucketName,
        from_key: &ObjectKey,
        to_bucket: &BucketName,
        to_key: &ObjectKey,
    ) -> Result<(), ObjectStoreError> {
        let source = format!("/{from_bucket}/{}", encode_key(from_key));
        let headers = [
            ("x-amz-copy-source", source),
            ("x-amz-metadata-directive", "COPY".to_owned()),
        ];
        let answer = self
            .send(
                Method::PUT,
                &self.endpoint.object_url(to_bucket, to_key),
                &headers,
                Bytes::new(),
            )
            .await?;
        // CopyObject may fail after its 200 status: the body then is an error document.
        let code = answer.code();
        match (answer.status, code.as_deref()) {
            (s, None) if s.is_success() => Ok(()),
            (StatusCode::NOT_FOUND, _) | (_, Some("NoSuchKey" | "NoSuchBucket")) => {
                for bucket in [to_bucket, from_bucket] {
                    if !self.bucket_exists(bucket).await? {
                        return Err(ObjectStoreError::BucketNotFound(bucket.to_string()));
                    }
                }
                Err(ObjectStoreError::ObjectNotFound {
                    bucket: from_bucket.to_string(),
                    key: from_key.to_string(),
                })
            }
            (StatusCode::BAD_REQUEST, Some("EntityTooLarge" | "InvalidRequest")) => {
                Err(ObjectStoreError::InvalidRequest(format!(
                    "S3 cannot copy {from_bucket}/{from_key} in one request (over 5 GiB)"
                )))
            }
            (s, Some(code)) if s.is_success() => Err(ObjectStoreError::Unavailable(format!(
                "copying {from_bucket}/{from_key}: S3 failed with {code}"
            ))),
            _ => Err(self.unexpected(&format!("copying {from_bucket}/{from_key}"), &answer)),
        }
    }
}

/// reqwest's errors name the URL; ours name the bucket and key instead.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_by_style() {
        let b = BucketName::parse("lake").unwrap();
        let k = ObjectKey::parse("raw/a b#1+ü.csv").unwrap();
        let path = Endpoint::parse(Some("http://127.0.0.1:9000"), "us-east-1", true, true).unwrap();
        assert_eq!(path.bucket_url(&b), "http://127.0.0.1:9000/lake");
        assert_eq!(
            path.object_url(&b, &k),
            "http://127.0.0.1:9000/lake/raw/a%20b%231%2B%C3%BC.csv"
        );
        let hosted = Endpoint::parse(Some("https://minio.local"), "eu-west-1", false, false).unwrap();
        assert_eq!(hosted.bucket_url(&b), "https://lake.minio.local");
        let aws = Endpoint::parse(None, "eu-west-1", false, false).unwrap();
        assert_eq!(aws.bucket_url(&b), "https://lake.s3.eu-west-1.amazonaws.com");
        assert!(Endpoint::parse(Some("http://127.0.0.1:9000"), "us-east-1", true, false).is_err());
        assert!(Endpoint::parse(Some("ftp://x"), "us-east-1", true, true).is_err());
        let err = Endpoint::parse(Some("https://user:hunter2@h"), "us-east-1", true, true).unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }
}
