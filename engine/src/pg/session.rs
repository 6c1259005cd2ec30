//! Dump sessions: deterministic settings, one exported snapshot shared by every worker,
//! and the lock discipline that makes catalog deparsing safe (pg-anchors §1.1, §6.1–6.3).
//!
//! The `pg_get_*def` functions read the current catalogs, not the snapshot, so the leader
//! takes ACCESS SHARE on every dumped table before deparsing: DDL then waits for the dump.
//! Workers re-lock their table with NOWAIT: if DDL has queued an ACCESS EXCLUSIVE behind the
//! leader's lock, a plain lock would wait forever behind it; NOWAIT fails fast instead.

use std::time::Duration;

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::conn::{Target, connect};
use crate::error::{Error, ErrorKind, Result};

/// Settings every dump connection uses: an empty search_path (so deparsed SQL is fully
/// qualified), ISO dates, exact floats, stable scan order, no timeouts, no row security.
const SESSION_SETTINGS: &str = "\
SELECT pg_catalog.set_config('search_path', '', false);
SET DATESTYLE = ISO;
SET INTERVALSTYLE = POSTGRES;
SET extra_float_digits TO 3;
SET synchronize_seqscans TO off;
SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET row_security = off;";

/// The leader's connection, holding the snapshot that workers import.
pub struct Leader {
    pub client: Client,
    pub snapshot: String,
    pub server_version_num: i32,
    pub server_version: String,
}

/// `SET ROLE role` (`--role`), through set_config, which takes the name as a value: no
/// quoting to get wrong.
pub async fn set_role(client: &Client, role: &str) -> Result<()> {
    client
        .execute("SELECT pg_catalog.set_config('role', $1, false)", &[&role])
        .await
        .map_err(|e| sql_error(e, &format!("--role: SET ROLE {role:?}")))?;
    Ok(())
}

/// Opens the leader: settings (and `role`), a REPEATABLE READ READ ONLY transaction, an
/// exported snapshot.
pub async fn open_leader(target: &Target, role: Option<&str>) -> Result<Leader> {
    let client = connect(target).await?;
    client
        .batch_execute(SESSION_SETTINGS)
        .await
        .map_err(|e| sql_error(e, "setting up the dump session"))?;
    if let Some(role) = role {
        set_role(&client, role).await?;
    }
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .map_err(|e| sql_error(e, "starting the snapshot transaction"))?;
    let row = client
        .query_one(
            "SELECT pg_catalog.pg_export_snapshot(), current_setting('server_version_num')::int, current_setting('server_version')",
            &[],
        )
        .await
        .map_err(|e| sql_error(e, "exporting the snapshot"))?;
    Ok(Leader {
        client,
        snapshot: row.get(0),
        server_version_num: row.get(1),
        server_version: row.get(2),
    })
}

/// Opens a worker connection (as `role`, if given) inside the leader's snapshot.
pub async fn open_worker(target: &Target, snapshot: &str, role: Option<&str>) -> Result<Client> {
    let client = connect(target).await?;
    client
        .batch_execute(SESSION_SETTINGS)
        .await
        .map_err(|e| sql_error(e, "setting up a worker session"))?;
    if let Some(role) = role {
        set_role(&client, role).await?;
    }
    // the snapshot id comes from the server; it is quoted as a literal regardless
    let sql = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
        snapshot.replace('\'', "''")
    );
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| sql_error(e, "importing the leader's snapshot"))?;
    Ok(client)
}

/// Takes ACCESS SHARE on `tables` (quoted, qualified names), batched so that thousands of
/// tables cost a few round trips. With `timeout`, waiting for a lock longer fails the dump
/// (pg_dump's `--lock-wait-timeout`).
pub async fn lock_tables(
    client: &Client,
    tables: &[String],
    timeout: Option<Duration>,
) -> Result<()> {
    if tables.is_empty() {
        return Ok(());
    }
    if let Some(t) = timeout {
        client
            .batch_execute(&format!("SET statement_timeout = {}", t.as_millis().max(1)))
            .await
            .map_err(|e| sql_error(e, "setting the lock wait timeout"))?;
    }
    let mut batch = String::new();
    for (i, t) in tables.iter().enumerate() {
        if !batch.is_empty() {
            batch.push_str(", ");
        }
        batch.push_str(t);
        if batch.len() > 100_000 || i + 1 == tables.len() {
            let sql = format!("LOCK TABLE {batch} IN ACCESS SHARE MODE");
            client.batch_execute(&sql).await.map_err(|e| {
                if e.code() == Some(&SqlState::QUERY_CANCELED) {
                    Error::new(ErrorKind::Conflict, "could not lock the tables to dump within --lock-wait-timeout: another session holds a conflicting lock")
                } else {
                    sql_error(e, "locking the tables to dump")
                }
            })?;
            batch.clear();
        }
    }
    if timeout.is_some() {
        client
            .batch_execute("SET statement_timeout = 0")
            .await
            .map_err(|e| sql_error(e, "resetting statement_timeout"))?;
    }
    Ok(())
}

/// A worker's NOWAIT re-lock of the table it is about to copy.
pub async fn relock_nowait(client: &Client, table: &str) -> Result<()> {
    let sql = format!("LOCK TABLE {table} IN ACCESS SHARE MODE NOWAIT");
    client.batch_execute(&sql).await.map_err(|e| {
        if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
            Error::new(
                ErrorKind::Conflict,
                format!("could not lock {table}: another session requested an exclusive lock on it after the dump started (DDL during the dump?); the dump is abandoned"),
            )
        } else {
            sql_error(e, &format!("locking {table}"))
        }
    })
}

/// Maps a server error to an engine error, keeping the server's message and classifying
/// what the CLI needs to know (permission, missing object, lost connection…).
pub fn sql_error(e: tokio_postgres::Error, doing: &str) -> Error {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let kind = if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            ErrorKind::Permission
        } else if *code == SqlState::UNDEFINED_TABLE || *code == SqlState::UNDEFINED_OBJECT {
            ErrorKind::NotFound
        } else if *code == SqlState::LOCK_NOT_AVAILABLE
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
        {
            ErrorKind::Conflict
        } else if code.code().starts_with("57") || code.code().starts_with("08") {
            // the connection was made; losing it mid-way is the work breaking off
            ErrorKind::Protocol
        } else {
            ErrorKind::Server
        };
        let mut msg = format!("{doing}: {}", db.message());
        if let Some(d) = db.detail() {
            msg.push_str(&format!(" ({d})"));
        }
        return Error::new(kind, msg);
    }
    if e.is_closed() || e.to_string().contains("connection closed") {
        return Error::new(
            ErrorKind::Protocol,
            format!("{doing}: the server closed the connection (was it restarted or killed?)"),
        );
    }
    Error::new(ErrorKind::Server, format!("{doing}: {e}"))
}
