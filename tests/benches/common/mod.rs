//! What the benchmarks share: our server started in-process on loopback, as `pluto-duck serve` runs it.

use pluto_duck_bootstrap::commands::build_router;
use pluto_duck_bootstrap::config::Config;

/// A runtime serving the API for `config`, and the server's base URL.
pub fn serve(config: &Config) -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(async {
        let router = build_router(config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // As `pluto-duck serve` does.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{addr}")
    });
    (rt, url)
}
