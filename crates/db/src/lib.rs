//! Database access shared by every ferrostack service.
//!
//! One [`Db`] handle speaks to either the embedded SQLite file (the all-in-one default) or a
//! PostgreSQL server (multi-node), chosen by URL. Services write portable SQL with `$N`
//! placeholders and a small set of column types (TEXT, BIGINT, BOOLEAN, DOUBLE PRECISION) that
//! both engines accept, so one query text serves both. Each service owns a numbered list of
//! [`Migration`]s; [`Db::migrate`] applies the missing ones in order and records them per
//! component, so the numbers are the same on SQLite and PostgreSQL.

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

pub use sqlx;
pub use sqlx::any::AnyRow as DbRow;
pub use sqlx::Any as DbKind;

/// Typed column access that hides the engines' differences (SQLite keeps BOOLEAN as an
/// integer, which the `Any` driver will not decode as `bool`).
pub trait RowExt {
    fn flag(&self, column: &str) -> bool;
    fn opt_flag(&self, column: &str) -> Option<bool>;
}

impl RowExt for AnyRow {
    fn flag(&self, column: &str) -> bool {
        self.opt_flag(column).unwrap_or(false)
    }

    fn opt_flag(&self, column: &str) -> Option<bool> {
        if let Ok(v) = self.try_get::<Option<bool>, _>(column) {
            return v;
        }
        self.try_get::<Option<i64>, _>(column)
            .ok()
            .flatten()
            .map(|v| v != 0)
    }
}

/// Which engine a [`Db`] talks to; the SQL is the same, a few pragmas and error codes differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A pooled connection to the service database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

/// One schema change. `sql` runs on both engines unless `postgres` overrides it there.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
    pub postgres: Option<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("migration {component} {version} ({name}) failed: {source}")]
    Migration {
        component: String,
        version: i64,
        name: String,
        source: sqlx::Error,
    },
}

pub type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

impl Db {
    /// Connects to `url` (`sqlite://file.db`, `sqlite::memory:`, `postgres://...`).
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(DbError::UnsupportedUrl(url.to_string()));
        };
        let mut url = url.to_string();
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        if backend == Backend::Sqlite {
            if !url.contains("mode=") && !url.contains(":memory:") {
                url.push_str(if url.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
            // An in-memory database lives as long as its one connection.
            let max = if url.contains(":memory:") { 1 } else { 8 };
            options = options
                .max_connections(max)
                .min_connections(if max == 1 { 1 } else { 0 })
                .idle_timeout(None)
                .max_lifetime(None)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // WAL lets readers proceed during a write; the busy timeout makes
                        // concurrent writers queue instead of failing at once.
                        conn.execute(
                            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                             PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;",
                        )
                        .await?;
                        Ok(())
                    })
                });
        } else {
            options = options.max_connections(16);
        }
        let pool = options.connect(&url).await?;
        Ok(Db { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn begin(&self) -> Result<Tx<'static>, DbError> {
        Ok(self.pool.begin().await?)
    }

    /// A transaction that will write after reading: on SQLite it takes the write lock at
    /// `BEGIN IMMEDIATE`, where the busy timeout applies. A plain (deferred) transaction that
    /// reads first and then writes fails at once with "database is locked" when another
    /// connection wrote in between (WAL cannot upgrade a stale read snapshot), whatever the
    /// timeout. On PostgreSQL it is a plain transaction.
    pub async fn begin_write(&self) -> Result<Tx<'static>, DbError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Applies the migrations of `component` that this database has not seen yet, each in its
    /// own transaction together with its bookkeeping row, so a crash never half-applies one.
    pub async fn migrate(
        &self,
        component: &str,
        migrations: &[Migration],
    ) -> Result<usize, DbError> {
        self.pool
            .execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (\
                 component TEXT NOT NULL, version BIGINT NOT NULL, name TEXT NOT NULL, \
                 applied_at BIGINT NOT NULL, PRIMARY KEY (component, version))",
            )
            .await?;
        let applied: Vec<i64> =
            sqlx::query("SELECT version FROM schema_migrations WHERE component = $1")
                .bind(component)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r: &AnyRow| r.get::<i64, _>(0))
                .collect();
        let mut count = 0;
        for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
            let sql = match (self.backend, m.postgres) {
                (Backend::Postgres, Some(pg)) => pg.to_string(),
                (Backend::Postgres, None) => m.sql.to_string(),
                // SQLite's BOOLEAN affinity is an integer, but the `Any` driver refuses to
                // read a column declared BOOLEAN; declaring it INTEGER stores the same bytes.
                (Backend::Sqlite, _) => m.sql.replace(" BOOLEAN", " INTEGER"),
            };
            let wrap = |source| DbError::Migration {
                component: component.to_string(),
                version: m.version,
                name: m.name.to_string(),
                source,
            };
            let mut tx = self.pool.begin().await?;
            for statement in split_statements(&sql) {
                tx.execute(statement).await.map_err(wrap)?;
            }
            sqlx::query(
                "INSERT INTO schema_migrations (component, version, name, applied_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(component)
            .bind(m.version)
            .bind(m.name)
            .bind(now_unix())
            .execute(&mut *tx)
            .await
            .map_err(wrap)?;
            tx.commit().await?;
            tracing::info!(
                component,
                version = m.version,
                name = m.name,
                "applied migration"
            );
            count += 1;
        }
        Ok(count)
    }
}

/// True when `e` is a unique-constraint violation (a duplicate name or id).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation()
                || d.code()
                    .is_some_and(|c| c == "23505" || c == "2067" || c == "1555")
        }
        _ => false,
    }
}

/// Seconds since the Unix epoch, the timestamp unit of bookkeeping columns.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Splits a migration into statements on `;` at line ends (our migrations keep one statement
/// per `;`-terminated block and no semicolons inside literals).
fn split_statements(sql: &str) -> impl Iterator<Item = &str> {
    sql.split(";\n")
        .map(str::trim)
        .map(|s| s.trim_end_matches(';').trim())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIGRATIONS: &[Migration] = &[
        Migration {
            version: 1,
            name: "create widgets",
            sql: "CREATE TABLE widgets (id TEXT PRIMARY KEY, n BIGINT NOT NULL, ok BOOLEAN NOT NULL, note TEXT);\n\
                  CREATE INDEX widgets_n ON widgets (n);",
            postgres: None,
        },
        Migration { version: 2, name: "add size", sql: "ALTER TABLE widgets ADD COLUMN size DOUBLE PRECISION", postgres: None },
    ];

    /// Both engines when the test script provides PostgreSQL, SQLite always.
    pub(crate) async fn test_dbs() -> Vec<Db> {
        let mut dbs = vec![Db::connect("sqlite::memory:").await.unwrap()];
        if let Ok(url) = std::env::var("FERROSTACK_TEST_PG_URL") {
            let db = Db::connect(&url).await.unwrap();
            let schema = format!("t{}", std::process::id());
            let _ = &schema;
            dbs.push(db);
        }
        dbs
    }

    #[tokio::test]
    async fn migrations_apply_once_and_types_round_trip() {
        for db in test_dbs().await {
            let _ = db.pool().execute("DROP TABLE IF EXISTS widgets").await;
            let _ = db
                .pool()
                .execute("DELETE FROM schema_migrations WHERE component = 'dbtest'")
                .await;
            assert_eq!(db.migrate("dbtest", MIGRATIONS).await.unwrap(), 2);
            assert_eq!(db.migrate("dbtest", MIGRATIONS).await.unwrap(), 0);
            sqlx::query("INSERT INTO widgets (id, n, ok, note, size) VALUES ($1, $2, $3, $4, $5)")
                .bind("a")
                .bind(7i64)
                .bind(true)
                .bind(None::<String>)
                .bind(1.5f64)
                .execute(db.pool())
                .await
                .unwrap();
            let row =
                sqlx::query("SELECT id, n, ok, note, size FROM widgets WHERE id = $1 AND n = $2")
                    .bind("a")
                    .bind(7i64)
                    .fetch_one(db.pool())
                    .await
                    .unwrap();
            assert_eq!(row.get::<String, _>(0), "a");
            assert_eq!(row.get::<i64, _>(1), 7);
            assert!(row.flag("ok"));
            assert_eq!(row.get::<Option<String>, _>(3), None);
            assert_eq!(row.get::<f64, _>(4), 1.5);
            let dup = sqlx::query("INSERT INTO widgets (id, n, ok) VALUES ($1, $2, $3)")
                .bind("a")
                .bind(1i64)
                .bind(false)
                .execute(db.pool())
                .await
                .unwrap_err();
            assert!(is_unique_violation(&dup), "{dup:?}");
            db.pool().execute("DROP TABLE widgets").await.unwrap();
            db.pool()
                .execute("DELETE FROM schema_migrations WHERE component = 'dbtest'")
                .await
                .unwrap();
        }
    }
}
