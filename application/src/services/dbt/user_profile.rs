//! A dbt project's own `profiles.yml`. When the project folder holds one, Pluto-Duck runs dbt with it (instead of
//! the profile it writes) after checking that the target dbt runs says what the file lock needs: dbt-duckdb,
//! building into the project's dbt database, and reading the project's tables through an attachment named
//! `warehouse`. Pluto-Duck hands both paths to dbt in environment variables.

use std::path::Path;

use serde_yaml::Value;

use crate::ports::TransformError;

/// The project's dbt database (`projects/<p>/dbt.duckdb`) dbt must build into.
pub const DATABASE_ENV: &str = "PLUTODUCK_DBT_DATABASE";
/// The copy of the project's tables dbt reads sources from, attached read-only as `warehouse`.
pub const SOURCES_ENV: &str = "PLUTODUCK_DBT_SOURCES";
/// The file name dbt looks for in `--profiles-dir`.
pub const PROFILES_FILE: &str = "profiles.yml";

/// `{{ env_var('NAME') }}` (with or without a default, either quote), or the literal path.
fn names(value: Option<&Value>, env: &str, path: &Path) -> bool {
    let Some(text) = value.and_then(Value::as_str) else {
        return false;
    };
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .replace('"', "'");
    compact.contains(&format!("env_var('{env}'")) || Path::new(text) == path
}

fn invalid(file: &Path, what: String) -> TransformError {
    TransformError::ProjectInvalid(format!(
        "{}: {what} (see the README's dbt section for what a project's own profiles.yml must say)",
        file.display()
    ))
}

/// Checks the project's own profiles.yml, if any, for the profile and target the run uses. `Ok(false)` when
/// the project has none (Pluto-Duck writes one), `Ok(true)` when it has one that will do.
pub fn check(
    project_dir: &Path,
    profile: &str,
    target: Option<&str>,
    database: &Path,
    sources: &Path,
) -> Result<bool, TransformError> {
    let file = project_dir.join(PROFILES_FILE);
    let Ok(text) = std::fs::read_to_string(&file) else {
        return Ok(false);
    };
    let doc: Value = serde_yaml::from_str(&text).map_err(|e| invalid(&file, format!("not YAML: {e}")))?;
    let p = doc.get(profile).ok_or_else(|| {
        invalid(
            &file,
            format!("no profile {profile:?} (the `profile:` of dbt_project.yml)"),
        )
    })?;
    let target = match target {
        Some(t) => t.to_owned(),
        None => p
            .get("target")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&file, format!("profile {profile:?} names no default `target:`")))?
            .to_owned(),
    };
    let out = p
        .get("outputs")
        .and_then(|o| o.get(target.as_str()))
        .ok_or_else(|| invalid(&file, format!("profile {profile:?} has no output {target:?}")))?;
    if out.get("type").and_then(Value::as_str) != Some("duckdb") {
        return Err(invalid(&file, format!("output {target:?} must be `type: duckdb`")));
    }
    if !names(out.get("path"), DATABASE_ENV, database) {
        return Err(invalid(
            &file,
            format!(
                "output {target:?} must build into the project's dbt database: \
                 path: \"{{{{ env_var('{DATABASE_ENV}') }}}}\""
            ),
        ));
    }
    let warehouse = out
        .get("attach")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .find(|a| a.get("alias").and_then(Value::as_str) == Some(pluto_duck_domain::PROJECT_CATALOG));
    let ok = warehouse.is_some_and(|a| {
        names(a.get("path"), SOURCES_ENV, sources) && a.get("read_only").and_then(Value::as_bool) == Some(true)
    });
    if !ok {
        return Err(invalid(
            &file,
            format!(
                "output {target:?} must attach the project's tables read-only as `warehouse`: \
                 attach: [{{path: \"{{{{ env_var('{SOURCES_ENV}') }}}}\", alias: warehouse, read_only: true}}]"
            ),
        ));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str, profiles: Option<&str>) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("pd-user-profile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        if let Some(p) = profiles {
            std::fs::write(d.join(PROFILES_FILE), p).unwrap();
        }
        d
    }

    const GOOD: &str = r#"
shop:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: "{{ env_var('PLUTODUCK_DBT_DATABASE', 'dbt.duckdb') }}"
      attach:
        - path: "{{ env_var(\"PLUTODUCK_DBT_SOURCES\") }}"
          alias: warehouse
          read_only: true
    other:
      type: duckdb
      path: /tmp/elsewhere.duckdb
"#;

    #[test]
    fn a_profile_saying_the_contract_is_used_and_others_are_refused_saying_why() {
        let (db, src) = (Path::new("/d/dbt.duckdb"), Path::new("/d/sources.duckdb"));
        assert!(!check(&dir("none", None), "shop", None, db, src).unwrap());
        let d = dir("good", Some(GOOD));
        assert!(check(&d, "shop", None, db, src).unwrap());
        let e = check(&d, "shop", Some("other"), db, src).unwrap_err().to_string();
        assert!(e.contains("must build into the project's dbt database"), "{e}");
        let e = check(&d, "nope", None, db, src).unwrap_err().to_string();
        assert!(e.contains("no profile \"nope\""), "{e}");
        let no_attach = GOOD.replace("alias: warehouse", "alias: other");
        let e = check(&dir("attach", Some(&no_attach)), "shop", None, db, src)
            .unwrap_err()
            .to_string();
        assert!(e.contains("read-only as `warehouse`"), "{e}");
        let literal = "shop:\n  target: t\n  outputs:\n    t:\n      type: duckdb\n      path: /d/dbt.duckdb\n      attach: [{path: /d/sources.duckdb, alias: warehouse, read_only: true}]\n";
        assert!(check(&dir("literal", Some(literal)), "shop", None, db, src).unwrap());
    }
}
