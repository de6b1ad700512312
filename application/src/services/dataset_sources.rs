//! A dataset object in one call: registered as a file source of the project (read in place: a local object by
//! its path, an S3 object through httpfs with the object store's credentials), or ingested into a table as an
//! ingest run (through the same connectors as `/ingest`).

use std::sync::Arc;

use pluto_duck_domain::{
    FileLocation, Identifier, IngestMode, ProjectId, Run, Source, SourceConnection, SourceKind, SourceState,
};

use super::datasets::DatasetService;
use super::ingest::{IngestRequest, IngestService, IngestSource};
use super::sources::{NewSource, SourceService};
use crate::ports::{CsvStrictness, ObjectLocation};
use crate::AppError;

pub struct DatasetSources {
    datasets: Arc<DatasetService>,
    sources: Arc<SourceService>,
    ingest: Arc<IngestService>,
}

/// A table or source name from an object's file name: `data/Orders 2026.csv` is `orders_2026`.
fn name_of(key: &str) -> String {
    let file = key.rsplit('/').next().unwrap_or(key);
    let stem = file.split('.').next().unwrap_or(file);
    Identifier::sanitize(stem).to_string()
}

impl DatasetSources {
    pub fn new(datasets: Arc<DatasetService>, sources: Arc<SourceService>, ingest: Arc<IngestService>) -> Self {
        Self {
            datasets,
            sources,
            ingest,
        }
    }

    async fn new_source(&self, bucket: &str, key: &str, name: String) -> Result<NewSource, AppError> {
        // 404 for an object that is not there, before anything is attached.
        self.datasets.head_object(bucket, key).await?;
        let location = self.datasets.locate(bucket, key)?;
        let (kind, uri, s3, password) = match location {
            ObjectLocation::Local(path) => (SourceKind::File, path.display().to_string(), None, None),
            ObjectLocation::S3 { uri, settings, secret } => (SourceKind::S3, uri, Some(settings), Some(secret)),
        };
        Ok(NewSource {
            name,
            kind,
            description: format!("dataset object {bucket}/{key}"),
            connection: SourceConnection::Located(FileLocation {
                uri,
                format: None,
                delimiter: None,
                header: None,
                lenient: false,
                s3,
            }),
            password,
            read_only: true,
        })
    }

    /// Registers the object as a file source named `name` (default: from its file name).
    pub async fn register(
        &self,
        project: &ProjectId,
        bucket: &str,
        key: &str,
        name: Option<String>,
    ) -> Result<(Source, SourceState), AppError> {
        let new = self
            .new_source(bucket, key, name.unwrap_or_else(|| name_of(key)))
            .await?;
        self.sources.attach(project, new).await
    }

    /// Ingests the object into `schema.target` (default `main` and its file name) as an ingest run.
    #[allow(clippy::too_many_arguments)]
    pub async fn ingest(
        &self,
        project: &ProjectId,
        bucket: &str,
        key: &str,
        target: Option<String>,
        schema: Option<String>,
        mode: IngestMode,
        actor: Option<String>,
    ) -> Result<Run, AppError> {
        let target = target.unwrap_or_else(|| name_of(key));
        let new = self.new_source(bucket, key, target.clone()).await?;
        self.ingest
            .submit(
                project,
                IngestRequest {
                    source: IngestSource::Config(Box::new(new)),
                    table: None,
                    query: None,
                    target: Some(target),
                    schema,
                    mode,
                    keys: Vec::new(),
                    csv: CsvStrictness::Strict,
                    actor,
                },
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_come_from_the_file_name() {
        assert_eq!(super::name_of("data/Orders 2026.csv"), "orders_2026");
        assert_eq!(super::name_of("x.parquet"), "x");
    }
}
