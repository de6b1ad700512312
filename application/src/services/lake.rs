//! Time travel over the shared warehouse: a project's lake snapshots, listed for one table or all.

use std::sync::Arc;

use pluto_duck_domain::{canonical_relation, ProjectId};

use crate::error::AppError;
use crate::ports::{Lake, LakeSnapshot};

pub struct LakeService {
    lake: Arc<dyn Lake>,
}

impl LakeService {
    pub fn new(lake: Arc<dyn Lake>) -> Self {
        Self { lake }
    }

    /// The snapshots that touched `table` (`name`, `schema.name` or `warehouse.schema.name`), oldest first.
    pub async fn snapshots(&self, project: &ProjectId, table: Option<&str>) -> Result<Vec<LakeSnapshot>, AppError> {
        let table = match table.map(str::trim) {
            None => None,
            Some(t) => {
                let canonical = canonical_relation(t);
                let parts: Vec<&str> = canonical.split('.').collect();
                if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                    return Err(AppError::Invalid(format!(
                        "table {t:?} is not a table of the project's warehouse: name it `name` or `schema.name`"
                    )));
                }
                Some(canonical)
            }
        };
        let snapshots = self.lake.snapshots(project, table.clone()).await?;
        match table {
            // Every table of a lake was created by a snapshot: none means it never existed.
            Some(t) if snapshots.is_empty() => Err(AppError::NotFound { what: "table", id: t }),
            _ => Ok(snapshots),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockLake, WarehouseError};

    fn project() -> ProjectId {
        ProjectId::parse("default").unwrap()
    }

    #[tokio::test]
    async fn a_table_is_named_canonically() {
        let mut lake = MockLake::new();
        lake.expect_snapshots()
            .withf(|_, t| t.as_deref() == Some("main.orders"))
            .returning(|_, _| {
                Ok(vec![LakeSnapshot {
                    id: 1,
                    committed_at: "2026-01-01 00:00:00+00".into(),
                    schema_version: 1,
                    changes: serde_json::json!({"tables_created": ["main.orders"]}),
                }])
            });
        let service = LakeService::new(Arc::new(lake));
        service
            .snapshots(&project(), Some("warehouse.main.Orders"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_table_no_snapshot_touched_never_existed() {
        let mut lake = MockLake::new();
        lake.expect_snapshots().returning(|_, _| Ok(vec![]));
        let err = LakeService::new(Arc::new(lake))
            .snapshots(&project(), Some("nowhere"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn a_source_table_or_an_empty_name_is_refused() {
        let service = LakeService::new(Arc::new(MockLake::new()));
        for bad in ["src.public.t", "main."] {
            let err = service.snapshots(&project(), Some(bad)).await.unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Invalid, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_warehouse_without_a_lake_says_so() {
        let mut lake = MockLake::new();
        lake.expect_snapshots()
            .returning(|_, _| Err(WarehouseError::Invalid("needs the hybrid profile".into())));
        let err = LakeService::new(Arc::new(lake))
            .snapshots(&project(), None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Invalid);
    }
}
