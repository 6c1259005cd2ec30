//! `salvage` (SPEC.md §14.2): writes a new, sealed archive holding every intact frame of a
//! damaged or truncated one. The input is only read, never modified.
//!
//! Intact DATA frames are decoded and written again through an [`ArchiveWriter`], so the
//! output verifies clean and restores like any archive; what was lost is recorded in the
//! output manifest's `salvage` member, per stream.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::crypto::{ArchiveKeys, KeySource};
use crate::error::{Error, Result};
use crate::frame::{FRAME_HEADER_LEN, FrameType};
use crate::manifest::SalvagedStream;
use crate::payload::{Opened, open_payload};
use crate::stream::{StreamDescriptor, StreamEnd};
use crate::verify::{Analysis, Problem, analyse, read_file};
use crate::writer::{ArchiveWriter, StreamWriter, WriteSummary, WriterOptions};

/// What salvage did.
#[derive(Debug)]
pub struct SalvageReport {
    /// Per stream of the input: what was recovered.
    pub streams: Vec<SalvagedStream>,
    /// The damage found in the input.
    pub problems: Vec<Problem>,
    /// The written archive.
    pub written: WriteSummary,
}

struct Recovering {
    writer: StreamWriter,
    new_id: u32,
    seqs: BTreeSet<u64>,
    end: Option<StreamEnd>,
}

/// Salvages `input` into a new archive at `output`. An encrypted input needs its key, and
/// the output is encrypted with the same key (a fresh file key and archive id).
pub fn salvage(
    input: &Path,
    output: &Path,
    key: Option<KeySource>,
    zstd_level: i32,
) -> Result<SalvageReport> {
    let bytes = read_file(input)?;
    // the frames are read again to be copied: their pages are kept
    let (a, keys) = analyse(&bytes, key.as_ref(), &|_| {})?;
    if a.header.as_ref().is_some_and(|h| h.encrypted()) && keys.is_none() {
        return Err(Error::KeyRequired);
    }
    let options = WriterOptions {
        zstd_level,
        encryption: key,
        ..WriterOptions::default()
    };
    let writer = ArchiveWriter::create(output, options)?;
    let streams = recover(&bytes, &a, keys.as_ref(), &writer)?;
    let app = a
        .manifest
        .as_ref()
        .map_or(serde_json::Value::Null, |m| m.app.clone());
    let written = writer.finish_with(app, Some(streams.clone()))?;
    Ok(SalvageReport {
        streams,
        problems: a.problems,
        written,
    })
}

/// Walks the intact frames in file order and writes every intact DATA frame again.
fn recover(
    bytes: &[u8],
    a: &Analysis,
    keys: Option<&ArchiveKeys>,
    writer: &ArchiveWriter,
) -> Result<Vec<SalvagedStream>> {
    let archive_id = a.header.as_ref().map_or([0; 16], |h| h.archive_id);
    let encrypted = a.header.as_ref().is_some_and(|h| h.encrypted());
    let mut open: BTreeMap<u32, Recovering> = BTreeMap::new();
    for f in a
        .found
        .iter()
        .filter(|f| f.payload.is_ok() && f.header.frame_type.is_stream_frame())
    {
        let id = f.header.stream_id;
        let r = match open.entry(id) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let descriptor = match (&f.header.frame_type, &f.payload) {
                    (FrameType::StreamBegin, Ok(Some(raw))) => StreamDescriptor::parse(raw, id)?,
                    _ => StreamDescriptor::new("unknown", format!("stream {id} (descriptor lost)")),
                };
                let w = writer.stream(descriptor)?;
                v.insert(Recovering {
                    new_id: w.id(),
                    writer: w,
                    seqs: BTreeSet::new(),
                    end: None,
                })
            }
        };
        match f.header.frame_type {
            FrameType::Data if r.seqs.insert(f.header.seq) => {
                let o = f.offset as usize + FRAME_HEADER_LEN;
                let stored = &bytes[o..o + f.header.stored_len as usize];
                match open_payload(&f.header, stored, f.offset, &archive_id, encrypted, keys)? {
                    Opened::Raw(raw) => r.writer.write_frame(&raw)?,
                    Opened::StoredHashOnly => return Err(Error::KeyRequired),
                }
            }
            FrameType::StreamEnd => {
                if let Ok(Some(raw)) = &f.payload {
                    r.end = StreamEnd::parse(raw, id, f.offset).ok();
                }
            }
            _ => {}
        }
    }
    let mut report = Vec::with_capacity(open.len());
    for (original_id, r) in open {
        let last = r
            .end
            .map_or_else(|| r.seqs.last().copied().unwrap_or(0), |e| e.data_frames);
        let lost_seqs: Vec<u64> = (1..=last).filter(|s| !r.seqs.contains(s)).collect();
        let status = match (r.end.is_some(), lost_seqs.is_empty()) {
            (true, true) => "complete",
            (false, _) => "truncated",
            (true, false) => "holes",
        };
        report.push(SalvagedStream {
            id: r.new_id,
            original_id,
            status: status.into(),
            recovered_frames: r.seqs.len() as u64,
            lost_seqs,
        });
        r.writer.finish()?;
    }
    Ok(report)
}
