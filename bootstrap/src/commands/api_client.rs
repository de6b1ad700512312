//! The CLI talks to the API: over HTTP when a server holds the warehouse, otherwise to the same router
//! in-process. Either way it sees the same status codes and bodies.

use axum::body::Body;
use http_body_util::BodyExt;
use pluto_duck_application::ErrorKind;
use secrecy::ExposeSecret;
use tower::ServiceExt;

use crate::config::Config;
use crate::error::{CliError, CliResult};
use crate::{commands, secrets};

pub enum ApiClient {
    Remote {
        url: String,
        client: reqwest::Client,
        token: Option<secrecy::SecretString>,
    },
    Local(axum::Router),
}

impl ApiClient {
    pub async fn connect(config: &Config) -> CliResult<Self> {
        match commands::sql::running_server(config).await {
            Some(url) => {
                let token = match &config.server.api_token {
                    Some(r) => {
                        Some(secrets::resolve(secrets::secret_store(config).as_ref(), "server.api_token", r).await?)
                    }
                    None => None,
                };
                Ok(Self::Remote {
                    url,
                    client: reqwest::Client::new(),
                    token,
                })
            }
            None => Ok(Self::Local(commands::build_router(config).await?)),
        }
    }

    /// Sends a request; a non-2xx answer becomes a one-line error from its problem detail.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        project: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> CliResult<serde_json::Value> {
        let (status, bytes) = match self {
            ApiClient::Remote { url, client, token } => {
                let method =
                    reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| CliError::internal(e.to_string()))?;
                let mut req = client
                    .request(method, format!("{url}{path}"))
                    .header("x-pluto-actor", "cli");
                if let Some(p) = project {
                    req = req.header("x-pluto-project", p);
                }
                if let Some(t) = token {
                    req = req.bearer_auth(t.expose_secret());
                }
                if let Some(b) = body {
                    req = req.json(&b);
                }
                let resp = req
                    .send()
                    .await
                    .map_err(|e| CliError::unavailable(format!("server at {url}: {e}")))?;
                let status = resp.status().as_u16();
                (
                    status,
                    resp.bytes()
                        .await
                        .map_err(|e| CliError::unavailable(e.to_string()))?
                        .to_vec(),
                )
            }
            ApiClient::Local(router) => {
                let mut req = axum::http::Request::builder()
                    .method(method)
                    .uri(path)
                    .header("x-pluto-actor", "cli");
                if let Some(p) = project {
                    req = req.header("x-pluto-project", p);
                }
                let req = match body {
                    Some(b) => req
                        .header("content-type", "application/json")
                        .body(Body::from(b.to_string())),
                    None => req.body(Body::empty()),
                }
                .map_err(|e| CliError::internal(e.to_string()))?;
                let resp = router
                    .clone()
                    .oneshot(req)
                    .await
                    .map_err(|e| CliError::internal(e.to_string()))?;
                let status = resp.status().as_u16();
                let bytes = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| CliError::internal(e.to_string()))?
                    .to_bytes();
                (status, bytes.to_vec())
            }
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let detail = value["detail"].as_str().unwrap_or("request failed").to_owned();
        let kind = match status {
            401 => ErrorKind::Unauthenticated,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            504 => ErrorKind::Timeout,
            s if s >= 500 => ErrorKind::Unavailable,
            _ => ErrorKind::Invalid,
        };
        Err(CliError::new(kind, detail))
    }
}
