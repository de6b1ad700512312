//! Files read in place: local files, folders and globs, HTTP(S) files and S3 objects. A read splits into one
//! part per file, so a folder or glob reports progress file by file.

use async_trait::async_trait;
use pluto_duck_domain::{FileLocation, LocationScheme, Source, SourceConnection, SourceKind};

use super::{Connector, Pull};
use crate::ports::{LoadPart, PartRead, SourceCatalog, SourceRef};
use crate::AppError;

pub struct Files(pub SourceKind);

fn location(source: &Source) -> Result<&FileLocation, AppError> {
    match &source.connection {
        SourceConnection::Located(l) => Ok(l),
        _ => Err(AppError::Invalid(format!(
            "source {} is not made of files",
            source.name
        ))),
    }
}

#[async_trait]
impl Connector for Files {
    fn name(&self) -> &'static str {
        self.0.as_str()
    }

    fn describe(&self, source: &Source) -> String {
        match &source.connection {
            SourceConnection::Located(l) => l.uri.clone(),
            _ => String::new(),
        }
    }

    /// One part per file, read with the engine's readers (so a malformed CSV is reported with its file and line).
    async fn parts(
        &self,
        catalog: &dyn SourceCatalog,
        source: &Source,
        at: &SourceRef,
        pull: &Pull,
    ) -> Result<Vec<LoadPart>, AppError> {
        let Pull::Table { table, .. } = pull else {
            return Ok(vec![LoadPart {
                read: PartRead::Relation(self.relation(source, &at.alias(), pull)?),
                bytes: None,
            }]);
        };
        let loc = location(source)?;
        // A folder is listed the way the source's attach listed it, so the tables match.
        let listing = if loc.is_prefix() || (loc.scheme() == LocationScheme::Local && !loc.is_glob()) {
            let files = catalog.list_files(at, &loc.uri).await?;
            let folder = loc.is_prefix() || files.iter().any(|f| f.path != loc.uri);
            folder.then(|| files.into_iter().map(|f| f.path).collect::<Vec<_>>())
        } else {
            None
        };
        let tables = loc.tables(listing.as_deref())?;
        let Some(t) = tables.iter().find(|t| t.name.as_str() == table) else {
            return Err(AppError::NotFound {
                what: "source table",
                id: table.clone(),
            });
        };
        let mut parts = Vec::new();
        for pattern in &t.files {
            // The warehouse lists what a glob matches, with sizes of local files; a URL is one file.
            let files =
                if loc.scheme() == LocationScheme::Http || (loc.scheme() == LocationScheme::S3 && !loc.is_glob()) {
                    vec![crate::ports::FileEntry {
                        path: pattern.clone(),
                        bytes: None,
                        modified: None,
                    }]
                } else {
                    catalog.list_files(at, pattern).await?
                };
            for f in files {
                parts.push(LoadPart {
                    read: PartRead::Files {
                        files: vec![f.path],
                        format: t.format,
                        delimiter: loc.delimiter.clone(),
                        header: loc.header,
                    },
                    bytes: f.bytes,
                });
            }
        }
        if parts.is_empty() {
            return Err(AppError::Invalid(format!("no file matches {}", loc.uri)));
        }
        Ok(parts)
    }
}
