use std::path::Path;
use std::process::ExitCode;

use crate::cli::InitArgs;
use crate::config::Loaded;
use crate::error::{CliError, CliResult};

/// The starter dbt project (dbt_projects/core), embedded so `init` works from an installed binary.
macro_rules! starter_project {
    ($($rel:literal),* $(,)?) => {
        [$(($rel, include_str!(concat!("../../../dbt_projects/core/", $rel)))),*]
    };
}

const DBT_SAMPLE: [(&str, &str); 23] = starter_project![
    "dbt_project.yml",
    "profiles.yml",
    "macros/cents_to_dollars.sql",
    "models/docs.md",
    "models/staging/schema.yml",
    "models/staging/stg_customers.sql",
    "models/staging/stg_order_items.sql",
    "models/staging/stg_orders.sql",
    "models/staging/stg_payments.sql",
    "models/staging/stg_products.sql",
    "models/staging/stg_stores.sql",
    "models/marts/schema.yml",
    "models/marts/order_items.sql",
    "models/marts/orders.sql",
    "models/marts/customers.sql",
    "seeds/schema.yml",
    "seeds/raw_customers.csv",
    "seeds/raw_order_items.csv",
    "seeds/raw_orders.csv",
    "seeds/raw_payments.csv",
    "seeds/raw_products.csv",
    "seeds/raw_stores.csv",
    "tests/assert_orders_are_paid_in_full.sql",
];

const CONFIG_TEMPLATE: &str = "\
# Pluto-Duck configuration. Precedence, lowest to highest: defaults, this file, a project-local .plutoduck,
# PLUTODUCK_* environment variables (PLUTODUCK_SERVER__PORT=8001), command-line flags.
profile: local            # local (SQLite metadata) | hybrid (PostgreSQL metadata)
# data_dir: ~/.pluto-duck
server:
  host: 127.0.0.1
  port: 8000
  # api_token: secret:api_token    # a reference (env:VAR or secret:NAME), never the token itself
  cors_origins: []
duckdb:
  # extension_directory: ~/.local/share/pluto-duck/extensions
  # threads: 4
  # memory_limit: 4GB
  max_connections: 8
log:
  level: info
  format: auto            # auto | pretty | json
";

fn write_new(path: &Path, contents: &str, force: bool) -> CliResult<bool> {
    if path.exists() && !force {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::unavailable(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, contents)
        .map_err(|e| CliError::unavailable(format!("cannot write {}: {e}", path.display())))?;
    Ok(true)
}

pub fn init(loaded: &Loaded, args: &InitArgs) -> CliResult<ExitCode> {
    let config = &loaded.config;
    let config_file = loaded
        .sources
        .user_file
        .clone()
        .unwrap_or_else(crate::config::user_config_path);
    if write_new(&config_file, CONFIG_TEMPLATE, args.force)? {
        println!("created {}", config_file.display());
    } else {
        println!("kept {}", config_file.display());
    }
    for dir in config.data_dirs() {
        std::fs::create_dir_all(&dir)
            .map_err(|e| CliError::unavailable(format!("cannot create {}: {e}", dir.display())))?;
    }
    println!("data directory {}", config.data_dir.display());
    let dbt_dir = config.dbt_project_dir();
    let mut copied = 0;
    for (rel, contents) in DBT_SAMPLE {
        if write_new(&dbt_dir.join(rel), contents, args.force)? {
            copied += 1;
        }
    }
    println!("dbt project {} ({copied} files written)", dbt_dir.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::DBT_SAMPLE;

    fn files(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, root, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_str().unwrap().to_owned());
            }
        }
    }

    #[test]
    fn every_file_of_the_starter_project_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dbt_projects/core");
        let mut on_disk = Vec::new();
        files(&root, &root, &mut on_disk);
        // What a by-hand dbt run leaves behind is not part of the project.
        on_disk.retain(|f| {
            !(f.starts_with("target/") || f.starts_with("logs/") || f.ends_with(".duckdb") || f.ends_with(".wal"))
        });
        on_disk.sort();
        let mut embedded: Vec<String> = DBT_SAMPLE.iter().map(|(rel, _)| (*rel).to_owned()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }
}
