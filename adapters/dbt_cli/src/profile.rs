//! The `profiles.yml` Pluto-Duck writes for a project: a dbt-duckdb target that builds into the project's own
//! database file, reads other DuckDB files through read-only attachments, and never downloads anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pluto_duck_application::ports::TransformError;
use serde::Serialize;

/// Extensions linked into the duckdb Python wheel dbt-duckdb uses. They are loaded already, and listing one
/// under `extensions:` would make dbt-duckdb run `INSTALL`, which downloads even a built-in one: they are left out.
pub const BUILT_IN_EXTENSIONS: [&str; 4] = ["core_functions", "icu", "json", "parquet"];

/// The profile name the starter project's `dbt_project.yml` asks for.
pub const DEFAULT_PROFILE_NAME: &str = "pluto_duck";

/// Another DuckDB file dbt reads (`ATTACH '<path>' AS <alias> (READ_ONLY)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileAttachment {
    pub path: PathBuf,
    /// How models name it: `select * from <alias>.main.orders`.
    pub alias: String,
    pub read_only: bool,
}

/// A dbt-duckdb profile for one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuckDbProfile {
    /// The `profile:` of the project's `dbt_project.yml`.
    pub profile_name: String,
    pub target_name: String,
    /// The file dbt builds into: the project's own (`<data_dir>/projects/<project>/dbt.duckdb`), never one a
    /// running server holds. dbt-duckdb names the database after the file (`dbt.duckdb` is database `dbt`), so
    /// relation names in the manifest read `"dbt"."main"."orders"`.
    pub database_path: PathBuf,
    /// dbt's threads (each one a DuckDB cursor).
    pub threads: u32,
    /// Extensions to load, found in `extension_directory` (built-ins are skipped, see [`BUILT_IN_EXTENSIONS`]).
    pub extensions: Vec<String>,
    /// Where the offline extensions are (`<dir>/v1.5.5/linux_amd64/*.duckdb_extension`).
    pub extension_directory: Option<PathBuf>,
    pub attach: Vec<ProfileAttachment>,
    /// DuckDB settings set on every dbt connection (`memory_limit`, `threads`...).
    pub settings: BTreeMap<String, String>,
}

impl DuckDbProfile {
    pub fn new(database_path: impl Into<PathBuf>) -> Self {
        DuckDbProfile {
            profile_name: DEFAULT_PROFILE_NAME.to_owned(),
            target_name: "local".to_owned(),
            database_path: database_path.into(),
            threads: 2,
            extensions: Vec::new(),
            extension_directory: None,
            attach: Vec::new(),
            settings: BTreeMap::new(),
        }
    }

    pub fn attach(mut self, path: impl Into<PathBuf>, alias: impl Into<String>, read_only: bool) -> Self {
        self.attach.push(ProfileAttachment {
            path: path.into(),
            alias: alias.into(),
            read_only,
        });
        self
    }

    /// The database name dbt-duckdb gives the file: the first non-empty dot-separated part of its name.
    pub fn database_name(&self) -> Option<String> {
        let file = self.database_path.file_name()?.to_str()?;
        file.trim_start_matches('.')
            .split('.')
            .next()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    pub fn to_yaml(&self) -> Result<String, TransformError> {
        let invalid = |m: String| Err(TransformError::InvalidInvocation(m));
        let Some(database) = self.database_name() else {
            return invalid(format!(
                "{} does not name a database file",
                self.database_path.display()
            ));
        };
        if self.threads == 0 {
            return invalid("a profile needs at least one thread".into());
        }
        for name in [&self.profile_name, &self.target_name] {
            if !is_identifier(name) {
                return invalid(format!("{name:?} is not a profile or target name (letters, digits, _)"));
            }
        }
        let mut aliases = vec![database.as_str()];
        for a in &self.attach {
            if !is_identifier(&a.alias) {
                return invalid(format!("{:?} is not an attachment alias (letters, digits, _)", a.alias));
            }
            if aliases.iter().any(|x| x.eq_ignore_ascii_case(&a.alias)) {
                return invalid(format!(
                    "alias {:?} is used twice (the build database is {database:?})",
                    a.alias
                ));
            }
            aliases.push(&a.alias);
        }
        if let Some(e) = self.extensions.iter().find(|e| !is_identifier(e)) {
            return invalid(format!("{e:?} is not an extension name"));
        }
        if let Some(k) = self.settings.keys().find(|k| !is_identifier(k)) {
            return invalid(format!("{k:?} is not a DuckDB setting"));
        }
        let paths = std::iter::once(&self.database_path)
            .chain(self.extension_directory.as_ref())
            .chain(self.attach.iter().map(|a| &a.path));
        let mut texts: Vec<String> = Vec::new();
        for p in paths {
            match p.to_str() {
                Some(s) => texts.push(s.to_owned()),
                None => return invalid(format!("{} is not UTF-8", p.display())),
            }
        }
        // dbt renders every string of profiles.yml as Jinja.
        if let Some(t) = texts
            .iter()
            .chain(self.settings.values())
            .find(|t| ["{{", "{%", "{#"].iter().any(|m| t.contains(m)))
        {
            return invalid(format!("{t:?} contains a Jinja marker, which dbt would render"));
        }

        let mut config_options = BTreeMap::new();
        config_options.insert("autoinstall_known_extensions", serde_yaml::Value::Bool(false));
        config_options.insert("autoload_known_extensions", serde_yaml::Value::Bool(true));
        if let Some(dir) = &self.extension_directory {
            config_options.insert("extension_directory", dir.display().to_string().into());
        }
        let output = Output {
            kind: "duckdb",
            path: self.database_path.display().to_string(),
            threads: self.threads,
            extensions: self
                .extensions
                .iter()
                .map(String::as_str)
                .filter(|e| !BUILT_IN_EXTENSIONS.contains(e))
                .collect(),
            config_options,
            settings: self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            attach: self
                .attach
                .iter()
                .map(|a| Attach {
                    path: a.path.display().to_string(),
                    alias: &a.alias,
                    read_only: a.read_only,
                })
                .collect(),
        };
        let profile = Profile {
            target: &self.target_name,
            outputs: BTreeMap::from([(self.target_name.as_str(), output)]),
        };
        let body = serde_yaml::to_string(&BTreeMap::from([(self.profile_name.as_str(), profile)]))
            .map_err(|e| TransformError::Internal(format!("cannot write the profile: {e}")))?;
        Ok(format!(
            "# Written by Pluto-Duck before each dbt run: edits are overwritten.\n\
             # dbt builds into its own file; config_options keep DuckDB from downloading extensions.\n{body}"
        ))
    }

    /// Writes `<profiles_dir>/profiles.yml` (atomically: a reader never sees half of it) and returns its path.
    pub fn write(&self, profiles_dir: &Path) -> Result<PathBuf, TransformError> {
        let yaml = self.to_yaml()?;
        let io = |what: &str, p: &Path, e: std::io::Error| {
            TransformError::Internal(format!("cannot {what} {}: {e}", p.display()))
        };
        std::fs::create_dir_all(profiles_dir).map_err(|e| io("create", profiles_dir, e))?;
        let path = profiles_dir.join("profiles.yml");
        let tmp = profiles_dir.join(".profiles.yml.tmp");
        std::fs::write(&tmp, yaml).map_err(|e| io("write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io("write", &path, e))?;
        Ok(path)
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[derive(Serialize)]
struct Profile<'a> {
    target: &'a str,
    outputs: BTreeMap<&'a str, Output<'a>>,
}

#[derive(Serialize)]
struct Output<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    path: String,
    threads: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extensions: Vec<&'a str>,
    /// Given to `duckdb.connect`: in force before dbt-duckdb installs and loads extensions and attaches files.
    config_options: BTreeMap<&'static str, serde_yaml::Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    settings: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attach: Vec<Attach<'a>>,
}

#[derive(Serialize)]
struct Attach<'a> {
    path: String,
    alias: &'a str,
    read_only: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_duckdb_target_that_never_downloads() {
        let mut p = DuckDbProfile::new("/data/projects/shop/dbt.duckdb").attach(
            "/data/projects/shop/warehouse.duckdb",
            "pluto",
            true,
        );
        p.extensions = vec!["parquet".into(), "sqlite_scanner".into()];
        p.extension_directory = Some("/share/extensions".into());
        p.settings.insert("memory_limit".into(), "2GB".into());
        let yaml = p.to_yaml().unwrap();
        let v: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        let out = &v["pluto_duck"]["outputs"]["local"];
        assert_eq!(v["pluto_duck"]["target"], "local");
        assert_eq!(out["type"], "duckdb");
        assert_eq!(out["path"], "/data/projects/shop/dbt.duckdb");
        assert_eq!(out["threads"], 2);
        assert_eq!(
            out["extensions"],
            serde_yaml::Value::from(vec!["sqlite_scanner"]),
            "{yaml}"
        );
        assert_eq!(out["config_options"]["autoinstall_known_extensions"], false);
        assert_eq!(out["config_options"]["autoload_known_extensions"], true);
        assert_eq!(out["config_options"]["extension_directory"], "/share/extensions");
        assert_eq!(out["settings"]["memory_limit"], "2GB");
        assert_eq!(out["attach"][0]["alias"], "pluto");
        assert_eq!(out["attach"][0]["read_only"], true);
        assert_eq!(p.database_name().as_deref(), Some("dbt"));
    }

    #[test]
    fn refuses_what_dbt_would_misread() {
        let base = || DuckDbProfile::new("/d/dbt.duckdb");
        for (p, why) in [
            (base().attach("/d/w.duckdb", "my-db", true), "not an attachment alias"),
            (base().attach("/d/w.duckdb", "DBT", true), "used twice"),
            (DuckDbProfile::new("/d/{{ env_var('X') }}.duckdb"), "Jinja"),
            (DuckDbProfile::new("/"), "does not name a database file"),
        ] {
            let e = p.to_yaml().unwrap_err();
            assert!(e.to_string().contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn write_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = DuckDbProfile::new("/d/a.duckdb").write(dir.path()).unwrap();
        DuckDbProfile::new("/d/b.duckdb").write(dir.path()).unwrap();
        assert!(std::fs::read_to_string(path).unwrap().contains("/d/b.duckdb"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
