use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use pluto_duck_http::{AppState, HttpConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::error::{CliError, CliResult};
use crate::{secrets, wiring};

/// The router the server runs, for `serve` and for in-process tests.
pub async fn build_router(config: &Config) -> CliResult<Router> {
    Ok(build_server(config).await?.0)
}

/// The router and the warehouse behind it (closed at shutdown, so every project's file is checkpointed).
pub async fn build_server(config: &Config) -> CliResult<(Router, pluto_duck_duckdb::DuckDbWarehouse)> {
    let (router, warehouse, _) = build_parts(config).await?;
    Ok((router, warehouse))
}

type Results = std::sync::Arc<dyn pluto_duck_application::ports::ResultStore>;

/// The router, the warehouse and the result store, for what `serve` does at shutdown.
async fn build_parts(config: &Config) -> CliResult<(Router, pluto_duck_duckdb::DuckDbWarehouse, Results)> {
    let wired = wiring::wire(config).await?;
    let warehouse = wired.warehouse.clone();
    let api_token = match &config.server.api_token {
        Some(reference) => Some(secrets::resolve(wired.secrets.as_ref(), "server.api_token", reference).await?),
        None => None,
    };
    let loopback = bind_addr(config).map(|ip| ip.is_loopback()).unwrap_or(false);
    let allowed_hosts = loopback.then(|| {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"].map(String::from).to_vec();
        hosts.push(config.server.host.clone());
        hosts.extend(config.server.allowed_hosts.iter().cloned());
        hosts
    });
    let http = HttpConfig {
        api_token,
        allowed_hosts,
        cors_origins: config.server.cors_origins.clone(),
        body_limit_bytes: usize::try_from(config.server.body_limit_mb.saturating_mul(1024 * 1024))
            .unwrap_or(usize::MAX),
    };
    spawn_result_sweeper(config, wired.results.clone());
    // In a fleet (hybrid) one server at a time holds the refresh lease.
    let fleet_holder = (config.profile == crate::config::ProfileName::Hybrid).then(|| {
        format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        )
    });
    // Job schedules: a pass at start-up (a slot missed while the server was down runs once), then every second.
    wired
        .app
        .job_defs
        .spawn_scheduler(Duration::from_secs(1), fleet_holder.clone());
    spawn_board_scheduler(std::sync::Arc::downgrade(&wired.app.boards), fleet_holder);
    let results = wired.results.clone();
    Ok((
        pluto_duck_http::router(AppState { app: wired.app }, http),
        warehouse,
        results,
    ))
}

/// Refreshes board items whose interval has passed. The schedule is in the items, so it picks up after a restart.
/// It holds the service weakly and stops when the router that owns the service goes.
fn spawn_board_scheduler(boards: std::sync::Weak<pluto_duck_application::BoardService>, fleet_holder: Option<String>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(boards) = boards.upgrade() else { break };
            let refreshed = match &fleet_holder {
                Some(holder) => boards.refresh_due_leased(holder).await,
                None => boards.refresh_due().await,
            };
            if let Err(e) = refreshed {
                tracing::warn!(error = %e, "board refresh failed");
            }
        }
    });
}

/// Deletes stored results past the retention policy, at start and then periodically.
fn spawn_result_sweeper(config: &Config, results: std::sync::Arc<dyn pluto_duck_application::ports::ResultStore>) {
    let policy = wiring::retention(config);
    let every = Duration::from_secs(config.results.sweep_interval_secs.max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match results.sweep(policy).await {
                Ok(removed) if !removed.is_empty() => {
                    tracing::info!(removed = removed.len(), "expired results deleted")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "result sweep failed"),
            }
        }
    });
}

fn bind_addr(config: &Config) -> CliResult<IpAddr> {
    match config.server.host.as_str() {
        "localhost" => Ok(IpAddr::from([127, 0, 0, 1])),
        host => host
            .parse()
            .map_err(|_| CliError::invalid(format!("server.host {host:?} is not an IP address"))),
    }
}

pub async fn serve(config: &Config) -> CliResult<ExitCode> {
    let ip = bind_addr(config)?;
    if !ip.is_loopback() && config.server.api_token.is_none() {
        return Err(CliError::invalid(format!(
            "refusing to listen on non-loopback address {ip} without an API token: set server.api_token (e.g. secret:api_token)"
        )));
    }
    // Bind before opening the warehouse so a taken port fails fast and touches nothing.
    let wanted = SocketAddr::new(ip, config.server.port);
    let listener = TcpListener::bind(wanted).await.map_err(|e| {
        CliError::unavailable(format!(
            "cannot listen on {wanted}: {e} (is another server running? pick another port with --port)"
        ))
    })?;
    let (router, warehouse, results) = build_parts(config).await?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");
    write_server_file(config, &url)?;
    tracing::info!(%url, data_dir = %config.data_dir.display(), "pluto-duck listening");
    eprintln!("pluto-duck listening on {url} (API docs at {url}/docs)");

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut server_stop = stop_rx.clone();
    // Small responses must not wait for delayed ACKs (Nagle).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        let _ = server_stop.wait_for(|s| *s).await;
    });
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let result = tokio::select! {
        r = server => r.map_err(|e| CliError::internal(format!("server error: {e}"))),
        _ = async {
            shutdown_signal().await;
            tracing::info!(grace_secs = grace.as_secs(), "shutting down");
            let _ = stop_tx.send(true);
            // In-flight requests get the grace period; long streams are cut after it.
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!("grace period over; closing remaining connections");
            Ok(())
        }
    };
    warehouse.close_all().await;
    // Results held in memory outlive the process as files, like every other result.
    match results.persist().await {
        Ok(n) if n > 0 => tracing::info!(results = n, "results held in memory written out"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "results held in memory not written out"),
    }
    let _ = std::fs::remove_file(config.server_file());
    result.map(|_| ExitCode::SUCCESS)
}

/// Lets the CLI find a running server (and know the warehouse is taken).
fn write_server_file(config: &Config, url: &str) -> CliResult<()> {
    let body = serde_json::json!({
        "pid": std::process::id(),
        "url": url,
        "started_at": chrono::Utc::now().to_rfc3339(),
    });
    std::fs::write(config.server_file(), body.to_string())
        .map_err(|e| CliError::unavailable(format!("cannot write {}: {e}", config.server_file().display())))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
