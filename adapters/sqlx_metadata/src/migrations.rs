//! The schema's history: one set of migration files (`migrations/`) for both dialects. Where the dialects spell
//! a column type differently a file names it by a token (`{timestamp}`, `{int64}`, `{bool}`, `{true}`,
//! `{false}`), which `Dialect::ddl_types` renders before sqlx's migrator sees the SQL.
//!
//! sqlx records each applied migration's version and SHA-384 checksum and refuses to start when a file it
//! applied has changed, or is gone. So a step that has shipped is never edited: add a step. The test below pins
//! the rendered SQL of every shipped step to the checksums existing databases hold.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use pluto_duck_application::ports::RepoError;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use crate::dialect::{Db, Dialect};

macro_rules! steps {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_str!(concat!("../migrations/", $file)))),*]
    };
}

/// Oldest first; a file's name is `<version>_<description>.sql`, as sqlx's own migration folders.
const STEPS: &[(&str, &str)] = steps![
    "0001_init.sql",
    "0002_runs.sql",
    "0003_sources.sql",
    "0004_caches.sql",
    "0005_ingestions.sql",
    "0006_analysis_state.sql",
    "0007_boards.sql",
    "0008_run_detail.sql",
    "0009_conversations.sql",
    "0010_jobs.sql",
    "0011_hybrid_control_plane.sql",
];

fn render(template: &str, dialect: Dialect) -> String {
    dialect
        .ddl_types()
        .iter()
        .fold(template.to_owned(), |sql, (token, ty)| sql.replace(token, ty))
}

fn migrations(dialect: Dialect) -> Result<Vec<Migration>, RepoError> {
    STEPS
        .iter()
        .map(|(file, template)| {
            let bad = || RepoError::Internal(format!("bad migration file name {file}"));
            let (version, description) = file.split_once('_').ok_or_else(bad)?;
            Ok(Migration::new(
                version.parse().map_err(|_| bad())?,
                Cow::Owned(description.trim_end_matches(".sql").replace('_', " ")),
                MigrationType::Simple,
                Cow::Owned(render(template, dialect)),
                false,
            ))
        })
        .collect()
}

/// The rendered steps, handed to sqlx's migrator.
#[derive(Debug)]
struct Rendered(Vec<Migration>);

impl MigrationSource<'static> for Rendered {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send>> {
        Box::pin(async move { Ok(self.0) })
    }
}

/// Applies the pending steps, each in its own transaction (PostgreSQL also takes the migrator's advisory lock,
/// so two servers starting together do not race).
pub(crate) async fn run(db: &Db) -> Result<(), RepoError> {
    let migrator = Migrator::new(Rendered(migrations(db.dialect())?))
        .await
        .map_err(migrate_err)?;
    match db {
        Db::Sqlite { writer, .. } => migrator.run(&mut *writer.lock().await).await,
        Db::Postgres(pool) => migrator.run(pool).await,
    }
    .map_err(migrate_err)
}

fn migrate_err(e: sqlx::migrate::MigrateError) -> RepoError {
    RepoError::Internal(format!("metadata migration failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-384 of each step as it shipped in the first release, when each dialect had its own folder
    /// (`migrations/sqlite`, `migrations/postgres`): what every existing database's `_sqlx_migrations` holds.
    const SHIPPED: [(i64, &str, &str); 7] = [
        (
            1,
            "bbbb3620703960361d9466d4112cefd81bbabf4ecd0c711219a483b1b925763a32539c0e011bc44a76908a37b70b23b8",
            "aa3cb9c167d43535725c4cdb8eadb8784815db71679650e0c30668989af17f7602814d3ec12444ffca50558083a42e00",
        ),
        (
            2,
            "e528c2c3f82728ea111cf58402d57458672362e014440eb8ab26354eb72bf736a61e03bfab4c94bf006d848809947570",
            "e25c1cd4e1badfab937efa36321a7cf0690c8a745d2910fc372a2fbb3242b557e781e5db241d3faa2419a517cf8f0d57",
        ),
        (
            3,
            "5d742ec52d0567687309beb61f8373c4461cf4c9fb7ae20484e90c56d4c4dddf731d4364199951da614940aa78d868f3",
            "2b3cccaaa930b16f986c9f1df96aec964dc215c0ad6697e3aa85ec8b68ee2c98b57418384575f3b4d28fbadf649e4145",
        ),
        (
            4,
            "1e8a5fac9c2bf59d8d5d938ed81ee2ee2736ef903a3c98556aa1f1f2c535ae5a8398936baf4d32b915a0b1e05af30277",
            "ed1839c8f4fc37ccf2fd6e847191c3228c4ec68812a27dba672c99c325d392598b2495ba65f12261710e1bbb302785e5",
        ),
        (
            5,
            "5c490e62b52c369e88b78569766f99364bd747922fa4c337ddb9b3e9df2cd162940d2428167116904720b78b1fed3650",
            "8bc5c6146a6845666bc18cedfe78b78449fbdca6cc406bdcc75ae144762394d8e19477efbea0ed1e785f4f35e00102f0",
        ),
        (
            6,
            "7dae5a146ed9755270bfba67c3d7de932874e8c6b431b74fe27e23275959e2b82b092102f009679ac9e99c4b6e980990",
            "7dae5a146ed9755270bfba67c3d7de932874e8c6b431b74fe27e23275959e2b82b092102f009679ac9e99c4b6e980990",
        ),
        (
            7,
            "31c4176f5349819dccdf24e3f93d714a6f4c71f787b24f86348ae0e4941848c76ef9e0af72f1b590a4cf2318103441f0",
            "31c4176f5349819dccdf24e3f93d714a6f4c71f787b24f86348ae0e4941848c76ef9e0af72f1b590a4cf2318103441f0",
        ),
    ];

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn shipped_steps_render_to_the_checksums_existing_databases_hold() {
        let (sqlite, postgres) = (
            migrations(Dialect::Sqlite).unwrap(),
            migrations(Dialect::Postgres).unwrap(),
        );
        for (version, sqlite_sum, postgres_sum) in SHIPPED {
            for (dialect, steps, shipped) in [
                (Dialect::Sqlite, &sqlite, sqlite_sum),
                (Dialect::Postgres, &postgres, postgres_sum),
            ] {
                let step = steps.iter().find(|m| m.version == version).unwrap();
                assert_eq!(
                    hex(&step.checksum),
                    shipped,
                    "{dialect:?} step {version} changed: existing databases would refuse to open. Add a step instead."
                );
            }
        }
    }

    #[test]
    fn steps_are_ordered_and_leave_no_unknown_token() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let steps = migrations(dialect).unwrap();
            assert!(steps.windows(2).all(|w| w[0].version < w[1].version));
            for m in &steps {
                let token = m.sql.split('{').skip(1).find_map(|rest| {
                    let word = rest.split('}').next().unwrap_or_default();
                    (rest.contains('}')
                        && !word.is_empty()
                        && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                    .then_some(word)
                });
                assert_eq!(
                    token, None,
                    "{dialect:?} step {} names a type no dialect renders",
                    m.version
                );
            }
        }
        assert_eq!(migrations(Dialect::Sqlite).unwrap()[5].description, "analysis state");
    }
}
