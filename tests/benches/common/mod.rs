//! What the benchmarks share: our server started in-process on loopback, as `pluto-duck serve` runs it.

use pluto_duck_bootstrap::commands::build_server;
use pluto_duck_bootstrap::config::Config;
use pluto_duck_duckdb::DuckDbWarehouse;

/// A runtime serving the API for `config`, and the server's base URL.
#[allow(dead_code)] // each bench uses what it needs of this module
pub fn serve(config: &Config) -> (tokio::runtime::Runtime, String) {
    let (rt, url, _) = serve_with_warehouse(config);
    (rt, url)
}

/// Like [`serve`], with the warehouse behind the API (to watch its projects open and close).
#[allow(dead_code)]
pub fn serve_with_warehouse(config: &Config) -> (tokio::runtime::Runtime, String, DuckDbWarehouse) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (url, warehouse) = rt.block_on(async {
        let (router, warehouse) = build_server(config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // As `pluto-duck serve` does.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (format!("http://{addr}"), warehouse)
    });
    (rt, url, warehouse)
}

/// This process's resident memory, in MiB.
#[allow(dead_code)]
pub fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}
