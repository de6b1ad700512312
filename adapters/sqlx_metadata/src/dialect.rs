//! What differs between SQLite and PostgreSQL, and only that: how to connect, how a timestamp is stored, and
//! which column types the migrations name.
//!
//! Every statement is written once, in SQL both accept: `$n` placeholders (sqlx's SQLite driver binds `$n` by
//! number, as PostgreSQL does), `INSERT ... ON CONFLICT (...) DO UPDATE SET x = excluded.x` upserts, and
//! `CAST($n AS TEXT) IS NULL` for optional filters. `with_pool!` (and `execute!`, `fetch_optional!`,
//! `fetch_all!` on it) then runs it on the store's connections: the body is compiled once per dialect, so each
//! arm is plain, fully typed sqlx (no `Any` driver boxing rows and arguments), and each connection keeps its
//! prepared statements cached.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use pluto_duck_application::ports::RepoError;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgPool, PgPoolOptions, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{
    SqliteArgumentValue, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    SqliteTypeInfo, SqliteValueRef,
};
use sqlx::{ConnectOptions, Connection, Decode, Encode, Postgres, Sqlite, SqliteConnection, Type};

/// Where the store's statements run.
pub(crate) enum Db {
    /// SQLite takes one writer at a time. Writes queue for the one writing connection instead of contending
    /// for the file's lock (a connection that finds it taken sleeps a millisecond or more); reads run beside
    /// them on a pool (WAL).
    Sqlite {
        writer: SqliteWriter,
        readers: SqlitePool,
    },
    Postgres(PgPool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// Runs `$body` with `$conn` bound to where the store's `writer` or `readers` statements run, whichever
/// database it is. The body is the same text in every arm and typed in each.
macro_rules! with_pool {
    ($db:expr, writer, |$conn:ident| $body:expr) => {
        match $db {
            $crate::dialect::Db::Sqlite { writer, .. } => {
                let mut guard = writer.lock().await;
                let result = {
                    let $conn = &mut *guard;
                    $body
                };
                writer.recover_if_broken(&mut guard, &result).await;
                result
            }
            $crate::dialect::Db::Postgres($conn) => $body,
        }
    };
    ($db:expr, readers, |$conn:ident| $body:expr) => {
        match $db {
            $crate::dialect::Db::Sqlite { readers: $conn, .. } => $body,
            $crate::dialect::Db::Postgres($conn) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Executes a writing statement; the rows it affected.
macro_rules! execute {
    ($db:expr, $query:expr) => {
        $crate::dialect::with_pool!($db, writer, |conn| $query
            .execute(conn)
            .await
            .map(|done| done.rows_affected()))
    };
}
pub(crate) use execute;

macro_rules! fetch_optional {
    ($db:expr, $query:expr) => {
        $crate::dialect::with_pool!($db, readers, |pool| $query.fetch_optional(pool).await)
    };
}
pub(crate) use fetch_optional;

macro_rules! fetch_all {
    ($db:expr, $query:expr) => {
        $crate::dialect::with_pool!($db, readers, |pool| $query.fetch_all(pool).await)
    };
}
pub(crate) use fetch_all;

/// SQLite's writing connection. Not a pool of one: sqlx's pool pings a connection on its way back, a round
/// trip to the connection's thread that the next write would wait for.
pub(crate) struct SqliteWriter {
    /// To reconnect (boxed: it is large, and read once in a long while).
    options: Box<SqliteConnectOptions>,
    conn: tokio::sync::Mutex<SqliteConnection>,
}

impl SqliteWriter {
    /// Waits for the writes queued before this one (first come, first served).
    pub(crate) async fn lock(&self) -> tokio::sync::MutexGuard<'_, SqliteConnection> {
        self.conn.lock().await
    }

    /// Replaces the connection when a statement found it dead (its thread gone, or the file's I/O failing), as a
    /// pool would; the statement's own error still goes to its caller.
    pub(crate) async fn recover_if_broken<T>(&self, conn: &mut SqliteConnection, result: &Result<T, sqlx::Error>) {
        if let Err(sqlx::Error::WorkerCrashed | sqlx::Error::Io(_)) = result {
            match self.options.connect().await {
                Ok(fresh) => drop(std::mem::replace(conn, fresh)),
                Err(error) => tracing::warn!(%error, "metadata writer could not reconnect"),
            }
        }
    }
}

impl Db {
    /// Opens (creating) a SQLite file. WAL lets readers run beside the writer; with `synchronous=NORMAL` WAL
    /// cannot corrupt, it may lose the last commits on power loss, and it spares an fsync per run-state write
    /// on the query path.
    pub(crate) async fn open_sqlite(path: &Path) -> Result<Self, RepoError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| RepoError::Unavailable(format!("cannot create {}: {e}", parent.display())))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let writer = SqliteWriter {
            conn: tokio::sync::Mutex::new(options.connect().await.map_err(map_err)?),
            options: Box::new(options.clone()),
        };
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            // sqlx pings a connection before handing it out, by default: a round trip to its thread before
            // every read. A file does not hang up; a connection that broke is dropped when it comes back.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(map_err)?;
        Ok(Self::Sqlite { writer, readers })
    }

    /// The URL carries a password: it is never logged or put in an error.
    pub(crate) async fn connect_postgres(url: &str) -> Result<Self, RepoError> {
        let pool = PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(5))
            // sqlx pings a connection before handing it out, by default: a second network round trip for every
            // statement. Ping only those that sat idle long enough for a server or proxy to have dropped them.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= Duration::from_secs(30) {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect(url)
            .await
            .map_err(|e| RepoError::Unavailable(redacted_connect_error(&e)))?;
        Ok(Self::Postgres(pool))
    }

    /// A cheap round trip.
    pub(crate) async fn ping(&self) -> Result<(), RepoError> {
        fetch_optional!(self, sqlx::query_scalar::<_, i32>("SELECT 1")).map_err(map_err)?;
        Ok(())
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite { .. } => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }
}

/// sqlx's connect errors do not echo the URL, but keep only the first line to be safe.
fn redacted_connect_error(e: &sqlx::Error) -> String {
    format!(
        "cannot connect to PostgreSQL: {}",
        e.to_string().lines().next().unwrap_or_default()
    )
}

impl Dialect {
    /// The column types the migrations name by a `{token}`, where the dialects spell them differently.
    pub(crate) fn ddl_types(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Dialect::Sqlite => &[
                // Fixed-width UTC text: see `Ts`.
                ("{timestamp}", "TEXT"),
                ("{int64}", "INTEGER"),
                ("{bool}", "INTEGER"),
                ("{true}", "1"),
                ("{false}", "0"),
            ],
            Dialect::Postgres => &[
                ("{timestamp}", "TIMESTAMPTZ"),
                ("{int64}", "BIGINT"),
                ("{bool}", "BOOLEAN"),
                ("{true}", "TRUE"),
                ("{false}", "FALSE"),
            ],
        }
    }
}

pub(crate) fn map_err(e: sqlx::Error) -> RepoError {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
            RepoError::Unavailable(e.to_string())
        }
        other => RepoError::Internal(other.to_string()),
    }
}

/// Maps a unique violation (SQLite's constraint code, PostgreSQL's SQLSTATE 23505: sqlx reads both) to
/// `Conflict`, anything else as `map_err` does.
pub(crate) fn conflict_or_err<'a>(what: &'static str, id: &'a str) -> impl FnOnce(sqlx::Error) -> RepoError + 'a {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => RepoError::Conflict {
            what,
            id: id.to_owned(),
        },
        _ => map_err(e),
    }
}

/// A timestamp as each dialect stores it: `TIMESTAMPTZ` in PostgreSQL; in SQLite fixed-width UTC text with
/// microseconds (`2024-01-02T03:04:05.123456Z`), so text order is time order and both keep the same precision.
/// Reading SQLite accepts any RFC 3339 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ts(pub DateTime<Utc>);

impl Type<Sqlite> for Ts {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for Ts {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(self.0.to_rfc3339_opts(SecondsFormat::Micros, true), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Ts {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Sqlite>>::decode(value)?;
        Ok(Ts(DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc)))
    }
}

impl Type<Postgres> for Ts {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for Ts {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Postgres>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Ts {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        <DateTime<Utc> as Decode<Postgres>>::decode(value).map(Ts)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[tokio::test]
    async fn sqlite_timestamps_are_fixed_width_text_in_time_order() {
        let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
        let times = [
            Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            Utc.timestamp_opt(1_700_000_000, 5_000).unwrap(),
            Utc.timestamp_opt(1_700_000_000, 120_000_000).unwrap(),
            Utc.timestamp_opt(1_700_000_001, 0).unwrap(),
        ];
        let mut texts = Vec::new();
        for t in times {
            let (text, back): (String, Ts) = sqlx::query_as("SELECT $1, $1")
                .bind(Ts(t))
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(back, Ts(t));
            assert_eq!(text.len(), "2023-11-14T22:13:20.000000Z".len(), "{text}");
            texts.push(text);
        }
        assert!(texts.windows(2).all(|w| w[0] < w[1]), "{texts:?}");
        // What the first release wrote for projects and settings still reads.
        let (old,): (Ts,) = sqlx::query_as("SELECT '2023-11-14T22:13:20.123456789+00:00'")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(old, Ts(Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap()));
    }

    async fn marked(conn: &mut SqliteConnection) -> bool {
        sqlx::query("SELECT count(*) FROM temp.mark")
            .execute(conn)
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_broken_sqlite_writer_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("metadata.db")).await.unwrap();
        let Db::Sqlite { writer, .. } = &db else {
            panic!("opened SQLite")
        };
        let mut conn = writer.lock().await;
        // A temporary table lives and dies with its connection.
        sqlx::query("CREATE TEMP TABLE mark (x)")
            .execute(&mut *conn)
            .await
            .unwrap();
        writer.recover_if_broken(&mut conn, &Ok::<(), _>(())).await;
        writer
            .recover_if_broken(&mut conn, &Err::<(), _>(sqlx::Error::RowNotFound))
            .await;
        assert!(marked(&mut conn).await, "a statement's own error keeps the connection");
        writer
            .recover_if_broken(&mut conn, &Err::<(), _>(sqlx::Error::WorkerCrashed))
            .await;
        assert!(!marked(&mut conn).await, "a dead connection is replaced");
        drop(conn);
        db.ping().await.unwrap();
    }
}
