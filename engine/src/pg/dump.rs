//! `coffer dump pg`: one consistent snapshot, the catalog read into a TOC, then table data
//! streamed by parallel workers into the archive, largest tables first, big tables split
//! into ctid page ranges (pg-anchors §1.1, §2, §6).
//!
//! Archive layout: stream `pg.toc` first (the TOC as JSON, so a reader of a pipe knows the
//! schema before any data), then one `pg.table_data` stream per table or table part, whose
//! descriptor names its TOC entry, and one `pg.large_object` stream per large object (a
//! frame's raw offset is its offset in the object, so any frame can be written back by
//! itself). The manifest's `app` member holds the source, and per table the rows, checksum
//! and streams ([`TableStats`]), per large object its size and digest.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_format::{ArchiveWriter, StreamDescriptor};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::catalog::{self, Filters, Relation};
use super::conn::Target;
use super::copy_out::{RowChecksum, copy_out};
use super::session::{open_leader, open_worker, relock_nowait, sql_error};
use super::toc::{self, TocEntry};
use crate::error::{Error, ErrorKind, Result};

/// How to dump.
#[derive(Clone, Debug)]
pub struct DumpOptions {
    /// Parallel connections copying data (`-j`).
    pub jobs: usize,
    pub filters: Filters,
    /// Fail instead of waiting longer than this for a table lock.
    pub lock_wait_timeout: Option<Duration>,
    /// Raw bytes per data frame.
    pub frame_size: usize,
    /// Tables larger than this (heap + TOAST) are split into page ranges.
    pub split_threshold: u64,
    /// Most parts one table is split into.
    pub max_parts: u64,
    /// `--role`: every connection does `SET ROLE` to it first, so the dump reads with
    /// that role's rights (pg_dump's option).
    pub role: Option<String>,
}

impl Default for DumpOptions {
    fn default() -> Self {
        DumpOptions {
            jobs: 1,
            filters: Filters::default(),
            lock_wait_timeout: None,
            frame_size: 4 << 20,
            split_threshold: 1 << 30,
            max_parts: 64,
            role: None,
        }
    }
}

/// Progress, reported as it happens; the engine never prints.
#[derive(Clone, Debug)]
pub enum Progress {
    /// The catalog is read: this much data is about to be copied.
    Planned {
        tables: usize,
        units: usize,
        bytes: u64,
    },
    /// Raw COPY bytes received since the last report.
    Copied { bytes: u64, rows: u64 },
    /// A table (or table part) is done.
    UnitDone { name: String },
}

/// Per table, in the manifest: what a restore or a restore test checks against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableStats {
    pub toc_id: u32,
    pub qualified: String,
    pub rows: u64,
    /// See [`RowChecksum::hex`].
    pub checksum: String,
    /// Archive streams holding the rows, in part order.
    pub streams: Vec<u32>,
}

/// Per large object, in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LargeObjectStats {
    pub toc_id: u32,
    pub oid: u32,
    pub bytes: u64,
    /// `blake3:<hex>` of the content.
    pub digest: String,
    pub stream: u32,
}

/// The manifest `app` member of a PostgreSQL archive.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PgManifest {
    /// Always `postgres`.
    pub kind: String,
    pub source: Source,
    /// Archive stream holding the TOC.
    pub toc_stream: u32,
    pub tables: Vec<TableStats>,
    #[serde(default)]
    pub large_objects: Vec<LargeObjectStats>,
    /// Object counts by kind.
    pub objects: BTreeMap<String, u64>,
}

/// Where the dump came from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Source {
    pub server_version: String,
    pub server_version_num: i32,
    pub database: String,
    pub database_encoding: String,
    /// COPY data and DDL in the archive are in this encoding.
    pub data_encoding: String,
    pub snapshot: String,
    pub started_unix_ms: u64,
}

/// What a dump did.
#[derive(Clone, Debug)]
pub struct DumpSummary {
    pub manifest: PgManifest,
    pub rows: u64,
    pub raw_bytes: u64,
    pub warnings: Vec<String>,
}

/// One unit of data work.
#[derive(Clone, Debug)]
struct Unit {
    toc_id: u32,
    /// Estimated size, for largest-first ordering.
    bytes: u64,
    work: Work,
}

#[derive(Clone, Debug)]
enum Work {
    /// A table, or one page range of it.
    Table {
        table: Relation,
        part: u64,
        parts: u64,
        copy_sql: String,
    },
    /// The content of one large object.
    LargeObject { oid: u32 },
}

/// Dumps into `writer` (which the caller finishes with the returned manifest, or drops to
/// abandon the archive).
pub async fn dump(
    target: &Target,
    opts: &DumpOptions,
    writer: Arc<ArchiveWriter>,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<DumpSummary> {
    let started_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let leader = open_leader(target, opts.role.as_deref()).await?;
    let cat = catalog::read(
        &leader.client,
        leader.server_version_num,
        &opts.filters,
        opts.lock_wait_timeout,
    )
    .await?;
    let encoding: String = leader
        .client
        .query_one("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()", &[])
        .await
        .map_err(|e| sql_error(e, "reading the database encoding"))?
        .get(0);
    let (entries, mut warnings) = toc::build(cat.objects);
    warnings.extend(cat.warnings);
    let source = Source {
        server_version: leader.server_version.clone(),
        server_version_num: leader.server_version_num,
        database: target.dbname().to_string(),
        database_encoding: encoding,
        data_encoding: "UTF8".into(),
        snapshot: leader.snapshot.clone(),
        started_unix_ms,
    };
    let toc_stream = write_toc(&writer, &source, &entries)?;
    let mut units = plan(&entries, &cat.data_tables, opts);
    units.extend(entries.iter().filter_map(|e| {
        e.large_object.map(|oid| Unit {
            toc_id: e.id,
            bytes: 0,
            work: Work::LargeObject { oid },
        })
    }));
    progress(Progress::Planned {
        tables: cat.data_tables.len(),
        units: units.len(),
        bytes: units.iter().map(|u| u.bytes).sum(),
    });
    let queue = Arc::new(Mutex::new(VecDeque::from(units)));
    let workers = (0..opts.jobs.max(1)).map(|_| {
        worker(
            target,
            &leader.snapshot,
            opts.role.as_deref(),
            queue.clone(),
            writer.clone(),
            opts.frame_size,
            progress.clone(),
        )
    });
    let done: Vec<Vec<UnitResult>> = futures::future::try_join_all(workers).await?;
    // the leader's transaction (and its locks) lasts until every worker is done
    drop(leader);
    /// A table's parts, gathered from whichever workers copied them.
    struct Gathered {
        qualified: String,
        sum: RowChecksum,
        streams: Vec<(u64, u32)>,
    }
    let mut per_table: BTreeMap<u32, Gathered> = BTreeMap::new();
    let mut large_objects = Vec::new();
    let (mut rows, mut raw_bytes) = (0, 0);
    for r in done.into_iter().flatten() {
        raw_bytes += r.raw_bytes;
        match r.outcome {
            Outcome::Table {
                qualified,
                part,
                sum,
            } => {
                rows += sum.rows;
                let t = per_table.entry(r.toc_id).or_insert_with(|| Gathered {
                    qualified,
                    sum: RowChecksum::default(),
                    streams: Vec::new(),
                });
                t.sum.merge(sum);
                t.streams.push((part, r.stream));
            }
            Outcome::LargeObject { oid, digest } => large_objects.push(LargeObjectStats {
                toc_id: r.toc_id,
                oid,
                bytes: r.raw_bytes,
                digest,
                stream: r.stream,
            }),
        }
    }
    large_objects.sort_by_key(|l| l.oid);
    let tables = per_table
        .into_iter()
        .map(|(toc_id, mut g)| {
            g.streams.sort_unstable();
            TableStats {
                toc_id,
                qualified: g.qualified,
                rows: g.sum.rows,
                checksum: g.sum.hex(),
                streams: g.streams.into_iter().map(|(_, s)| s).collect(),
            }
        })
        .collect();
    let mut objects = BTreeMap::new();
    for e in &entries {
        *objects.entry(e.kind.clone()).or_insert(0) += 1;
    }
    let manifest = PgManifest {
        kind: "postgres".into(),
        source,
        toc_stream,
        tables,
        large_objects,
        objects,
    };
    Ok(DumpSummary {
        manifest,
        rows,
        raw_bytes,
        warnings,
    })
}

/// The TOC document stored in the `pg.toc` stream.
#[derive(Serialize, Deserialize)]
pub struct TocDocument {
    pub source: Source,
    pub entries: Vec<TocEntry>,
}

fn write_toc(writer: &ArchiveWriter, source: &Source, entries: &[TocEntry]) -> Result<u32> {
    let doc = TocDocument {
        source: source.clone(),
        entries: entries.to_vec(),
    };
    let json = serde_json::to_vec(&doc)
        .map_err(|e| Error::new(ErrorKind::Usage, format!("serialising the TOC: {e}")))?;
    let mut s = writer.stream(StreamDescriptor::new("pg.toc", source.database.clone()))?;
    for chunk in json.chunks(4 << 20) {
        s.write_frame(chunk)?;
    }
    let id = s.id();
    s.finish()?;
    Ok(id)
}

/// Units of data work, largest first. A table above the split threshold becomes page
/// ranges sized on heap + TOAST (a TOAST-heavy table is split too); the last range is open
/// so that pages added since the statistics were taken are not missed.
fn plan(entries: &[TocEntry], tables: &[Relation], opts: &DumpOptions) -> Vec<Unit> {
    let toc_ids: std::collections::HashMap<&str, u32> = entries
        .iter()
        .filter_map(|e| e.data.as_ref().map(|d| (d.qualified.as_str(), e.id)))
        .collect();
    let mut units = Vec::new();
    for t in tables {
        let Some(&toc_id) = toc_ids.get(t.qualified.as_str()) else {
            continue;
        };
        let cols = t.copy_columns.join(", ");
        if let Some(condition) = &t.condition {
            // an extension's configuration table: only the rows that are the user's
            let copy_sql = format!(
                "COPY (SELECT {cols} FROM ONLY {} {condition}) TO STDOUT",
                t.qualified
            );
            let work = Work::Table {
                table: t.clone(),
                part: 0,
                parts: 1,
                copy_sql,
            };
            units.push(Unit {
                toc_id,
                bytes: t.bytes,
                work,
            });
            continue;
        }
        let parts = if t.bytes > opts.split_threshold && t.pages > 1 {
            t.bytes
                .div_ceil(opts.split_threshold.max(1))
                .clamp(2, opts.max_parts.max(2))
                .min(t.pages)
        } else {
            1
        };
        if parts == 1 {
            let data = toc::TableData {
                qualified: t.qualified.clone(),
                columns: t.copy_columns.clone(),
                bytes: t.bytes,
                load_via_root: None,
            };
            let work = Work::Table {
                table: t.clone(),
                part: 0,
                parts: 1,
                copy_sql: data.copy_sql("TO STDOUT"),
            };
            units.push(Unit {
                toc_id,
                bytes: t.bytes,
                work,
            });
            continue;
        }
        let step = t.pages.div_ceil(parts);
        for k in 0..parts {
            let lo = k * step;
            let cond = if k + 1 == parts {
                format!("ctid >= '({lo},0)'::tid")
            } else {
                format!(
                    "ctid >= '({lo},0)'::tid AND ctid < '({},0)'::tid",
                    lo + step
                )
            };
            let copy_sql = format!(
                "COPY (SELECT {cols} FROM ONLY {} WHERE {cond}) TO STDOUT",
                t.qualified
            );
            let work = Work::Table {
                table: t.clone(),
                part: k,
                parts,
                copy_sql,
            };
            units.push(Unit {
                toc_id,
                bytes: t.bytes / parts,
                work,
            });
        }
    }
    // largest first; ties in a stable order so runs are reproducible
    units.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then(a.toc_id.cmp(&b.toc_id))
            .then(part_of(a).cmp(&part_of(b)))
    });
    units
}

fn part_of(u: &Unit) -> u64 {
    match u.work {
        Work::Table { part, .. } => part,
        Work::LargeObject { .. } => 0,
    }
}

struct UnitResult {
    toc_id: u32,
    stream: u32,
    raw_bytes: u64,
    outcome: Outcome,
}

enum Outcome {
    Table {
        qualified: String,
        part: u64,
        sum: RowChecksum,
    },
    LargeObject {
        oid: u32,
        digest: String,
    },
}

fn closed() -> Error {
    Error::new(ErrorKind::Archive, "the archive writer stopped")
}

/// A worker's sealing thread. Dropping it (on success, on error, or when the dump is
/// abandoned and the worker cancelled) closes its queue and waits for the thread, so no
/// thread outlives the dump holding the archive writer — which would keep the writer from
/// removing its `.partial` file.
struct Sealer {
    tx: Option<mpsc::Sender<SealJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sealer {
    fn start(writer: Arc<ArchiveWriter>) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<SealJob>(2);
        let thread = std::thread::Builder::new()
            .name("coffer-sealer".into())
            .spawn(move || seal_loop(&writer, rx))
            .map_err(|e| Error::new(ErrorKind::Io, format!("starting a sealing thread: {e}")))?;
        Ok(Sealer {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    async fn send(&self, job: SealJob) -> Result<()> {
        let tx = self.tx.as_ref().ok_or_else(closed)?;
        tx.send(job).await.map_err(|_| closed())
    }

    /// Closes the queue and waits for the thread, reporting a panic.
    fn close(mut self) -> Result<()> {
        self.tx.take();
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Err(_)) => Err(Error::new(ErrorKind::Archive, "a sealing thread panicked")),
            _ => Ok(()),
        }
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum SealJob {
    Begin(StreamDescriptor, oneshot::Sender<Result<u32>>),
    Frame(Vec<u8>),
    End(oneshot::Sender<Result<()>>),
}

/// One worker: a connection in the snapshot, and a thread that seals its frames.
async fn worker(
    target: &Target,
    snapshot: &str,
    role: Option<&str>,
    queue: Arc<Mutex<VecDeque<Unit>>>,
    writer: Arc<ArchiveWriter>,
    frame_size: usize,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<Vec<UnitResult>> {
    let client = open_worker(target, snapshot, role).await?;
    let sealer = Sealer::start(writer)?;
    let mut locked = HashSet::new();
    let mut results = Vec::new();
    loop {
        let unit = queue.lock().expect("queue lock").pop_front();
        let Some(u) = unit else { break };
        let (descriptor, name) = match &u.work {
            Work::Table {
                table, part, parts, ..
            } => {
                if locked.insert(table.oid) {
                    relock_nowait(&client, &table.qualified).await?;
                }
                let name = if *parts > 1 {
                    format!(
                        "{}.{} (part {}/{})",
                        table.schema,
                        table.name,
                        part + 1,
                        parts
                    )
                } else {
                    format!("{}.{}", table.schema, table.name)
                };
                let mut d = StreamDescriptor::new("pg.table_data", name.clone());
                d.meta = serde_json::json!({"toc_id": u.toc_id, "part": part, "parts": parts});
                (d, name)
            }
            Work::LargeObject { oid } => {
                let mut d = StreamDescriptor::new("pg.large_object", oid.to_string());
                d.meta = serde_json::json!({"toc_id": u.toc_id, "oid": oid});
                (d, format!("large object {oid}"))
            }
        };
        let (reply, begun) = oneshot::channel();
        sealer.send(SealJob::Begin(descriptor, reply)).await?;
        let stream = begun.await.map_err(|_| closed())??;
        let mut raw_bytes = 0u64;
        let mut digest = blake3::Hasher::new();
        let send = async |frame: Vec<u8>| {
            raw_bytes += frame.len() as u64;
            progress(Progress::Copied {
                bytes: frame.len() as u64,
                rows: 0,
            });
            if matches!(u.work, Work::LargeObject { .. }) {
                digest.update(&frame);
            }
            sealer.send(SealJob::Frame(frame)).await
        };
        let outcome = match &u.work {
            Work::Table {
                table,
                part,
                copy_sql,
                ..
            } => {
                let sum = copy_out(&client, copy_sql, frame_size, send)
                    .await
                    .map_err(|e| e.context(format!("dumping {name}")))?;
                progress(Progress::Copied {
                    bytes: 0,
                    rows: sum.rows,
                });
                Outcome::Table {
                    qualified: table.qualified.clone(),
                    part: *part,
                    sum,
                }
            }
            Work::LargeObject { oid } => {
                copy_large_object(&client, *oid, frame_size, send)
                    .await
                    .map_err(|e| e.context(format!("dumping {name}")))?;
                Outcome::LargeObject {
                    oid: *oid,
                    digest: format!("blake3:{}", digest.finalize().to_hex()),
                }
            }
        };
        let (reply, ended) = oneshot::channel();
        sealer.send(SealJob::End(reply)).await?;
        ended.await.map_err(|_| closed())??;
        progress(Progress::UnitDone { name });
        results.push(UnitResult {
            toc_id: u.toc_id,
            stream,
            raw_bytes,
            outcome,
        });
    }
    sealer.close()?;
    Ok(results)
}

/// Reads a large object in frame-sized pieces with `lo_get`, inside the snapshot.
async fn copy_large_object<F>(
    client: &tokio_postgres::Client,
    oid: u32,
    frame_size: usize,
    mut emit: F,
) -> Result<()>
where
    F: AsyncFnMut(Vec<u8>) -> Result<()>,
{
    let chunk = i32::try_from(frame_size).unwrap_or(i32::MAX);
    let mut offset: i64 = 0;
    loop {
        let row = client
            .query_one(
                "SELECT pg_catalog.lo_get($1, $2, $3)",
                &[&oid, &offset, &chunk],
            )
            .await
            .map_err(|e| sql_error(e, "reading a large object"))?;
        let bytes: Vec<u8> = row.get(0);
        if bytes.is_empty() {
            return Ok(());
        }
        offset += bytes.len() as i64;
        let last = bytes.len() < frame_size;
        emit(bytes).await?;
        if last {
            return Ok(());
        }
    }
}
/// Seals a worker's frames in order; replies say when a stream has begun and ended. An
/// error is kept and returned at the stream's end (frames after it are dropped).
fn seal_loop(writer: &ArchiveWriter, mut rx: mpsc::Receiver<SealJob>) {
    let mut current = None;
    let mut failed: Option<Error> = None;
    while let Some(job) = rx.blocking_recv() {
        match job {
            SealJob::Begin(d, reply) => {
                failed = None;
                let r = writer.stream(d).map_err(Error::from);
                let _ = reply.send(
                    r.as_ref()
                        .map(|s| s.id())
                        .map_err(|e| Error::new(e.kind(), e.message())),
                );
                current = r.ok();
            }
            SealJob::Frame(f) => {
                if let (Some(s), None) = (current.as_mut(), &failed) {
                    if let Err(e) = s.write_frame(&f) {
                        failed = Some(e.into());
                    }
                }
            }
            SealJob::End(reply) => {
                let r = match (current.take(), failed.take()) {
                    (_, Some(e)) => Err(e),
                    (Some(s), None) => s.finish().map(|_| ()).map_err(Error::from),
                    (None, None) => Err(Error::new(ErrorKind::Archive, "no stream to finish")),
                };
                let _ = reply.send(r);
            }
        }
    }
}
