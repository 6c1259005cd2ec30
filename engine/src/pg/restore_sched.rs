//! The restore's data and post-data work, on one pool of `jobs` connections.
//!
//! An index waits for its own table's rows, not for every table's: while the largest
//! table is still loading, the other connections build the indexes and keys of the
//! tables already loaded (pg_restore's parallel mode and pgcopydb schedule the same way).
//! What is left after the last COPY is then the indexes of the last tables to load and
//! the entries that must see every table. Only index builds and `ALTER TABLE ONLY … ADD
//! CONSTRAINT` (keys, exclusion and check constraints of one table, never recursing into
//! children) start early; foreign keys (which read another table), triggers (which would
//! fire on rows still arriving), rules, policies and the rest wait for all data.
//!
//! Ready post-data entries go before data units (they unblock their dependents and keep
//! the tail short); data units go largest first. Two entries that need one table are
//! never run at once unless both are index builds (`CREATE INDEX` takes a SHARE lock).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_format::MappedArchive;
use tokio::task::JoinSet;
use tokio_postgres::Client;

use super::conn::Target;
use super::restore::{
    DataUnit, Failures, Progress, RestoreOptions, keys_through_indexes, load_unit, run_entry,
    session, tables_of,
};
use super::toc::{Section, TocEntry};
use crate::error::{Error, ErrorKind, Result};

/// The data to load: its units (largest first) and the archive they are read from.
pub(super) struct Data {
    pub archive: Arc<MappedArchive>,
    pub units: Vec<DataUnit>,
}

/// How long each phase took: `data` until its last unit finished, `post_data` from then
/// (or from the start, with no data) until the last post-data entry finished.
#[derive(Default)]
pub(super) struct Timings {
    pub data: Option<Duration>,
    pub post_data: Option<Duration>,
}

/// What was done when a failure stops the restore: said with the error, so that the
/// user knows what the target holds.
#[derive(Default)]
struct Done {
    data: (usize, usize),
    bytes: (u64, u64),
    post: (usize, usize),
}

impl Done {
    /// Every data unit has loaded (or there were none).
    fn data_done(&self) -> bool {
        self.data.0 == self.data.1
    }

    fn note(&self, e: Error) -> Error {
        let mut parts = Vec::new();
        if self.data.1 > 0 {
            let mb = |b: u64| b as f64 / 1e6;
            parts.push(format!(
                "data {} of {} units loaded ({:.1} of {:.1} MB)",
                self.data.0,
                self.data.1,
                mb(self.bytes.0),
                mb(self.bytes.1)
            ));
        }
        if self.post.1 > 0 {
            parts.push(format!(
                "post-data {} of {} entries done",
                self.post.0, self.post.1
            ));
        }
        if parts.is_empty() {
            return e;
        }
        e.note(format_args!("before the failure: {}", parts.join("; ")))
    }
}

/// A post-data entry waiting to run, with what the scheduler asks of it each time it
/// looks (worked out once: a restore may have thousands of entries).
struct Waiting<'e> {
    entry: &'e TocEntry,
    /// The tables it works on.
    tables: Vec<u32>,
    /// An index build (shares its table with other index builds).
    shared: bool,
    /// May start while other tables still load ([`may_start_early`]).
    early: bool,
}

/// One running piece of work, as the scheduler tracks it.
enum Running {
    /// A data unit of this many bytes, loading these tables.
    Data(Vec<u32>, u64),
    /// A post-data entry on these tables; `shared`: an index build.
    Post {
        id: u32,
        tables: Vec<u32>,
        shared: bool,
    },
}

/// Runs `data` (if any) and the post-data entries of `all` (with `post`) on `opts.jobs`
/// connections, reporting a "data" phase and then a "post-data" phase.
pub(super) async fn run(
    data: Option<Data>,
    all: &[TocEntry],
    post: bool,
    target: &Target,
    opts: &RestoreOptions,
    progress: &Arc<dyn Fn(Progress) + Send + Sync>,
    failures: &Failures,
) -> Result<Timings> {
    let by_id: HashMap<u32, &TocEntry> = all.iter().map(|e| (e.id, e)).collect();
    let owned = if post {
        keys_through_indexes(all, &by_id)
    } else {
        Vec::new()
    };
    let post_ids: HashSet<u32> = owned.iter().map(|e| e.id).collect();
    let mut pending: Vec<Waiting<'_>> = owned
        .iter()
        .map(|e| {
            let tables = tables_of(e, &by_id);
            Waiting {
                entry: e,
                early: may_start_early(e, &tables, &by_id),
                shared: e.kind == "INDEX",
                tables,
            }
        })
        .collect();
    let (archive, mut queue) = match data {
        Some(d) => (Some(d.archive), VecDeque::from(d.units)),
        None => (None, VecDeque::new()),
    };
    // table id → data units of it not yet finished
    let mut loading: HashMap<u32, usize> = HashMap::new();
    for u in &queue {
        for t in &u.tables {
            *loading.entry(*t).or_default() += 1;
        }
    }
    let mut tally = Done {
        data: (0, queue.len()),
        bytes: (0, queue.iter().map(|u| u.bytes).sum()),
        post: (0, owned.len()),
    };
    let mut timings = Timings::default();
    let started = Instant::now();
    let mut post_started = None;
    // post-data entries done before it begins (while data loaded) are reported with it
    let begin_post = |early: usize| {
        progress(Progress::Phase {
            name: "post-data",
            bytes: 0,
            entries: owned.len() as u64,
        });
        (0..early).for_each(|_| progress(Progress::Entry));
        Instant::now()
    };
    if archive.is_some() {
        progress(Progress::Phase {
            name: "data",
            bytes: tally.bytes.1,
            entries: 0,
        });
    }
    if tally.data_done() {
        if archive.is_some() {
            timings.data = Some(started.elapsed());
        }
        if pending.is_empty() {
            return Ok(timings);
        }
        post_started = Some(begin_post(0));
    }

    let mut idle: Vec<Arc<Client>> = Vec::new();
    for _ in 0..opts.jobs.max(1) {
        idle.push(Arc::new(session(target, opts).await?));
    }
    let mut done: HashSet<u32> = HashSet::new();
    let mut running: HashMap<u64, Running> = HashMap::new();
    let mut next_task = 0u64;
    let mut tasks = JoinSet::new();
    loop {
        while !idle.is_empty() {
            let ready = pending.iter().position(|w| {
                let deps_done = w
                    .entry
                    .deps
                    .iter()
                    .all(|d| !post_ids.contains(d) || done.contains(d));
                let loaded = tally.data_done()
                    || (w.early && w.tables.iter().all(|t| !loading.contains_key(t)));
                let conflict = running.values().any(|r| match r {
                    Running::Post {
                        tables: ts,
                        shared: s,
                        ..
                    } => ts.iter().any(|t| w.tables.contains(t)) && !(w.shared && *s),
                    Running::Data(..) => false,
                });
                deps_done && loaded && !conflict
            });
            let client = idle.pop().expect("checked");
            let task = next_task;
            next_task += 1;
            if let Some(i) = ready {
                let w = pending.remove(i);
                running.insert(
                    task,
                    Running::Post {
                        id: w.entry.id,
                        tables: w.tables,
                        shared: w.shared,
                    },
                );
                let (entry, opts) = (w.entry.clone(), opts.clone());
                tasks.spawn(async move {
                    let r = run_entry(&client, &entry, &opts).await;
                    (task, client, r)
                });
            } else if let Some(unit) = next_unit(&mut queue, &loading, running.is_empty()) {
                let archive = archive.clone().expect("data units come with their archive");
                running.insert(task, Running::Data(unit.tables.clone(), unit.bytes));
                let progress = progress.clone();
                tasks.spawn(async move {
                    let r = load_unit(&client, &archive, &unit, &progress)
                        .await
                        .map_err(|e| e.context(format!("loading {}", unit.what)));
                    (task, client, r)
                });
            } else {
                idle.push(client);
                break;
            }
        }
        if running.is_empty() {
            if pending.is_empty() {
                break;
            }
            // nothing can start and nothing runs (all data is in): dependencies outside
            // post-data, or a cycle; take the next entry in TOC order
            let e = pending.remove(0).entry;
            let client = idle.last().expect("all idle");
            failures
                .tolerate(opts, run_entry(client, e, opts).await)
                .map_err(|e| tally.note(e))?;
            progress(Progress::Entry);
            done.insert(e.id);
            tally.post.0 += 1;
            continue;
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (task, client, r) =
            joined.map_err(|e| Error::new(ErrorKind::Io, format!("a restore task failed: {e}")))?;
        let failed = r.is_err();
        failures.tolerate(opts, r).map_err(|e| tally.note(e))?;
        idle.push(if failed {
            // a failed COPY can leave the session out of step with the server
            // (tokio-postgres sends a second Sync with a COPY the server refuses before
            // it starts: rust-postgres issue 789), so carrying on past a failure gets a
            // fresh session rather than risking every later entry on this one
            drop(client);
            Arc::new(session(target, opts).await.map_err(|e| tally.note(e))?)
        } else {
            client
        });
        match running.remove(&task) {
            Some(Running::Data(tables, bytes)) => {
                tally.data.0 += 1;
                tally.bytes.0 += bytes;
                for t in tables {
                    if let Some(n) = loading.get_mut(&t) {
                        *n -= 1;
                        if *n == 0 {
                            loading.remove(&t);
                        }
                    }
                }
                if tally.data_done() {
                    timings.data = Some(started.elapsed());
                    if !owned.is_empty() {
                        post_started = Some(begin_post(tally.post.0));
                    }
                }
            }
            Some(Running::Post { id, .. }) => {
                done.insert(id);
                tally.post.0 += 1;
                if post_started.is_some() {
                    progress(Progress::Entry);
                }
            }
            None => {}
        }
    }
    if post {
        timings.post_data = Some(post_started.map(|t| t.elapsed()).unwrap_or_default());
    }
    Ok(timings)
}

/// The first data unit (largest first) whose `after` tables have all loaded; with nothing
/// running, the first one anyway (a cycle of foreign keys cannot be ordered).
fn next_unit(
    queue: &mut VecDeque<DataUnit>,
    loading: &HashMap<u32, usize>,
    nothing_runs: bool,
) -> Option<DataUnit> {
    let ready = queue
        .iter()
        .position(|u| u.after.iter().all(|t| !loading.contains_key(t)));
    match ready {
        Some(i) => queue.remove(i),
        None if nothing_runs => queue.pop_front(),
        None => None,
    }
}

/// Whether `e` may run while other tables still load: an index build, or a constraint
/// added to one table only (`ALTER TABLE ONLY`), on plain tables (a partitioned table's
/// keys and indexes reach into partitions that may still be loading).
fn may_start_early(e: &TocEntry, tables: &[u32], by_id: &HashMap<u32, &TocEntry>) -> bool {
    let kind_ok = match e.kind.as_str() {
        "INDEX" => true,
        "CONSTRAINT" => e.sql.starts_with("ALTER TABLE ONLY "),
        _ => false,
    };
    kind_ok
        && e.section == Section::PostData
        && !tables.is_empty()
        && tables.iter().all(|t| {
            by_id
                .get(t)
                .is_some_and(|t| !t.sql.contains("\nPARTITION BY "))
        })
}
