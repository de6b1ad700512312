use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pluto_duck_domain::{ExtensionStatus, HealthReport, Profile};
use tracing::instrument;

use crate::ports::{MetadataStore, Warehouse};
use crate::AppError;

/// Health answers from memory, always (a busy warehouse never delays it); readiness checks the engine and the
/// metadata store for real.
pub struct SystemService {
    warehouse: Arc<dyn Warehouse>,
    metadata: Arc<dyn MetadataStore>,
    profile: Profile,
    version: String,
    /// What the engine reported at start-up: its version and extensions do not change while the server runs.
    engine: Mutex<Option<(String, Vec<ExtensionStatus>)>>,
    metadata_up: AtomicBool,
}

impl SystemService {
    pub fn new(
        warehouse: Arc<dyn Warehouse>,
        metadata: Arc<dyn MetadataStore>,
        profile: Profile,
        version: impl Into<String>,
    ) -> Self {
        Self {
            warehouse,
            metadata,
            profile,
            version: version.into(),
            engine: Mutex::new(None),
            metadata_up: AtomicBool::new(true),
        }
    }

    /// Reads the engine's facts once and keeps the metadata store's state fresh in the background.
    pub async fn start(self: &Arc<Self>) -> Result<(), AppError> {
        self.refresh().await?;
        self.metadata_up
            .store(self.metadata.ping().await.is_ok(), Ordering::Relaxed);
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(this) = weak.upgrade() else { break };
                let up = this.metadata.ping().await.is_ok();
                this.metadata_up.store(up, Ordering::Relaxed);
            }
        });
        Ok(())
    }

    async fn refresh(&self) -> Result<(), AppError> {
        let version = self.warehouse.version().await?;
        let extensions = self.warehouse.extensions().await?;
        *self.engine.lock().unwrap_or_else(|e| e.into_inner()) = Some((version, extensions));
        Ok(())
    }

    /// Liveness plus what a client needs to know about the engine. "degraded" when the metadata store is down or
    /// an extension is missing: the server still answers, but some features will fail.
    pub fn health(&self) -> HealthReport {
        let engine = self.engine.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (duckdb_version, extensions) = engine.unwrap_or_else(|| ("unknown".into(), Vec::new()));
        let ok = self.metadata_up.load(Ordering::Relaxed) && extensions.iter().all(|e| e.installed);
        HealthReport {
            status: if ok { "ok" } else { "degraded" },
            version: self.version.clone(),
            duckdb_version,
            profile: self.profile,
            extensions,
        }
    }

    /// Whether the server can do work now: the engine answers and the metadata store answers.
    #[instrument(skip_all)]
    pub async fn ready(&self) -> Result<HealthReport, AppError> {
        let up = self.metadata.ping().await;
        self.metadata_up.store(up.is_ok(), Ordering::Relaxed);
        up?;
        self.refresh().await?;
        Ok(self.health())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockMetadataStore, MockWarehouse, RepoError};

    fn ext(name: &str, installed: bool) -> ExtensionStatus {
        ExtensionStatus {
            name: name.into(),
            installed,
            loaded: false,
            install_hint: None,
        }
    }

    fn service(exts: Vec<ExtensionStatus>, metadata_up: bool) -> Arc<SystemService> {
        let mut wh = MockWarehouse::new();
        wh.expect_version().returning(|| Ok("v1.5.5".into()));
        wh.expect_extensions().returning(move || Ok(exts.clone()));
        let mut md = MockMetadataStore::new();
        md.expect_ping().returning(move || {
            if metadata_up {
                Ok(())
            } else {
                Err(RepoError::Unavailable("down".into()))
            }
        });
        Arc::new(SystemService::new(Arc::new(wh), Arc::new(md), Profile::Local, "0.1.0"))
    }

    #[tokio::test]
    async fn healthy_when_everything_is_there() {
        let s = service(vec![ext("httpfs", true)], true);
        s.start().await.unwrap();
        let report = s.health();
        assert_eq!(report.status, "ok");
        assert_eq!(report.duckdb_version, "v1.5.5");
        assert_eq!(report.profile, Profile::Local);
    }

    #[tokio::test]
    async fn degraded_when_an_extension_is_missing() {
        let s = service(vec![ext("httpfs", true), ext("ducklake", false)], true);
        s.start().await.unwrap();
        assert_eq!(s.health().status, "degraded");
    }

    #[tokio::test]
    async fn readiness_fails_when_metadata_is_down() {
        let s = service(vec![], false);
        s.start().await.unwrap();
        assert!(s.ready().await.is_err());
        assert_eq!(s.health().status, "degraded");
    }
}
