//! Persistence: one [`Store`] over sqlx's Any driver, backed by SQLite (the embedded
//! default) or PostgreSQL (`DATABASE_URL=postgres://...`).
//!
//! The SQL is written once in the common dialect of both (numbered `$n` parameters,
//! BIGINT Unix-millisecond timestamps, SMALLINT 0/1 flags); only the migrations
//! differ per backend. Each submodule owns one group of tables.

pub mod audit;
pub mod audit_read;
pub mod communities;
pub mod credentials;
pub mod group_edits;
pub mod group_reminders;
pub mod group_seats;
pub mod groups;
pub mod holds;
pub mod invitations;
pub mod notes;
pub mod notifications;
pub mod organizations;
pub mod participants;
pub mod people;
pub mod schedule;
pub mod schedule_changes;
pub mod sessions;
pub mod tokens;
pub mod users;
pub mod webhooks;
pub mod working_hours;

use std::str::FromStr;
use std::sync::{Arc, RwLock};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::AnyPool;

/// Which database engine the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// Handle to the database; cheap to clone. Carries the data keys that seal clinical
/// notes at rest ([`notes`]), shared by every clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    data_keys: DataKeySlot,
}

/// The installed keyring, replaced whole by a rotation.
type DataKeySlot = Arc<RwLock<Option<Arc<crate::data_keys::Keyring>>>>;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://...`).
    pub async fn connect(url: &str) -> Result<Store, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(sqlx::Error::Configuration(
                "DATABASE_URL must start with sqlite: or postgres:".into(),
            ));
        };
        let options = AnyConnectOptions::from_str(url)?;
        let max = match backend {
            Backend::Sqlite => 4,
            Backend::Postgres => 16,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Enforce references and wait on a busy writer instead of failing.
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Store {
            pool,
            backend,
            data_keys: DataKeySlot::default(),
        })
    }

    /// Applies pending migrations of this backend.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await,
        }
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// The connection pool, for the submodules.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a transaction that writes after reading: on SQLite with `BEGIN
    /// IMMEDIATE` (concurrent writers queue on the one write lock instead of failing
    /// on a stale snapshot), on PostgreSQL a plain one (row locks do the queueing).
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// Closes all connections (at shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Encodes a flag for the SMALLINT 0/1 columns.
pub fn flag(value: bool) -> i16 {
    i16::from(value)
}

/// A fresh random identifier (UUID v4) for new rows.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
