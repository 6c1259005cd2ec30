//! `coffer restore pg -d`: an archive into a live database, in parallel where the server
//! allows (pg-anchors §1.2 and §6.7–6.9).
//!
//! 1. pre-data, in TOC order, on one connection (many small statements: one connection
//!    avoids setup costs, and pg_restore does the same);
//! 2. data: every table part, large object and sequence value is a unit of work; `jobs`
//!    connections take units largest first, so a split table loads over several
//!    connections at once; each frame is verified as it is read from the memory map;
//! 3. post-data: an entry starts when the entries it depends on are done and no running
//!    entry holds a conflicting lock on its table (index builds on one table may run
//!    together; constraints, triggers and the rest take the table for themselves). Index
//!    builds and keys of a table start as soon as that table has loaded, on the same
//!    connections, while other tables still load ([`super::restore_sched`]);
//! 4. privileges, then event triggers and materialized view refreshes, in TOC order.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use coffer_format::MappedArchive;
use futures::SinkExt;
use tokio_postgres::Client;

use super::conn::{Target, connect};
use super::content::Content;
use super::restore_sched::{self, Data};
use super::session::{set_role, sql_error};
use super::sql::PgArchive;
use super::toc::{Section, TocEntry};
use crate::error::{Error, ErrorKind, Result};

/// How to restore.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Connections used for data and post-data.
    pub jobs: usize,
    /// What is left out (`--no-owner`, `--no-privileges`, `--no-comments`…).
    pub content: Content,
    /// `--analyze`: ANALYZE every restored table at the end, over `jobs` connections
    /// (for a target older than 18, where the archive's statistics cannot be replayed).
    pub analyze: bool,
    /// `--clean`: drop the archive's objects first, newest first.
    pub clean: bool,
    /// `--if-exists`: with `clean`, drop only what exists.
    pub if_exists: bool,
    /// `--single-transaction`: everything on one connection in one transaction, so a
    /// failure leaves the database as it was (needs `jobs` = 1).
    pub single_transaction: bool,
    /// Carry on past a failed entry or table, and report every failure at the end,
    /// instead of stopping at the first (`--no-exit-on-error`).
    pub keep_going: bool,
    /// What to restore (`-t`, `-n`, `-T`, `-N`, `-L`); everything by default.
    pub selection: Selection,
    /// Which parts to restore (`--section`, `--schema-only`, `--data-only`); all when
    /// empty. Privileges and refreshes go with post-data.
    pub sections: Vec<Section>,
    /// `--role`: every session does `SET ROLE` to it after connecting, so the restore
    /// runs with that role's rights and what it creates belongs to it (with `--no-owner`).
    pub role: Option<String>,
    /// `--disable-triggers`: sessions run with `session_replication_role = replica`, so
    /// neither user triggers nor foreign-key checks fire while rows load (a data-only
    /// restore into a schema with foreign keys loads tables in any order). Needs a
    /// superuser, as pg_restore's option does.
    pub disable_triggers: bool,
}

/// What `-t/-T/-n/-N` and `-L` ask for. Names are exact (as in pg_restore), not patterns.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub tables: Vec<String>,
    pub exclude_tables: Vec<String>,
    pub schemas: Vec<String>,
    pub exclude_schemas: Vec<String>,
    /// TOC ids from an edited `-l` listing.
    pub list: Option<HashSet<u32>>,
    /// `--target-schema`: put the selected tables in this schema instead (created if
    /// missing), leaving the originals alone.
    pub target_schema: Option<String>,
}

impl Selection {
    /// The entries to restore, in TOC order (renamed for `--target-schema`).
    pub fn apply(&self, entries: &[TocEntry]) -> Result<Vec<TocEntry>> {
        let selected: Vec<TocEntry> = match self.resolve(entries) {
            Some(ids) => entries
                .iter()
                .filter(|e| ids.contains(&e.id))
                .cloned()
                .collect(),
            None => entries.to_vec(),
        };
        match &self.target_schema {
            Some(target) => into_schema(selected, target),
            None => Ok(selected),
        }
    }

    fn is_empty(&self) -> bool {
        self.tables.is_empty()
            && self.exclude_tables.is_empty()
            && self.schemas.is_empty()
            && self.exclude_schemas.is_empty()
            && self.list.is_none()
    }

    /// The TOC ids to restore, or `None` for all. A table brings along everything that
    /// depends on it (its data, indexes, constraints, triggers, comments, privileges) —
    /// where pg_restore's `-t` leaves its indexes behind.
    pub fn resolve(&self, entries: &[TocEntry]) -> Option<HashSet<u32>> {
        if self.is_empty() {
            return None;
        }
        const RELATIONS: &[&str] = &[
            "TABLE",
            "VIEW",
            "MATERIALIZED VIEW",
            "SEQUENCE",
            "FOREIGN TABLE",
        ];
        let in_schema = |e: &TocEntry| {
            e.schema.as_ref().is_some_and(|s| self.schemas.contains(s))
                || (e.kind == "SCHEMA" && self.schemas.contains(&e.name))
        };
        let mut ids: HashSet<u32> = if !self.tables.is_empty() {
            let roots: HashSet<u32> = entries
                .iter()
                .filter(|e| RELATIONS.contains(&e.kind.as_str()) && self.tables.contains(&e.name))
                .filter(|e| self.schemas.is_empty() || in_schema(e))
                .map(|e| e.id)
                .collect();
            with_dependents(entries, roots)
        } else if !self.schemas.is_empty() {
            entries
                .iter()
                .filter(|e| in_schema(e))
                .map(|e| e.id)
                .collect()
        } else {
            entries.iter().map(|e| e.id).collect()
        };
        if let Some(list) = &self.list {
            ids.retain(|id| list.contains(id));
        }
        // an entry that needs a table left out (a foreign key to it) cannot be restored
        let relations: HashSet<u32> = entries
            .iter()
            .filter(|e| RELATIONS.contains(&e.kind.as_str()))
            .map(|e| e.id)
            .collect();
        let deps: HashMap<u32, &Vec<u32>> = entries.iter().map(|e| (e.id, &e.deps)).collect();
        let kept = ids.clone();
        ids.retain(|id| {
            deps[id]
                .iter()
                .all(|d| !relations.contains(d) || kept.contains(d))
        });
        let excluded_tables: HashSet<u32> = with_dependents(
            entries,
            entries
                .iter()
                .filter(|e| {
                    RELATIONS.contains(&e.kind.as_str()) && self.exclude_tables.contains(&e.name)
                })
                .map(|e| e.id)
                .collect(),
        );
        ids.retain(|id| !excluded_tables.contains(id));
        let by_id: HashMap<u32, &TocEntry> = entries.iter().map(|e| (e.id, e)).collect();
        ids.retain(|id| {
            !by_id[id]
                .schema
                .as_ref()
                .is_some_and(|s| self.exclude_schemas.contains(s))
        });
        Some(ids)
    }
}

/// `--target-schema`: rewrites the selected tables' qualified names (and their identity
/// sequences') to `target`, everywhere they appear in the selected entries. Only these
/// names move: types, functions and the tables a key references stay where they are, since
/// the point is a side-by-side copy in the live database. A partition or inheritance child
/// cannot move without its parent and is refused; `OWNED BY` is left out so the copy never
/// takes the original's sequence.
fn into_schema(entries: Vec<TocEntry>, target: &str) -> Result<Vec<TocEntry>> {
    let quoted = format!("\"{}\"", target.replace('"', "\"\""));
    let mut renames: Vec<(String, String)> = Vec::new();
    for e in &entries {
        if let (Some(d), "TABLE DATA") = (&e.data, e.kind.as_str()) {
            let table = d
                .qualified
                .split_once('.')
                .map_or(d.qualified.as_str(), |(_, t)| t);
            renames.push((d.qualified.clone(), format!("{quoted}.{table}")));
        }
        if e.kind == "TABLE ATTACH" || (e.kind == "TABLE" && e.sql.contains("\nINHERITS (")) {
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "--target-schema cannot move {}: it is a partition or inherits from a table that stays where it is",
                    e.name
                ),
            ));
        }
        if let Some(seq) = e
            .sql
            .split_once("SEQUENCE NAME ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
        {
            let name = seq.split_once('.').map_or(seq, |(_, n)| n);
            renames.push((seq.to_string(), format!("{quoted}.{name}")));
        }
    }
    if renames.is_empty() {
        return Err(Error::new(
            ErrorKind::Usage,
            "--target-schema needs -t: it moves tables",
        ));
    }
    let rename = |sql: &str| {
        renames.iter().fold(sql.to_string(), |acc, (from, to)| {
            replace_name(&acc, from, to)
        })
    };
    let mut out = vec![TocEntry {
        id: 0,
        section: Section::PreData,
        kind: "SCHEMA".into(),
        schema: None,
        name: target.to_string(),
        owner: None,
        sql: format!("CREATE SCHEMA IF NOT EXISTS {quoted};"),
        owner_sql: None,
        deps: Vec::new(),
        data: None,
        large_object: None,
        drop_sql: None,
        drop_if_exists_sql: None,
        tablespace: None,
        compression_sql: None,
    }];
    for mut e in entries
        .into_iter()
        .filter(|e| e.kind != "SEQUENCE OWNED BY")
    {
        e.sql = rename(&e.sql);
        e.owner_sql = e.owner_sql.as_deref().map(rename);
        e.drop_sql = e.drop_sql.as_deref().map(rename);
        e.drop_if_exists_sql = e.drop_if_exists_sql.as_deref().map(rename);
        if let Some(d) = &mut e.data {
            d.qualified = rename(&d.qualified);
        }
        e.schema = Some(target.to_string());
        out.push(e);
    }
    Ok(out)
}

/// Replaces `from` with `to` where it stands as a whole name: not inside a longer
/// identifier (`s1.t` must not match `s1.tree`).
fn replace_name(sql: &str, from: &str, to: &str) -> String {
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$' || c == '"';
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(i) = rest.find(from) {
        let before_ok = !rest[..i].ends_with(ident) && !rest[..i].ends_with('.');
        let after = &rest[i + from.len()..];
        let after_ok = !after.starts_with(ident);
        out.push_str(&rest[..i]);
        out.push_str(if before_ok && after_ok { to } else { from });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `roots` and every entry that depends on one of them, directly or not.
fn with_dependents(entries: &[TocEntry], roots: HashSet<u32>) -> HashSet<u32> {
    let mut ids = roots;
    loop {
        let before = ids.len();
        for e in entries {
            if e.deps.iter().any(|d| ids.contains(d)) {
                ids.insert(e.id);
            }
        }
        if ids.len() == before {
            return ids;
        }
    }
}

/// Parses an edited `-l` listing: the id before the first `;` of each line; lines starting
/// with `;` are comments (commented out).
pub fn parse_list(text: &str) -> Result<HashSet<u32>> {
    let mut ids = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with(';') {
            continue;
        }
        let id = l.split(';').next().unwrap_or("").trim();
        ids.insert(id.parse().map_err(|_| {
            Error::new(
                ErrorKind::Usage,
                format!("list line {}: expected an entry id, found {line:?}", n + 1),
            )
        })?);
    }
    Ok(ids)
}

impl RestoreOptions {
    pub(super) fn wants(&self, s: Section) -> bool {
        self.sections.is_empty() || self.sections.contains(&s)
    }
}

/// Progress, reported as it happens.
#[derive(Clone, Debug)]
pub enum Progress {
    /// A phase starts, with the raw bytes of data it will load (data phase) or the number
    /// of entries it will run (the others); 0 when not known ahead (from a pipe).
    Phase {
        name: &'static str,
        bytes: u64,
        entries: u64,
    },
    /// Raw data bytes loaded since the last report.
    Loaded { bytes: u64 },
    /// One entry of a schema phase done.
    Entry,
}

/// What a restore did.
#[derive(Clone, Debug, Default)]
pub struct RestoreSummary {
    /// Duration of each phase.
    pub phases: Vec<(&'static str, Duration)>,
    pub entries: usize,
    pub tables: usize,
    pub raw_bytes: u64,
}

/// Settings for restore sessions: statements are fully qualified, function bodies refer
/// to objects that may come later, and row security must not filter the load.
const SESSION: &str = "\
SELECT pg_catalog.set_config('search_path', '', false);
SET client_min_messages = warning;
SET check_function_bodies = false;
SET standard_conforming_strings = on;
SET row_security = off;
SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;";

pub(super) async fn session(target: &Target, opts: &RestoreOptions) -> Result<Client> {
    let client = connect(target).await?;
    client
        .batch_execute(SESSION)
        .await
        .map_err(|e| sql_error(e, "setting up the restore session"))?;
    if let Some(role) = &opts.role {
        set_role(&client, role).await?;
    }
    if opts.disable_triggers {
        client
            .batch_execute("SET session_replication_role = replica")
            .await
            .map_err(|e| {
                sql_error(
                    e,
                    "--disable-triggers (it sets session_replication_role, which needs a superuser)",
                )
            })?;
    }
    Ok(client)
}

/// Restores `archive` into the database `target` names (which must exist).
pub async fn restore(
    archive: Arc<MappedArchive>,
    target: &Target,
    opts: &RestoreOptions,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<RestoreSummary> {
    let pg = Arc::new(PgArchive::read(&archive)?);
    let selected = opts.content.omit(opts.selection.apply(&pg.toc.entries)?);
    if opts.single_transaction {
        return single_transaction(&pg, &selected, &archive, target, opts, &progress).await;
    }
    let failures = Failures::default();
    let entries = &selected;
    let mut summary = RestoreSummary {
        entries: entries.len(),
        tables: pg.manifest.tables.len(),
        ..Default::default()
    };
    let leader = session(target, opts).await?;
    if opts.clean {
        let t = Instant::now();
        progress(Progress::Phase {
            name: "clean",
            bytes: 0,
            entries: 0,
        });
        clean(&leader, entries, opts).await?;
        summary.phases.push(("clean", t.elapsed()));
    }
    // tables created by this restore: their data may load with COPY FREEZE
    let mut created = HashSet::new();
    if opts.wants(Section::PreData) {
        let t = Instant::now();
        created = pre_data(&leader, entries, opts, &progress, &failures).await?;
        summary.phases.push(("pre-data", t.elapsed()));
    }
    let data = if opts.wants(Section::Data) {
        let mut units = data_units(&pg, entries, &archive, &created)?;
        if !opts.wants(Section::PostData) {
            // a data-only restore: the target's foreign keys are checked as rows arrive
            order_by_foreign_keys(&mut units, entries);
        }
        summary.raw_bytes = units.iter().map(|u| u.bytes).sum();
        Some(Data { archive, units })
    } else {
        None
    };
    let post = opts.wants(Section::PostData);
    let timings =
        restore_sched::run(data, entries, post, target, opts, &progress, &failures).await?;
    if let Some(t) = timings.data {
        summary.phases.push(("data", t));
    }
    if let Some(t) = timings.post_data {
        summary.phases.push(("post-data", t));
    }
    if post {
        let t = Instant::now();
        let acl: Vec<&TocEntry> = entries
            .iter()
            .filter(|e| matches!(e.section, Section::Acl | Section::PostAcl))
            .collect();
        progress(Progress::Phase {
            name: "privileges and refreshes",
            bytes: 0,
            entries: acl.len() as u64,
        });
        for e in acl {
            failures.tolerate(opts, run_entry(&leader, e, opts).await)?;
            progress(Progress::Entry);
        }
        summary
            .phases
            .push(("privileges and refreshes", t.elapsed()));
    }
    if opts.analyze {
        let t = Instant::now();
        failures.tolerate(opts, analyze(target, entries, opts, &progress).await)?;
        summary.phases.push(("analyze", t.elapsed()));
    }
    failures.into_result()?;
    Ok(summary)
}

/// `--analyze`: ANALYZE every table whose rows were restored, over `jobs` connections,
/// largest first.
pub(super) async fn analyze(
    target: &Target,
    entries: &[TocEntry],
    opts: &RestoreOptions,
    progress: &Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<()> {
    let mut tables: Vec<(u64, String)> = entries
        .iter()
        .filter_map(|e| e.data.as_ref().map(|d| (d.bytes, d.qualified.clone())))
        .collect();
    tables.sort_by(|a, b| b.cmp(a));
    progress(Progress::Phase {
        name: "analyze",
        bytes: 0,
        entries: tables.len() as u64,
    });
    let queue = Arc::new(Mutex::new(std::collections::VecDeque::from(tables)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..opts.jobs.max(1) {
        let client = session(target, opts).await?;
        let (queue, progress) = (queue.clone(), progress.clone());
        tasks.spawn(async move {
            loop {
                let next = queue.lock().expect("analyze queue").pop_front();
                let Some((_, table)) = next else {
                    return Ok::<(), Error>(());
                };
                client
                    .batch_execute(&format!("ANALYZE {table}"))
                    .await
                    .map_err(|e| sql_error(e, &format!("--analyze: ANALYZE {table}")))?;
                progress(Progress::Entry);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| Error::new(ErrorKind::Io, format!("an ANALYZE task failed: {e}")))??;
    }
    Ok(())
}

/// Pre-data in TOC order on one connection; returns the ids of the tables it created.
pub(super) async fn pre_data(
    leader: &Client,
    entries: &[TocEntry],
    opts: &RestoreOptions,
    progress: &Arc<dyn Fn(Progress) + Send + Sync>,
    failures: &Failures,
) -> Result<HashSet<u32>> {
    let pre: Vec<&TocEntry> = entries
        .iter()
        .filter(|e| e.section == Section::PreData)
        .collect();
    progress(Progress::Phase {
        name: "pre-data",
        bytes: 0,
        entries: pre.len() as u64,
    });
    let mut created = HashSet::new();
    for batch in batches(&pre) {
        if batch.len() > 1 {
            let sql: String = batch.iter().map(|e| entry_sql(e, opts)).collect();
            if leader.batch_execute(&sql).await.is_ok() {
                for e in batch {
                    if e.kind == "TABLE" {
                        created.insert(e.id);
                    }
                    progress(Progress::Entry);
                }
                continue;
            }
            // the batch ran as one implicit transaction, so a failed statement took the
            // whole batch back: run it again entry by entry, so that the error names its
            // entry and --no-exit-on-error keeps the others
        }
        for e in batch {
            let r = run_entry(leader, e, opts).await;
            if r.is_ok() && e.kind == "TABLE" {
                created.insert(e.id);
            }
            failures.tolerate(opts, r)?;
            progress(Progress::Entry);
        }
    }
    Ok(created)
}

/// Pre-data entries sent in one round trip, at most, and the most SQL text in one.
const BATCH_ENTRIES: usize = 100;
const BATCH_BYTES: usize = 256 << 10;

/// Pre-data in batches: thousands of small statements cost a round trip each when sent
/// one by one (pg_restore does), which over a network is most of the pre-data phase.
fn batches<'e>(pre: &[&'e TocEntry]) -> Vec<Vec<&'e TocEntry>> {
    let mut out: Vec<Vec<&TocEntry>> = Vec::new();
    let mut bytes = 0;
    for e in pre {
        let len = e.sql.len() + e.owner_sql.as_ref().map_or(0, String::len);
        match out.last_mut() {
            Some(b) if b.len() < BATCH_ENTRIES && bytes + len <= BATCH_BYTES => b.push(e),
            _ => {
                out.push(vec![e]);
                bytes = 0;
            }
        }
        bytes += len;
    }
    out
}

/// The SQL [`run_entry`] runs for `e`, as one string.
fn entry_sql(e: &TocEntry, opts: &RestoreOptions) -> String {
    let (sql, owner) = opts.content.statements(e);
    let mut out = String::new();
    for s in [sql.as_deref(), owner].into_iter().flatten() {
        out.push_str(s);
        out.push('\n');
    }
    out
}

/// `--create`: creates a database named `name` (by default the archive's database), from
/// template0 with the archive's encoding as pg_restore does, through the connection
/// `maintenance` names; returns the target for it.
pub async fn create_database(
    maintenance: &Target,
    archive: &MappedArchive,
    name: Option<&str>,
    role: Option<&str>,
) -> Result<Target> {
    let pg = PgArchive::read(archive)?;
    let name = name.map_or_else(|| pg.toc.source.database.clone(), str::to_string);
    let client = connect(maintenance).await?;
    if let Some(role) = role {
        // --role: the database is created by that role, as pg_restore --create does
        set_role(&client, role).await?;
    }
    let quoted: String = client
        .query_one("SELECT quote_ident($1::text)", &[&name])
        .await
        .map_err(|e| sql_error(e, "quoting the database name"))?
        .get(0);
    let encoding = pg.toc.source.database_encoding.replace('\'', "");
    let sql = format!("CREATE DATABASE {quoted} WITH TEMPLATE = template0 ENCODING = '{encoding}'");
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| sql_error(e, &format!("creating database {name}")))?;
    Ok(maintenance.with_dbname(&name))
}

/// `-l`: the TOC as pg_restore lists it, one entry a line (`;` starts a comment).
pub fn list(archive: &MappedArchive) -> Result<String> {
    let pg = PgArchive::read(archive)?;
    let src = &pg.toc.source;
    let mut out = format!(
        ";\n; Archive created by coffer\n;     dbname: {}\n;     TOC entries: {}\n;     server version: {}\n;\n",
        src.database,
        pg.toc.entries.len(),
        src.server_version
    );
    let clean = |s: &str| s.replace(['\n', '\r'], " ");
    for e in &pg.toc.entries {
        out.push_str(&format!(
            "{}; {} {} {} {}\n",
            e.id,
            e.kind,
            clean(e.schema.as_deref().unwrap_or("-")),
            clean(&e.name),
            clean(e.owner.as_deref().unwrap_or("-"))
        ));
    }
    Ok(out)
}

/// `--single-transaction`: every phase in order on one connection inside BEGIN … COMMIT.
/// Any error ends the connection, and the server rolls everything back.
async fn single_transaction(
    pg: &PgArchive,
    entries: &[TocEntry],
    archive: &MappedArchive,
    target: &Target,
    opts: &RestoreOptions,
    progress: &Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<RestoreSummary> {
    if opts.jobs > 1 || opts.keep_going {
        return Err(Error::new(
            ErrorKind::Usage,
            "--single-transaction works on one connection and stops at the first error: use it with -j 1 and without --no-exit-on-error",
        ));
    }
    let started = Instant::now();
    let client = session(target, opts).await?;
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| sql_error(e, "starting the transaction"))?;
    if opts.clean {
        clean(&client, entries, opts).await?;
    }
    for e in entries
        .iter()
        .filter(|e| e.section == Section::PreData && opts.wants(Section::PreData))
    {
        run_entry(&client, e, opts).await?;
    }
    let mut summary = RestoreSummary {
        entries: entries.len(),
        tables: pg.manifest.tables.len(),
        ..Default::default()
    };
    if opts.wants(Section::Data) {
        progress(Progress::Phase {
            name: "data",
            bytes: 0,
            entries: 0,
        });
        // no FREEZE: in one transaction the tables were created by it anyway, and the
        // load is one connection's
        for u in data_units(pg, entries, archive, &HashSet::new())? {
            summary.raw_bytes += u.bytes;
            load_unit(&client, archive, &u, progress)
                .await
                .map_err(|e| e.context(format!("loading {}", u.what)))?;
        }
    }
    if opts.wants(Section::PostData) {
        for e in entries.iter().filter(|e| {
            matches!(
                e.section,
                Section::PostData | Section::Acl | Section::PostAcl
            )
        }) {
            run_entry(&client, e, opts).await?;
        }
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| sql_error(e, "committing the restore"))?;
    summary
        .phases
        .push(("single transaction", started.elapsed()));
    Ok(summary)
}

/// Failures kept for the end when the restore carries on past them.
#[derive(Clone, Default)]
pub(super) struct Failures(Arc<Mutex<Vec<String>>>);

impl Failures {
    /// Passes `r` through, or, when carrying on, records its error and carries on.
    pub(super) fn tolerate(&self, opts: &RestoreOptions, r: Result<()>) -> Result<()> {
        match r {
            Err(e) if opts.keep_going => {
                self.0.lock().expect("failures lock").push(e.to_string());
                Ok(())
            }
            r => r,
        }
    }

    /// `Err` listing every failure, if there was one.
    pub(super) fn into_result(self) -> Result<()> {
        let list = std::mem::take(&mut *self.0.lock().expect("failures lock"));
        if list.is_empty() {
            return Ok(());
        }
        let mut msg = format!(
            "{} part{} of the archive could not be restored:",
            list.len(),
            if list.len() == 1 { "" } else { "s" }
        );
        for f in &list {
            msg.push_str(&format!("\n  - {f}"));
        }
        Err(Error::new(ErrorKind::Server, msg))
    }
}

/// `--clean`: drops the archive's objects, newest first (`--if-exists`: only those that
/// exist).
pub(super) async fn clean(
    leader: &Client,
    entries: &[TocEntry],
    opts: &RestoreOptions,
) -> Result<()> {
    for e in entries.iter().rev() {
        let drop = if opts.if_exists {
            &e.drop_if_exists_sql
        } else {
            &e.drop_sql
        };
        if let Some(sql) = drop {
            leader
                .batch_execute(sql)
                .await
                .map_err(|err| sql_error(err, &format!("dropping {} {}", e.kind, e.name)))?;
        }
    }
    Ok(())
}

/// Runs one TOC entry's SQL (and its owner statement unless `--no-owner`).
pub(super) async fn run_entry(client: &Client, e: &TocEntry, opts: &RestoreOptions) -> Result<()> {
    let (sql, owner) = opts.content.statements(e);
    let what = || {
        format!(
            "restoring {} {}{}",
            e.kind,
            e.schema
                .as_deref()
                .map(|s| format!("{s}."))
                .unwrap_or_default(),
            e.name
        )
    };
    if let Some(sql) = sql {
        client
            .batch_execute(&sql)
            .await
            .map_err(|err| sql_error(err, &what()))?;
        if let Some(role) = opts.role.as_deref().filter(|_| e.kind == "ACL") {
            // a grant replayed as its grantor ends with RESET SESSION AUTHORIZATION,
            // which also undoes --role's SET ROLE
            set_role(client, role).await?;
        }
    }
    if let Some(o) = owner {
        client.batch_execute(o).await.map_err(|err| {
            let mut error = sql_error(err, &what());
            if error.message().contains("does not exist") {
                error = error.context(
                    "hint: the role is missing in this cluster; --no-owner restores without owners",
                );
            }
            error
        })?;
    }
    Ok(())
}

/// When the target already has the foreign keys (a data-only restore), a table's rows
/// must not arrive before the rows they refer to: each unit of a referencing table waits
/// for the tables its keys refer to. (A full restore adds the keys after all data.) A
/// self-reference imposes nothing; a cycle of keys is left to the scheduler, which takes
/// the first unit when nothing else can start (as pg_restore, such data needs
/// `--disable-triggers`).
fn order_by_foreign_keys(units: &mut [DataUnit], entries: &[TocEntry]) {
    let by_id: HashMap<u32, &TocEntry> = entries.iter().map(|e| (e.id, e)).collect();
    // the referencing table of a key, by the qualified name its SQL alters
    let table_of_data: HashMap<&str, u32> = entries
        .iter()
        .filter_map(|e| {
            let d = e.data.as_ref()?;
            let table = tables_of(e, &by_id).into_iter().next()?;
            Some((d.qualified.as_str(), table))
        })
        .collect();
    let mut refers: HashMap<u32, Vec<u32>> = HashMap::new();
    for fk in entries.iter().filter(|e| e.kind == "FK CONSTRAINT") {
        let Some(altered) = fk
            .sql
            .strip_prefix("ALTER TABLE ")
            .map(|s| s.strip_prefix("ONLY ").unwrap_or(s))
            .and_then(|s| s.split_once('\n'))
            .map(|(q, _)| q)
        else {
            continue;
        };
        let Some(&child) = table_of_data.get(altered) else {
            continue;
        };
        let parents = tables_of(fk, &by_id).into_iter().filter(|t| *t != child);
        refers.entry(child).or_default().extend(parents);
    }
    for u in units.iter_mut() {
        for t in &u.tables {
            if let Some(parents) = refers.get(t) {
                u.after.extend(parents);
            }
        }
    }
}

/// One piece of data work.
pub(super) struct DataUnit {
    pub(super) bytes: u64,
    pub(super) what: String,
    /// The TOC ids the data entry depends on (its table): post-data entries on them wait
    /// for this unit.
    pub(super) tables: Vec<u32>,
    /// Tables whose data must have loaded before this unit starts: those its table's
    /// foreign keys refer to, when the keys may already be in the target
    /// ([`order_by_foreign_keys`]).
    pub(super) after: Vec<u32>,
    kind: DataKind,
}

enum DataKind {
    /// A table part: COPY these frames of this stream. With `freeze` (the whole table, in
    /// one stream, created by this restore), in a transaction that first truncates it,
    /// so that COPY FREEZE can write the rows frozen and all-visible.
    Copy {
        copy_sql: String,
        stream: u32,
        freeze: Option<String>,
    },
    /// A large object: `lo_put` each frame at its offset.
    LargeObject { oid: u32, stream: u32 },
    /// A statement (sequence values).
    Sql(String),
}

fn data_units(
    pg: &PgArchive,
    entries: &[TocEntry],
    archive: &MappedArchive,
    created: &HashSet<u32>,
) -> Result<Vec<DataUnit>> {
    let tables = pg.tables();
    let los: HashMap<u32, &super::dump::LargeObjectStats> = pg
        .manifest
        .large_objects
        .iter()
        .map(|l| (l.toc_id, l))
        .collect();
    let raw_of = |stream: u32| {
        archive
            .streams()
            .iter()
            .find(|s| s.id == stream)
            .map(|s| s.end.raw_len)
    };
    let mut units = Vec::new();
    for e in entries.iter().filter(|e| e.section == Section::Data) {
        if let Some(data) = &e.data {
            let Some(t) = tables.get(&e.id) else { continue };
            // (a partitioned table, loaded through its root, takes no FREEZE)
            let freeze = (t.streams.len() == 1
                && data.load_via_root.is_none()
                && e.deps.iter().any(|d| created.contains(d)))
            .then(|| data.qualified.clone());
            for &stream in &t.streams {
                let bytes = raw_of(stream).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Corrupt,
                        format!("stream {stream} of {} is missing", t.qualified),
                    )
                })?;
                units.push(DataUnit {
                    bytes,
                    what: t.qualified.clone(),
                    tables: e.deps.clone(),
                    after: Vec::new(),
                    kind: DataKind::Copy {
                        copy_sql: data.load_sql("FROM STDIN"),
                        stream,
                        freeze: freeze.clone(),
                    },
                });
            }
        } else if let Some(oid) = e.large_object {
            let lo = los.get(&e.id).ok_or_else(|| {
                Error::new(
                    ErrorKind::Corrupt,
                    format!("large object {oid} has no data"),
                )
            })?;
            units.push(DataUnit {
                bytes: lo.bytes,
                what: format!("large object {oid}"),
                tables: Vec::new(),
                after: Vec::new(),
                kind: DataKind::LargeObject {
                    oid,
                    stream: lo.stream,
                },
            });
        } else if !e.sql.is_empty() {
            units.push(DataUnit {
                bytes: 0,
                what: format!("{} {}", e.kind, e.name),
                tables: Vec::new(),
                after: Vec::new(),
                kind: DataKind::Sql(e.sql.clone()),
            });
        }
    }
    units.sort_by_key(|u| std::cmp::Reverse(u.bytes));
    Ok(units)
}

/// Loads one unit of data; every frame is verified before a byte reaches the server.
pub(super) async fn load_unit(
    client: &Client,
    archive: &MappedArchive,
    u: &DataUnit,
    progress: &Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<()> {
    let frames = |stream: u32| {
        let info = archive
            .streams()
            .iter()
            .find(|s| s.id == stream)
            .expect("checked when planning");
        archive.data_entries(info)
    };
    match &u.kind {
        DataKind::Copy {
            copy_sql,
            stream,
            freeze,
        } => {
            let Some(table) = freeze else {
                return copy(client, archive, copy_sql, frames(*stream), progress).await;
            };
            let sql = format!("{copy_sql} WITH (FREEZE)");
            let r = async {
                client
                    .batch_execute(&format!("BEGIN; TRUNCATE ONLY {table}"))
                    .await
                    .map_err(|e| sql_error(e, "starting the COPY FREEZE transaction"))?;
                copy(client, archive, &sql, frames(*stream), progress).await?;
                client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(|e| sql_error(e, "committing COPY FREEZE"))
            }
            .await;
            if r.is_err() {
                // leave the session usable for the next unit (--no-exit-on-error)
                let _ = client.batch_execute("ROLLBACK").await;
            }
            r?;
        }
        DataKind::LargeObject { oid, stream } => {
            for f in frames(*stream) {
                let bytes = archive.read_frame(f).map_err(Error::from)?;
                let offset = i64::try_from(f.raw_offset).unwrap_or(i64::MAX);
                client
                    .execute(
                        "SELECT pg_catalog.lo_put($1, $2, $3)",
                        &[oid, &offset, &bytes],
                    )
                    .await
                    .map_err(|e| sql_error(e, "writing a large object"))?;
                progress(Progress::Loaded {
                    bytes: bytes.len() as u64,
                });
            }
        }
        DataKind::Sql(sql) => client
            .batch_execute(sql)
            .await
            .map_err(|e| sql_error(e, "setting a sequence"))?,
    }
    Ok(())
}

/// Streams `frames` into `COPY … FROM STDIN`.
async fn copy(
    client: &Client,
    archive: &MappedArchive,
    copy_sql: &str,
    frames: &[coffer_format::IndexEntry],
    progress: &Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<()> {
    let sink = client
        .copy_in::<_, Bytes>(copy_sql)
        .await
        .map_err(|e| sql_error(e, "starting COPY"))?;
    futures::pin_mut!(sink);
    for f in frames {
        let rows = archive.read_frame(f).map_err(Error::from)?;
        progress(Progress::Loaded {
            bytes: rows.len() as u64,
        });
        sink.send(Bytes::from(rows))
            .await
            .map_err(|e| sql_error(e, "sending COPY data"))?;
    }
    sink.finish()
        .await
        .map_err(|e| sql_error(e, "finishing COPY"))?;
    Ok(())
}

/// The tables an entry works on: the TABLE entries among its dependencies.
pub(super) fn tables_of(e: &TocEntry, by_id: &HashMap<u32, &TocEntry>) -> Vec<u32> {
    e.deps
        .iter()
        .copied()
        .filter(|d| {
            by_id
                .get(d)
                .is_some_and(|t| matches!(t.kind.as_str(), "TABLE" | "FOREIGN TABLE"))
        })
        .collect()
}

/// The post-data entries, with each plain PRIMARY KEY or UNIQUE constraint split in two:
/// `CREATE UNIQUE INDEX` (which takes only a SHARE lock, so it builds beside the table's
/// other indexes) and `ADD CONSTRAINT … USING INDEX` (quick: the index is there). Only
/// the forms PostgreSQL accepts that way: a b-tree on plain columns, not deferrable, no
/// INCLUDE, storage options or tablespace, not on a partitioned table, a partition or an
/// inheritance child. The index takes
/// the constraint's name, as `ADD CONSTRAINT` would have given it.
pub(super) fn keys_through_indexes(
    all: &[TocEntry],
    by_id: &HashMap<u32, &TocEntry>,
) -> Vec<TocEntry> {
    let mut next_id = all.iter().map(|e| e.id).max().unwrap_or(0);
    // a partition or an inheritance child keeps its key as ADD CONSTRAINT makes it: USING
    // INDEX would make its inherited NOT NULLs its own (PostgreSQL 18)
    let partitions: HashSet<(Option<&str>, &str)> = all
        .iter()
        .filter(|e| e.kind == "TABLE ATTACH")
        .map(|e| (e.schema.as_deref(), e.name.as_str()))
        .collect();
    let plain = |t: &TocEntry| {
        !t.sql.contains("\nPARTITION BY ")
            && !t.sql.contains("\nINHERITS (")
            && !partitions.contains(&(t.schema.as_deref(), t.name.as_str()))
    };
    let mut out = Vec::new();
    for e in all.iter().filter(|e| e.section == Section::PostData) {
        let split = (e.kind == "CONSTRAINT")
            .then(|| key_constraint(&e.sql))
            .flatten()
            .filter(|_| tables_of(e, by_id).iter().all(|t| plain(by_id[t])));
        let Some((table, name, key, cols)) = split else {
            out.push(e.clone());
            continue;
        };
        next_id += 1;
        out.push(TocEntry {
            id: next_id,
            kind: "INDEX".into(),
            sql: format!("CREATE UNIQUE INDEX {name} ON {table} USING btree ({cols});"),
            owner_sql: None,
            drop_sql: None,
            drop_if_exists_sql: None,
            ..e.clone()
        });
        let mut constraint = e.clone();
        constraint.sql = format!(
            "ALTER TABLE ONLY {table}\n    ADD CONSTRAINT {name} {key} USING INDEX {name};"
        );
        constraint.deps.push(next_id);
        out.push(constraint);
    }
    out
}

/// `ALTER TABLE ONLY t\n    ADD CONSTRAINT name PRIMARY KEY (cols);` (or UNIQUE) in
/// exactly the form the dump writes for a plain key: (table, name, key words, columns).
fn key_constraint(sql: &str) -> Option<(&str, &str, &str, &str)> {
    let rest = sql.strip_prefix("ALTER TABLE ONLY ")?;
    let (table, rest) = rest.split_once("\n    ADD CONSTRAINT ")?;
    let (name, rest) = rest
        .split_once(" PRIMARY KEY (")
        .map(|(n, r)| (n, ("PRIMARY KEY", r)))
        .or_else(|| {
            rest.split_once(" UNIQUE (")
                .map(|(n, r)| (n, ("UNIQUE", r)))
        })?;
    let (key, rest) = rest;
    let cols = rest.strip_suffix(");")?;
    // anything more (INCLUDE, WITH, a tablespace, DEFERRABLE) brings parentheses or
    // text after the column list; and quoted names with parentheses are left alone
    let plain = |s: &str| !s.contains(['(', ')', ';', '\n']);
    (plain(table) && plain(name) && column_list(cols)).then_some((table, name, key, cols))
}

/// Whether `s` is `col, col, …` of identifiers as `quote_ident` writes them (lower-case
/// plain words, or double-quoted with `""` inside), and nothing else (no `WITHOUT
/// OVERLAPS`, no expressions).
fn column_list(s: &str) -> bool {
    let mut rest = s;
    loop {
        let len = if let Some(quoted) = rest.strip_prefix('"') {
            let b = quoted.as_bytes();
            let mut i = 0;
            loop {
                match b.get(i) {
                    None => return false,
                    Some(b'"') if b.get(i + 1) == Some(&b'"') => i += 2,
                    Some(b'"') => break i + 2,
                    Some(_) => i += 1,
                }
            }
        } else {
            rest.bytes()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
                .count()
        };
        if len == 0 {
            return false;
        }
        rest = &rest[len..];
        match rest.strip_prefix(", ") {
            Some(r) => rest = r,
            None => return rest.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_keys_are_split_and_the_rest_left_alone() {
        let pk = "ALTER TABLE ONLY s.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id, \"Kind\");";
        assert_eq!(
            key_constraint(pk),
            Some(("s.t", "t_pkey", "PRIMARY KEY", "id, \"Kind\""))
        );
        let uq = "ALTER TABLE ONLY \"ü\".\"t t\"\n    ADD CONSTRAINT \"t t_Ω_key\" UNIQUE (\"Ω\");";
        assert_eq!(
            key_constraint(uq),
            Some(("\"ü\".\"t t\"", "\"t t_Ω_key\"", "UNIQUE", "\"Ω\""))
        );
        for other in [
            "ALTER TABLE ONLY s.t\n    ADD CONSTRAINT k UNIQUE NULLS NOT DISTINCT (a);",
            "ALTER TABLE ONLY s.t\n    ADD CONSTRAINT k PRIMARY KEY (a) INCLUDE (b);",
            "ALTER TABLE ONLY s.t\n    ADD CONSTRAINT k PRIMARY KEY (a) WITH (fillfactor='70');",
            "ALTER TABLE ONLY s.t\n    ADD CONSTRAINT k UNIQUE (a) DEFERRABLE INITIALLY DEFERRED;",
            "ALTER TABLE ONLY s.t\n    ADD CONSTRAINT k PRIMARY KEY (a) USING INDEX TABLESPACE x;",
            "ALTER TABLE ONLY s.t\n    ADD CONSTRAINT k EXCLUDE USING gist (r WITH &&);",
            "ALTER TABLE s.t\n    ADD CONSTRAINT k PRIMARY KEY (a);",
            "ALTER TABLE ONLY s.t\n    ADD CONSTRAINT k PRIMARY KEY (id, valid_at WITHOUT OVERLAPS);",
            "ALTER TABLE ONLY s.t\n    ADD CONSTRAINT k PRIMARY KEY (\"open);",
        ] {
            assert_eq!(key_constraint(other), None, "{other}");
        }
    }

    #[test]
    fn names_are_replaced_only_where_whole() {
        let sql = "ALTER TABLE s1.t ADD x; COMMENT ON COLUMN s1.t.c IS 'x'; SELECT * FROM s1.tree, s1.t2, xs1.t;";
        assert_eq!(
            replace_name(sql, "s1.t", "\"tmp\".t"),
            "ALTER TABLE \"tmp\".t ADD x; COMMENT ON COLUMN \"tmp\".t.c IS 'x'; SELECT * FROM s1.tree, s1.t2, xs1.t;"
        );
    }
}
