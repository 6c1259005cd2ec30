//! `verify` (SPEC.md §14.1): every check the format has, over the whole file, without a
//! database. Unlike the readers, which stop at the first error, verify carries on past
//! damage and reports each problem with its stream, sequence and byte offset.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::crypto::{ArchiveKeys, KeySource};
use crate::error::{Error, Result};
use crate::frame::{FrameType, META_STREAM};
use crate::header::{FIXED_HEADER_LEN, FileHeader};
use crate::index::{IndexEntry, encode_index};
use crate::manifest::Manifest;
use crate::scan::{Found, Release, scan};
use crate::stream::{StreamDescriptor, StreamEnd, StreamTally};
use crate::trailer::{TRAILER_LEN, Trailer};

/// One problem found, with where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Byte offset in the file.
    pub offset: u64,
    /// Stream of the frame concerned, if any.
    pub stream: Option<u32>,
    /// Sequence number of the frame concerned, if any.
    pub seq: Option<u64>,
    /// What is wrong.
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "offset {}", self.offset)?;
        if let Some(s) = self.stream {
            write!(f, ", stream {s}")?;
        }
        if let Some(q) = self.seq {
            write!(f, ", seq {q}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// What verify found of one stream.
#[derive(Clone, Debug, Serialize)]
pub struct StreamStatus {
    /// Stream id.
    pub id: u32,
    /// Its descriptor, if its BEGIN frame is intact.
    pub descriptor: Option<StreamDescriptor>,
    /// DATA frames found with an intact header.
    pub data_frames: u64,
    /// Raw bytes those frames hold.
    pub raw_len: u64,
    /// True when the stream has a valid END that agrees with its frames.
    pub complete: bool,
}

/// The outcome of `verify`.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// Hex archive id (from the header, when readable).
    pub archive_id: String,
    /// The archive is encrypted.
    pub encrypted: bool,
    /// False for a key-less scrub of an encrypted archive: only stored hashes were checked.
    pub payloads_checked: bool,
    /// A valid trailer seals the file.
    pub sealed: bool,
    /// File size.
    pub file_len: u64,
    /// Frames with an intact header, metadata frames included.
    pub frames: u64,
    /// Per stream, by id.
    pub streams: Vec<StreamStatus>,
    /// Every problem, in file order.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What the scan of a file established; shared with salvage.
pub(crate) struct Analysis {
    pub(crate) header: Option<FileHeader>,
    pub(crate) found: Vec<Found>,
    pub(crate) problems: Vec<Problem>,
    pub(crate) sealed: bool,
    pub(crate) manifest: Option<Manifest>,
}

/// Verifies the archive at `path`. Returns `Err` only when verification cannot start (the
/// file cannot be read, is not an archive, or the key is wrong); damage is in the report.
pub fn verify(path: &Path, key: Option<&KeySource>) -> Result<VerifyReport> {
    let bytes = read_file(path)?;
    // each frame's pages of the map are let go once checked: verifying a huge archive
    // does not leave it all counted in the process's resident memory
    report(&bytes, key, &|range| bytes.release(range))
}

/// [`verify`] over bytes in memory.
pub fn verify_bytes(bytes: &[u8], key: Option<&KeySource>) -> Result<VerifyReport> {
    report(bytes, key, &|_| {})
}

/// [`verify`]; `release` is told each frame's byte range once it has been checked.
fn report(bytes: &[u8], key: Option<&KeySource>, release: &Release<'_>) -> Result<VerifyReport> {
    let (a, keys) = analyse(bytes, key, release)?;
    let mut problems = a.problems;
    let mut tallies: BTreeMap<u32, (StreamTally, Option<StreamDescriptor>, bool)> = BTreeMap::new();
    let mut frames = 0;
    for f in &a.found {
        frames += 1;
        if !f.header.frame_type.is_stream_frame() {
            continue;
        }
        let (tally, descriptor, end_ok) = tallies
            .entry(f.header.stream_id)
            .or_insert_with(|| (StreamTally::new(), None, false));
        let before = tally.summary();
        if let Err(d) = tally.accept(&f.header) {
            problems.push(problem(f, d));
            continue;
        }
        match (&f.header.frame_type, &f.payload) {
            (FrameType::StreamBegin, Ok(Some(raw))) => {
                match StreamDescriptor::parse(raw, f.header.stream_id) {
                    Ok(d) => *descriptor = Some(d),
                    Err(e) => problems.push(problem(f, e.to_string())),
                }
            }
            (FrameType::StreamEnd, Ok(Some(raw))) => {
                match StreamEnd::parse(raw, f.header.stream_id, f.offset) {
                    Ok(end) if end == before => *end_ok = true,
                    Ok(_) => problems.push(problem(
                        f,
                        "end summary disagrees with the stream's frames".into(),
                    )),
                    Err(e) => problems.push(problem(f, e.to_string())),
                }
            }
            _ => {}
        }
    }
    let header = a.header.as_ref();
    // A key-less scrub of an encrypted archive cannot read END payloads: a stream whose END
    // frame is present, in place and intact as stored counts as complete.
    let payloads_checked = keys.is_some() || !header.is_some_and(FileHeader::encrypted);
    let streams: Vec<StreamStatus> = tallies
        .iter()
        .map(|(&id, (t, d, end_ok))| {
            let s = t.summary();
            StreamStatus {
                id,
                descriptor: d.clone(),
                data_frames: s.data_frames,
                raw_len: s.raw_len,
                complete: t.ended() && (*end_ok || !payloads_checked),
            }
        })
        .collect();
    for s in streams.iter().filter(|s| !s.complete) {
        let name = s.descriptor.as_ref().map_or("?", |d| d.name.as_str());
        problems.push(Problem {
            offset: bytes.len() as u64,
            stream: Some(s.id),
            seq: None,
            detail: format!(
                "stream {} ({name}) is incomplete: no valid end after {} data frames",
                s.id, s.data_frames
            ),
        });
    }
    if a.sealed {
        check_meta(&a.found, a.manifest.as_ref(), &tallies, &mut problems);
    }
    problems.sort_by_key(|p| p.offset);
    Ok(VerifyReport {
        archive_id: header.map_or_else(String::new, |h| crate::manifest::hex(&h.archive_id)),
        encrypted: header.is_some_and(FileHeader::encrypted),
        payloads_checked,
        sealed: a.sealed,
        file_len: bytes.len() as u64,
        frames,
        streams,
        problems,
    })
}

/// The manifest and index must agree with the frames that were actually found.
fn check_meta(
    found: &[Found],
    manifest: Option<&Manifest>,
    tallies: &BTreeMap<u32, (StreamTally, Option<StreamDescriptor>, bool)>,
    problems: &mut Vec<Problem>,
) {
    let mut entries: Vec<IndexEntry> = found
        .iter()
        .filter(|f| f.header.frame_type.is_stream_frame())
        .map(|f| IndexEntry::for_frame(&f.header, f.offset))
        .collect();
    let expected_index = encode_index(&mut entries);
    for f in found.iter().filter(|f| f.header.stream_id == META_STREAM) {
        match (&f.header.frame_type, &f.payload) {
            (FrameType::Index, Ok(Some(raw))) if *raw != expected_index => {
                problems.push(problem(
                    f,
                    "index disagrees with the frames in the file".into(),
                ));
            }
            _ => {}
        }
    }
    if let Some(m) = manifest {
        let agrees = m.streams.len() == tallies.len()
            && m.streams.iter().all(|s| {
                tallies.get(&s.id).is_some_and(|(t, d, _)| {
                    s.agrees_with(&t.summary()) && d.as_ref() == Some(&s.descriptor)
                })
            });
        if !agrees {
            let at = found
                .iter()
                .find(|f| f.header.frame_type == FrameType::Manifest)
                .map_or(0, |f| f.offset);
            problems.push(Problem {
                offset: at,
                stream: Some(META_STREAM),
                seq: Some(0),
                detail: "manifest disagrees with the streams in the file".into(),
            });
        }
    }
}

fn problem(f: &Found, detail: String) -> Problem {
    Problem {
        offset: f.offset,
        stream: Some(f.header.stream_id),
        seq: Some(f.header.seq),
        detail,
    }
}

/// Header, keys, trailer and the scan: the part of verification salvage needs too.
pub(crate) fn analyse(
    bytes: &[u8],
    key: Option<&KeySource>,
    release: &Release<'_>,
) -> Result<(Analysis, Option<ArchiveKeys>)> {
    let mut problems = Vec::new();
    let (header, start) = match FileHeader::parse(bytes) {
        Ok((h, len)) => (Some(h), len),
        Err(
            e @ (Error::NotAnArchive
            | Error::UnsupportedVersion { .. }
            | Error::UnsupportedFeature { .. }),
        ) => {
            return Err(e);
        }
        Err(e) => {
            if bytes.len() < FIXED_HEADER_LEN {
                return Err(e);
            }
            problems.push(Problem {
                offset: 0,
                stream: None,
                seq: None,
                detail: format!("file header: {e}"),
            });
            (None, FIXED_HEADER_LEN)
        }
    };
    let keys = match (&header, key) {
        (Some(h), Some(k)) if h.encrypted() => {
            Some(ArchiveKeys::unlock(&h.key_slots, k, h.archive_id)?)
        }
        _ => None,
    };
    let archive_id = header.as_ref().map_or([0; 16], |h| h.archive_id);
    let encrypted = header.as_ref().map(FileHeader::encrypted);
    let mut end = bytes.len();
    let mut trailer = None;
    if let (Some(h), true) = (&header, bytes.len() >= start + TRAILER_LEN) {
        let at = bytes.len() - TRAILER_LEN;
        let tb: &[u8; TRAILER_LEN] = bytes[at..].try_into().expect("64 bytes");
        match Trailer::parse(tb, at as u64, h.encrypted(), keys.as_ref()) {
            Ok((t, _)) if t.archive_id == h.archive_id && t.manifest_offset >= start as u64 => {
                trailer = Some(t);
                end = at;
            }
            Ok(_) => problems.push(Problem {
                offset: at as u64,
                stream: None,
                seq: None,
                detail: "trailer belongs to another archive or points into the header".into(),
            }),
            Err(e) => problems.push(Problem {
                offset: at as u64,
                stream: None,
                seq: None,
                detail: format!("not sealed: {e}"),
            }),
        }
    }
    if header.is_none() {
        problems.push(Problem {
            offset: bytes.len() as u64,
            stream: None,
            seq: None,
            detail: "not sealed: header unreadable, trailer not checked".into(),
        });
    } else if bytes.len() < start + TRAILER_LEN {
        problems.push(Problem {
            offset: bytes.len() as u64,
            stream: None,
            seq: None,
            detail: "not sealed: the file ends before there is room for a trailer".into(),
        });
    }
    let (found, gaps) = scan(
        bytes,
        start,
        end,
        &archive_id,
        encrypted,
        keys.as_ref(),
        release,
    );
    for g in gaps {
        problems.push(Problem {
            offset: g.offset,
            stream: None,
            seq: None,
            detail: format!("{} damaged bytes: {}", g.len, g.reason),
        });
    }
    problems.extend(
        found
            .iter()
            .filter_map(|f| f.payload.as_ref().err().map(|d| problem(f, d.clone()))),
    );
    let mut manifest = None;
    if let Some(t) = trailer {
        let at = |off: u64, ty: FrameType| {
            found
                .iter()
                .find(|f| f.offset == off && f.header.frame_type == ty)
        };
        match at(t.manifest_offset, FrameType::Manifest) {
            Some(Found {
                payload: Ok(Some(raw)),
                ..
            }) => match Manifest::parse(raw) {
                Ok(m) => manifest = Some(m),
                Err(e) => problems.push(Problem {
                    offset: t.manifest_offset,
                    stream: Some(META_STREAM),
                    seq: Some(0),
                    detail: e.to_string(),
                }),
            },
            Some(_) => {} // its payload problem is reported with the frame
            None => problems.push(Problem {
                offset: t.manifest_offset,
                stream: Some(META_STREAM),
                seq: Some(0),
                detail: "trailer points to no manifest frame".into(),
            }),
        }
        if at(t.index_offset, FrameType::Index).is_none() {
            problems.push(Problem {
                offset: t.index_offset,
                stream: Some(META_STREAM),
                seq: Some(1),
                detail: "trailer points to no index frame".into(),
            });
        }
        let indexed = found
            .iter()
            .filter(|f| f.header.frame_type.is_stream_frame())
            .count() as u64;
        if indexed != t.frame_count {
            problems.push(Problem {
                offset: bytes.len() as u64 - TRAILER_LEN as u64,
                stream: None,
                seq: None,
                detail: format!(
                    "trailer counts {} frames, the file has {indexed}",
                    t.frame_count
                ),
            });
        }
    }
    problems.sort_by_key(|p| p.offset);
    Ok((
        Analysis {
            header,
            found,
            problems,
            sealed: trailer.is_some(),
            manifest,
        },
        keys,
    ))
}

pub(crate) fn read_file(path: &Path) -> Result<crate::mapped::FileBytes> {
    crate::mapped::FileBytes::open(path)
}
