//! A server on loopback is not a web target: a page on another site cannot reach it through DNS rebinding (its
//! requests carry the attacker's host name) nor post forms to it (its requests carry another origin).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::problem::ApiError;

/// The names a loopback server answers to, and the origins (besides its own) allowed to change things.
#[derive(Debug, Clone, Default)]
pub struct HostGuard {
    /// Host names without port, lower case.
    pub hosts: Vec<String>,
    /// Full origins (`http://localhost:3000`), from the CORS configuration.
    pub origins: Vec<String>,
}

fn host_of(value: &str) -> String {
    let v = value.trim().to_ascii_lowercase();
    if let Some(rest) = v.strip_prefix('[') {
        // [::1]:8000
        return format!("[{}]", rest.split(']').next().unwrap_or_default());
    }
    v.rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map(|(h, _)| h.to_owned())
        .unwrap_or(v)
}

pub async fn check_host(State(guard): State<Option<Arc<HostGuard>>>, req: Request, next: Next) -> Response {
    let Some(guard) = guard else {
        return next.run(req).await;
    };
    if let Some(host) = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()) {
        let host = host_of(host);
        if !guard.hosts.contains(&host) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this server does not answer to host {host:?} (a loopback server only answers to {}); \
                     add the name to server.allowed_hosts to use it",
                    guard.hosts.join(", ")
                ),
            )
            .into_response();
        }
    }
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state {
        if let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            let lower = origin.to_ascii_lowercase();
            let own = lower
                .split_once("://")
                .map(|(_, rest)| host_of(rest.split('/').next().unwrap_or_default()))
                .is_some_and(|h| guard.hosts.contains(&h));
            if !own && !guard.origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("cross-site request from {origin} refused; allow it with server.cors_origins"),
                )
                .into_response();
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(host_of("LocalHost:8000"), "localhost");
        assert_eq!(host_of("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_of("[::1]:8000"), "[::1]");
        assert_eq!(host_of("evil.example:80"), "evil.example");
    }
}
