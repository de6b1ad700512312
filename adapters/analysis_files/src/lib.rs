//! Analyses as files: `<root>/<project>/analyses/<id>.yaml`, YAML metadata with the SQL as a literal block, so a
//! definition reads well in a diff and can be edited by hand. Every read goes to the files, so a hand edit is
//! seen by the next request; a file that no longer parses is reported with its path.

mod blobs;
mod skills;

use std::path::{Path, PathBuf};

pub use blobs::FileBlobStore;
pub use skills::FileSkills;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pluto_duck_application::ports::{AnalysisStore, AnalysisStoreError};
use pluto_duck_domain::{Analysis, Identifier, Materialization, ParamType, Parameter, ProjectId};
use serde::{Deserialize, Serialize};

pub struct AnalysisFiles {
    root: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParameterFile {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default: Option<String>,
    #[serde(default)]
    required: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalysisFile {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    /// view, table, append, incremental, parquet or ephemeral.
    #[serde(default = "default_materialization")]
    materialization: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    unique_key: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    parameters: Vec<ParameterFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_at: Option<DateTime<Utc>>,
    sql: String,
}

fn default_materialization() -> String {
    "view".into()
}

fn internal(e: impl std::fmt::Display) -> AnalysisStoreError {
    AnalysisStoreError::Internal(e.to_string())
}

impl AnalysisFile {
    fn from_analysis(a: &Analysis) -> Self {
        let (unique_key, cursor) = match &a.materialization {
            Materialization::Incremental { unique_key, cursor } => (unique_key.clone(), cursor.clone()),
            _ => (Vec::new(), None),
        };
        Self {
            name: a.name.clone(),
            description: a.description.clone(),
            tags: a.tags.clone(),
            materialization: a.materialization.as_str().into(),
            unique_key,
            cursor,
            parameters: a
                .parameters
                .iter()
                .map(|p| ParameterFile {
                    name: p.name.to_string(),
                    ty: p.ty.as_str().into(),
                    default: p.default.clone(),
                    required: p.required,
                })
                .collect(),
            created_at: Some(a.created_at),
            updated_at: Some(a.updated_at),
            // A trailing newline makes YAML keep the SQL as a literal block.
            sql: format!("{}\n", a.sql.trim_end()),
        }
    }

    fn into_analysis(self, project: &ProjectId, id: Identifier, modified: DateTime<Utc>) -> Result<Analysis, String> {
        let materialization =
            Materialization::parse(&self.materialization, self.unique_key, self.cursor).map_err(|e| e.to_string())?;
        let parameters = self
            .parameters
            .into_iter()
            .map(|p| {
                Ok(Parameter {
                    name: Identifier::parse(p.name).map_err(|e| e.to_string())?,
                    ty: ParamType::parse(&p.ty).map_err(|e| e.to_string())?,
                    default: p.default,
                    required: p.required,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let analysis = Analysis {
            name: if self.name.is_empty() {
                id.to_string()
            } else {
                self.name
            },
            id,
            project: project.clone(),
            sql: self.sql.trim_end().to_owned(),
            description: self.description,
            tags: self.tags,
            materialization,
            parameters,
            created_at: self.created_at.unwrap_or(modified),
            // A hand edit changes the file, not necessarily `updated_at`: the later of the two counts.
            updated_at: self.updated_at.map_or(modified, |u| u.max(modified)),
        };
        analysis.validate().map_err(|e| e.to_string())?;
        Ok(analysis)
    }
}

impl AnalysisFiles {
    /// Files go under `<root>/<project>/analyses/`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn dir(&self, project: &ProjectId) -> PathBuf {
        self.root.join(project.as_str()).join("analyses")
    }

    fn file(&self, project: &ProjectId, id: &Identifier) -> PathBuf {
        self.dir(project).join(format!("{id}.yaml"))
    }

    fn read(path: &Path, project: &ProjectId, id: Identifier) -> Result<Option<Analysis>, AnalysisStoreError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(internal(format!("{}: {e}", path.display()))),
        };
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map(DateTime::<Utc>::from)
            .unwrap_or_else(|_| Utc::now());
        let file: AnalysisFile =
            serde_yaml::from_str(&text).map_err(|e| AnalysisStoreError::Invalid(format!("{}: {e}", path.display())))?;
        file.into_analysis(project, id, modified)
            .map(Some)
            .map_err(|e| AnalysisStoreError::Invalid(format!("{}: {e}", path.display())))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AnalysisStoreError> + Send + 'static,
) -> Result<T, AnalysisStoreError> {
    tokio::task::spawn_blocking(f).await.map_err(internal)?
}

#[async_trait]
impl AnalysisStore for AnalysisFiles {
    async fn list(&self, project: &ProjectId) -> Result<Vec<Analysis>, AnalysisStoreError> {
        let (dir, project) = (self.dir(project), project.clone());
        blocking(move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(internal(format!("{}: {e}", dir.display()))),
            };
            let mut out = Vec::new();
            for entry in entries.flatten() {
                let path = entry.path();
                let Some(stem) = path
                    .extension()
                    .filter(|e| *e == "yaml")
                    .and(path.file_stem())
                    .and_then(|s| s.to_str())
                else {
                    continue;
                };
                let id = Identifier::parse(stem).map_err(|e| {
                    AnalysisStoreError::Invalid(format!("{}: the file name is not an analysis id: {e}", path.display()))
                })?;
                if let Some(a) = Self::read(&path, &project, id)? {
                    out.push(a);
                }
            }
            out.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(out)
        })
        .await
    }

    async fn get(&self, project: &ProjectId, id: &Identifier) -> Result<Option<Analysis>, AnalysisStoreError> {
        let (path, project, id) = (self.file(project, id), project.clone(), id.clone());
        blocking(move || Self::read(&path, &project, id)).await
    }

    async fn put(&self, analysis: &Analysis) -> Result<(), AnalysisStoreError> {
        let path = self.file(&analysis.project, &analysis.id);
        let text = serde_yaml::to_string(&AnalysisFile::from_analysis(analysis)).map_err(internal)?;
        blocking(move || {
            let dir = path.parent().ok_or_else(|| internal("no parent folder"))?;
            std::fs::create_dir_all(dir).map_err(|e| internal(format!("{}: {e}", dir.display())))?;
            // Write aside, then rename: readers see the old file or the new one.
            let tmp = path.with_extension("yaml.tmp");
            std::fs::write(&tmp, text).map_err(|e| internal(format!("{}: {e}", tmp.display())))?;
            std::fs::rename(&tmp, &path).map_err(|e| internal(format!("{}: {e}", path.display())))
        })
        .await
    }

    async fn delete(&self, project: &ProjectId, id: &Identifier) -> Result<bool, AnalysisStoreError> {
        let path = self.file(project, id);
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(internal(format!("{}: {e}", path.display()))),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(project: &str, id: &str, sql: &str) -> Analysis {
        let now = Utc::now();
        Analysis {
            id: Identifier::parse(id).unwrap(),
            project: ProjectId::parse(project).unwrap(),
            name: format!("The {id}"),
            sql: sql.into(),
            description: "what it is".into(),
            tags: vec!["finance".into()],
            materialization: Materialization::Incremental {
                unique_key: vec!["id".into()],
                cursor: Some("updated_at".into()),
            },
            parameters: vec![Parameter {
                name: Identifier::parse("since").unwrap(),
                ty: ParamType::Date,
                default: Some("2024-01-01".into()),
                required: false,
            }],
            created_at: now,
            updated_at: now,
        }
    }

    #[tokio::test]
    async fn round_trip_readable_files_and_hand_edits() {
        let dir = tempfile::tempdir().unwrap();
        let store = AnalysisFiles::new(dir.path());
        let a = analysis(
            "default",
            "orders",
            "SELECT *\nFROM {{ ref('raw') }}\nWHERE d >= $since",
        );
        store.put(&a).await.unwrap();
        let got = store.get(&a.project, &a.id).await.unwrap().unwrap();
        assert_eq!(
            (got.sql.as_str(), &got.materialization, &got.parameters),
            (a.sql.as_str(), &a.materialization, &a.parameters)
        );
        let path = dir.path().join("default/analyses/orders.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("sql: |"), "SQL as a literal block:\n{text}");
        assert!(text.contains("  FROM {{ ref('raw') }}"), "{text}");

        // A hand edit is seen by the next read.
        std::fs::write(&path, text.replace("WHERE d >= $since", "WHERE d >= $since AND ok")).unwrap();
        let got = store.get(&a.project, &a.id).await.unwrap().unwrap();
        assert!(got.sql.ends_with("AND ok"), "{}", got.sql);
        // A broken edit is reported with the file's path.
        std::fs::write(&path, "sql: [unclosed").unwrap();
        let e = store.get(&a.project, &a.id).await.unwrap_err().to_string();
        assert!(e.contains("orders.yaml"), "{e}");
        std::fs::write(&path, "sql: SELECT 1\nmaterialization: snapshot\n").unwrap();
        let e = store.list(&a.project).await.unwrap_err().to_string();
        assert!(e.contains("unknown materialization"), "{e}");
    }

    #[tokio::test]
    async fn projects_do_not_collide_and_delete_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = AnalysisFiles::new(dir.path());
        let (a, b) = (
            analysis("default", "same", "SELECT 1"),
            analysis("team", "same", "SELECT 2"),
        );
        store.put(&a).await.unwrap();
        store.put(&b).await.unwrap();
        store.put(&analysis("team", "another", "SELECT 3")).await.unwrap();
        assert_eq!(store.list(&a.project).await.unwrap().len(), 1);
        let team: Vec<_> = store
            .list(&b.project)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id.to_string())
            .collect();
        assert_eq!(team, ["another", "same"]);
        assert_eq!(store.get(&b.project, &b.id).await.unwrap().unwrap().sql, "SELECT 2");
        assert!(store.delete(&a.project, &a.id).await.unwrap());
        assert!(!store.delete(&a.project, &a.id).await.unwrap());
        assert!(store.get(&b.project, &b.id).await.unwrap().is_some());
        assert!(store
            .list(&ProjectId::parse("empty").unwrap())
            .await
            .unwrap()
            .is_empty());
    }
}
