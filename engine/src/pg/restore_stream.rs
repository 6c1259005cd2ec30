//! `coffer restore pg - -d …`: restoring from a pipe, with no index.
//!
//! pg_restore cannot restore in parallel from a pipe. coffer restores what it can as frames
//! arrive: the TOC stream comes first, so the schema is created before any data; each data
//! stream is loaded over its own connection while it is open (the dump's workers
//! interleaved their streams, so several load at once); post-data and privileges are held
//! back until the end of the archive has been read and verified, since nothing may depend
//! on data that might still turn out truncated.

use std::collections::HashMap;
use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use coffer_format::{Event, KeySource, StreamReader};
use futures::SinkExt;
use tokio_postgres::{Client, CopyInSink};

use super::conn::Target;
use super::dump::TocDocument;
use super::restore::{
    Failures, Progress, RestoreOptions, RestoreSummary, analyze, clean, pre_data, run_entry,
    session,
};
use super::restore_sched;
use super::session::sql_error;
use super::toc::{Section, TocEntry};
use crate::error::{Error, ErrorKind, Result};

/// A data stream being loaded.
enum Open {
    Copy {
        client: Client,
        sink: Pin<Box<CopyInSink<Bytes>>>,
        what: String,
    },
    LargeObject {
        client: Client,
        oid: u32,
    },
    /// A stream this restore does not load (a section left out).
    Skipped,
}

/// Restores an archive read front to back from `input`. Returns the summary, whose
/// `held_back` counts the entries that waited for the end of the archive.
pub async fn restore_stream<R: Read + Send + 'static>(
    input: R,
    key: Option<KeySource>,
    target: &Target,
    opts: &RestoreOptions,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<(RestoreSummary, usize)> {
    // the reader is synchronous; it runs on its own thread and hands events over
    let (tx, mut rx) = tokio::sync::mpsc::channel::<coffer_format::Result<Event>>(4);
    std::thread::Builder::new()
        .name("coffer-pipe-reader".into())
        .spawn(move || {
            let mut reader = match StreamReader::new(input, key.as_ref()) {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            loop {
                let next = reader.next_event();
                let stop = !matches!(next, Ok(Some(_)));
                if let Some(item) = next.transpose() {
                    if tx.blocking_send(item).is_err() {
                        return;
                    }
                }
                if stop {
                    return;
                }
            }
        })
        .map_err(|e| Error::new(ErrorKind::Io, format!("starting the pipe reader: {e}")))?;

    let mut summary = RestoreSummary::default();
    let failures = Failures::default();
    let leader = session(target, opts).await?;
    let started = Instant::now();
    let (mut toc_stream, mut toc_json, mut entries): (Option<u32>, Vec<u8>, Option<Vec<TocEntry>>) =
        (None, Vec::new(), None);
    let mut open: HashMap<u32, Open> = HashMap::new();
    let mut idle: Vec<Client> = Vec::new();
    let mut loaded_streams = 0usize;
    while let Some(event) = rx.recv().await {
        let event = event.map_err(|e| {
            Error::from(e).context(format!(
                "reading the archive (after {loaded_streams} data streams were loaded completely)"
            ))
        })?;
        match event {
            Event::Begin { stream, descriptor } if descriptor.kind == "pg.toc" => {
                toc_stream = Some(stream)
            }
            Event::Data { stream, bytes, .. } if Some(stream) == toc_stream => {
                toc_json.extend_from_slice(&bytes)
            }
            Event::End { stream, .. } if Some(stream) == toc_stream => {
                let doc: TocDocument = serde_json::from_slice(&toc_json)
                    .map_err(|e| Error::new(ErrorKind::Corrupt, format!("TOC: {e}")))?;
                let selected = opts.content.omit(opts.selection.apply(&doc.entries)?);
                summary.entries = selected.len();
                before_data(&leader, &selected, opts, &progress, &failures).await?;
                summary.phases.push(("pre-data", started.elapsed()));
                progress(Progress::Phase {
                    name: "data",
                    bytes: 0,
                    entries: 0,
                });
                entries = Some(selected);
            }
            Event::Begin { stream, descriptor } => {
                let toc = entries
                    .as_deref()
                    .ok_or_else(|| Error::new(ErrorKind::Corrupt, "data before the TOC"))?;
                let toc_id = descriptor
                    .meta
                    .get("toc_id")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0) as u32;
                let entry = toc.iter().find(|e| e.id == toc_id);
                let o = match (entry, opts.wants(Section::Data)) {
                    (Some(e), true) => {
                        let client = match idle.pop() {
                            Some(c) => c,
                            None => session(target, opts).await?,
                        };
                        if let Some(data) = &e.data {
                            let sink = client
                                .copy_in::<_, Bytes>(data.load_sql("FROM STDIN").as_str())
                                .await
                                .map_err(|err| {
                                    sql_error(err, &format!("loading {}", data.qualified))
                                });
                            match sink {
                                Ok(sink) => {
                                    summary.tables += 1;
                                    Open::Copy {
                                        client,
                                        sink: Box::pin(sink),
                                        what: data.qualified.clone(),
                                    }
                                }
                                Err(err) => {
                                    // the session is dropped, not reused: see
                                    // restore_sched on a COPY the server refused
                                    failures.tolerate(opts, Err(err))?;
                                    Open::Skipped
                                }
                            }
                        } else if let Some(oid) = e.large_object {
                            Open::LargeObject { client, oid }
                        } else {
                            idle.push(client);
                            Open::Skipped
                        }
                    }
                    _ => Open::Skipped,
                };
                open.insert(stream, o);
            }
            Event::Data {
                stream,
                raw_offset,
                bytes,
                ..
            } => {
                summary.raw_bytes += bytes.len() as u64;
                progress(Progress::Loaded {
                    bytes: bytes.len() as u64,
                });
                match open.get_mut(&stream) {
                    Some(Open::Copy { sink, what, .. }) => {
                        let sent = sink
                            .send(Bytes::from(bytes))
                            .await
                            .map_err(|e| sql_error(e, &format!("loading {what}")));
                        if sent.is_err() {
                            // the rest of this stream is skipped and its session dropped
                            open.insert(stream, Open::Skipped);
                            failures.tolerate(opts, sent)?;
                        }
                    }
                    Some(Open::LargeObject { client, oid }) => {
                        let offset = i64::try_from(raw_offset).unwrap_or(i64::MAX);
                        client
                            .execute(
                                "SELECT pg_catalog.lo_put($1, $2, $3)",
                                &[&*oid, &offset, &bytes],
                            )
                            .await
                            .map_err(|e| sql_error(e, &format!("writing large object {oid}")))?;
                    }
                    _ => {}
                }
            }
            Event::End { stream, .. } => match open.remove(&stream) {
                Some(Open::Copy {
                    client,
                    mut sink,
                    what,
                }) => {
                    let finished = sink
                        .as_mut()
                        .finish()
                        .await
                        .map_err(|e| sql_error(e, &format!("loading {what}")));
                    if finished.is_ok() {
                        loaded_streams += 1;
                        idle.push(client);
                    }
                    failures.tolerate(opts, finished.map(drop))?;
                }
                Some(Open::LargeObject { client, .. }) => {
                    loaded_streams += 1;
                    idle.push(client);
                }
                _ => {}
            },
        }
    }
    // the reader reached the trailer and verified it: the archive is whole
    let entries =
        entries.ok_or_else(|| Error::new(ErrorKind::Corrupt, "the archive has no TOC"))?;
    summary.phases.push(("data", started.elapsed()));
    if opts.wants(Section::Data) {
        for e in entries
            .iter()
            .filter(|e| e.section == Section::Data && e.data.is_none() && e.large_object.is_none())
        {
            leader
                .batch_execute(&e.sql)
                .await
                .map_err(|err| sql_error(err, &format!("restoring {} {}", e.kind, e.name)))?;
        }
    }
    let held_back = entries
        .iter()
        .filter(|e| {
            matches!(
                e.section,
                Section::PostData | Section::Acl | Section::PostAcl
            )
        })
        .count();
    if opts.wants(Section::PostData) {
        let t = Instant::now();
        restore_sched::run(None, &entries, true, target, opts, &progress, &failures).await?;
        for e in entries
            .iter()
            .filter(|e| matches!(e.section, Section::Acl | Section::PostAcl))
        {
            failures.tolerate(opts, run_entry(&leader, e, opts).await)?;
        }
        summary
            .phases
            .push(("post-data and privileges", t.elapsed()));
    }
    if opts.analyze {
        let t = Instant::now();
        failures.tolerate(opts, analyze(target, &entries, opts, &progress).await)?;
        summary.phases.push(("analyze", t.elapsed()));
    }
    failures.into_result()?;
    Ok((summary, held_back))
}

/// `--clean` drops, then pre-data, as soon as the TOC has arrived.
async fn before_data(
    leader: &Client,
    entries: &[TocEntry],
    opts: &RestoreOptions,
    progress: &Arc<dyn Fn(Progress) + Send + Sync>,
    failures: &Failures,
) -> Result<()> {
    if opts.clean {
        progress(Progress::Phase {
            name: "clean",
            bytes: 0,
            entries: 0,
        });
        clean(leader, entries, opts).await?;
    }
    if opts.wants(Section::PreData) {
        // tables load as their frames arrive, over several connections: no COPY FREEZE
        pre_data(leader, entries, opts, progress, failures).await?;
    }
    Ok(())
}
