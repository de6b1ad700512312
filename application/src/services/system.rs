use std::sync::Arc;

use pluto_duck_domain::{HealthReport, Profile};
use tracing::instrument;

use crate::ports::{MetadataStore, Warehouse};
use crate::AppError;

pub struct SystemService {
    warehouse: Arc<dyn Warehouse>,
    metadata: Arc<dyn MetadataStore>,
    profile: Profile,
    version: String,
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
        }
    }

    /// Liveness plus what a client needs to know about the engine. "degraded" when the metadata store or an
    /// extension is missing: the server still answers, but some features will fail.
    #[instrument(skip_all)]
    pub async fn health(&self) -> Result<HealthReport, AppError> {
        let duckdb_version = self.warehouse.version().await?;
        let extensions = self.warehouse.extensions().await?;
        let metadata_ok = self.metadata.ping().await.is_ok();
        let status = if metadata_ok && extensions.iter().all(|e| e.installed) {
            "ok"
        } else {
            "degraded"
        };
        Ok(HealthReport {
            status,
            version: self.version.clone(),
            duckdb_version,
            profile: self.profile,
            extensions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockMetadataStore, MockWarehouse, RepoError};
    use pluto_duck_domain::ExtensionStatus;

    fn ext(name: &str, installed: bool) -> ExtensionStatus {
        ExtensionStatus {
            name: name.into(),
            installed,
            loaded: false,
            install_hint: None,
        }
    }

    fn service(exts: Vec<ExtensionStatus>, metadata_up: bool) -> SystemService {
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
        SystemService::new(Arc::new(wh), Arc::new(md), Profile::Local, "0.1.0")
    }

    #[tokio::test]
    async fn healthy_when_everything_is_there() {
        let report = service(vec![ext("httpfs", true)], true).health().await.unwrap();
        assert_eq!(report.status, "ok");
        assert_eq!(report.duckdb_version, "v1.5.5");
        assert_eq!(report.profile, Profile::Local);
    }

    #[tokio::test]
    async fn degraded_when_an_extension_is_missing() {
        let report = service(vec![ext("httpfs", true), ext("ducklake", false)], true)
            .health()
            .await
            .unwrap();
        assert_eq!(report.status, "degraded");
    }

    #[tokio::test]
    async fn degraded_when_metadata_is_down() {
        let report = service(vec![], false).health().await.unwrap();
        assert_eq!(report.status, "degraded");
    }
}
