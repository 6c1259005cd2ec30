//! Reading an archive front to back from any `Read` (SPEC.md §13.1): a pipe, stdin, a
//! socket. No index is needed and nothing is buffered beyond one frame; every check that
//! needs the whole archive (stream ends, manifest, index, trailer) is made when the reader
//! reaches it, so a reader that reaches the end has verified the archive completely.

use std::collections::HashMap;
use std::io::Read;

use crate::crypto::{ArchiveKeys, KeySource};
use crate::error::{Error, Result};
use crate::frame::{FRAME_HEADER_LEN, FrameHeader, FrameType};
use crate::header::FileHeader;
use crate::index::{IndexEntry, encode_index};
use crate::manifest::Manifest;
use crate::payload::{Opened, open_payload};
use crate::stream::{StreamDescriptor, StreamEnd, StreamTally};
use crate::trailer::{TRAILER_LEN, Trailer};

/// One thing read from an archive, in file order.
#[derive(Debug)]
pub enum Event {
    /// A stream starts.
    Begin {
        /// Stream id.
        stream: u32,
        /// What it holds.
        descriptor: StreamDescriptor,
    },
    /// A verified DATA frame.
    Data {
        /// Stream id.
        stream: u32,
        /// Sequence number (1 for the first DATA frame).
        seq: u64,
        /// Offset of these bytes in the stream.
        raw_offset: u64,
        /// The frame's raw bytes.
        bytes: Vec<u8>,
    },
    /// A stream ended, and its digest matched.
    End {
        /// Stream id.
        stream: u32,
        /// Its summary.
        end: StreamEnd,
    },
}

#[derive(PartialEq, Eq)]
enum Phase {
    Frames,
    AfterManifest,
    Done,
}

/// A streaming archive reader.
pub struct StreamReader<R: Read> {
    r: R,
    header: FileHeader,
    keys: Option<ArchiveKeys>,
    offset: u64,
    tallies: HashMap<u32, (StreamTally, String)>,
    entries: Vec<IndexEntry>,
    manifest: Option<(Manifest, u64, u32)>,
    phase: Phase,
}

impl<R: Read> StreamReader<R> {
    /// Reads the file header; `key` is needed for an encrypted archive.
    pub fn new(mut r: R, key: Option<&KeySource>) -> Result<Self> {
        let (header, len) = FileHeader::read_from(&mut r)?;
        let keys = match (header.encrypted(), key) {
            (true, Some(k)) => Some(ArchiveKeys::unlock(
                &header.key_slots,
                k,
                header.archive_id,
            )?),
            (true, None) => return Err(Error::KeyRequired),
            (false, _) => None,
        };
        Ok(StreamReader {
            r,
            header,
            keys,
            offset: len as u64,
            tallies: HashMap::new(),
            entries: Vec::new(),
            manifest: None,
            phase: Phase::Frames,
        })
    }

    /// The file header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// The manifest, once the reader has passed it (after the last `Event`).
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref().map(|(m, _, _)| m)
    }

    /// The next event, or `None` once the trailer has been read and every check passed.
    pub fn next_event(&mut self) -> Result<Option<Event>> {
        while self.phase != Phase::Done {
            let at = self.offset;
            let mut hb = [0u8; FRAME_HEADER_LEN];
            self.fill(&mut hb, "a frame header")?;
            let h = FrameHeader::parse(&hb, at)?;
            if h.frame_type == FrameType::Index {
                check_index_len(&h, self.entries.len(), at)?;
            }
            let stored = self.payload(h.stored_len)?;
            let keys = self.keys.as_ref();
            let raw = match open_payload(
                &h,
                &stored,
                at,
                &self.header.archive_id,
                self.header.encrypted(),
                keys,
            )? {
                Opened::Raw(raw) => raw,
                Opened::StoredHashOnly => unreachable!("keys are present for encrypted archives"),
            };
            drop(stored);
            if let Some(event) = self.frame(&h, at, raw)? {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }

    fn frame(&mut self, h: &FrameHeader, at: u64, raw: Vec<u8>) -> Result<Option<Event>> {
        let bad = |d: String| Error::corrupt("archive structure", at, d);
        if h.frame_type.is_stream_frame() {
            if self.phase != Phase::Frames {
                return Err(bad("stream frame after the manifest".into()));
            }
            self.entries.push(IndexEntry::for_frame(h, at));
        }
        match h.frame_type {
            FrameType::StreamBegin => {
                let descriptor = StreamDescriptor::parse(&raw, h.stream_id)?;
                if self.tallies.contains_key(&h.stream_id) {
                    return Err(bad(format!("stream {} begins twice", h.stream_id)));
                }
                let mut tally = StreamTally::new();
                tally
                    .accept(h)
                    .map_err(|d| bad(format!("stream {}: {d}", h.stream_id)))?;
                self.tallies
                    .insert(h.stream_id, (tally, descriptor.name.clone()));
                Ok(Some(Event::Begin {
                    stream: h.stream_id,
                    descriptor,
                }))
            }
            FrameType::Data | FrameType::StreamEnd => {
                let (tally, _) = self
                    .tallies
                    .get_mut(&h.stream_id)
                    .ok_or_else(|| bad(format!("stream {} has no beginning", h.stream_id)))?;
                let before = tally.summary();
                tally
                    .accept(h)
                    .map_err(|d| bad(format!("stream {}: {d}", h.stream_id)))?;
                if h.frame_type == FrameType::Data {
                    return Ok(Some(Event::Data {
                        stream: h.stream_id,
                        seq: h.seq,
                        raw_offset: h.raw_offset,
                        bytes: raw,
                    }));
                }
                let end = StreamEnd::parse(&raw, h.stream_id, at)?;
                if end != before {
                    return Err(bad(format!(
                        "stream {}: end summary disagrees with its frames",
                        h.stream_id
                    )));
                }
                Ok(Some(Event::End {
                    stream: h.stream_id,
                    end,
                }))
            }
            FrameType::Manifest => {
                if self.phase != Phase::Frames || h.seq != 0 || h.last() {
                    return Err(bad("misplaced manifest frame".into()));
                }
                if let Some((id, (_, name))) = self.tallies.iter().find(|(_, (t, _))| !t.ended()) {
                    return Err(Error::Truncated {
                        detail: format!("stream {id} ({name}) has no end"),
                    });
                }
                let manifest = Manifest::parse(&raw)?;
                let agrees = manifest.streams.len() == self.tallies.len()
                    && manifest.streams.iter().all(|s| {
                        self.tallies
                            .get(&s.id)
                            .is_some_and(|(t, _)| s.agrees_with(&t.summary()))
                    });
                if !agrees {
                    return Err(bad("manifest disagrees with the streams read".into()));
                }
                self.manifest = Some((manifest, at, h.stored_len));
                self.phase = Phase::AfterManifest;
                Ok(None)
            }
            FrameType::Index => {
                if self.phase != Phase::AfterManifest || h.seq != 1 || !h.last() {
                    return Err(bad("misplaced index frame".into()));
                }
                if raw != encode_index(&mut self.entries) {
                    return Err(bad("index disagrees with the frames read".into()));
                }
                self.trailer(at, h.stored_len)?;
                self.phase = Phase::Done;
                Ok(None)
            }
            FrameType::Ancillary(_) => Ok(None),
        }
    }

    fn trailer(&mut self, index_offset: u64, index_stored_len: u32) -> Result<()> {
        let at = self.offset;
        let mut tb = [0u8; TRAILER_LEN];
        self.fill(&mut tb, "the trailer")?;
        let (t, _) = Trailer::parse(&tb, at, self.header.encrypted(), self.keys.as_ref())?;
        let (_, m_off, m_len) = self.manifest.as_ref().expect("manifest read before index");
        let expected = Trailer {
            index_offset,
            index_stored_len,
            manifest_offset: *m_off,
            manifest_stored_len: *m_len,
            frame_count: self.entries.len() as u64,
            archive_id: self.header.archive_id,
        };
        if t != expected {
            return Err(Error::corrupt(
                "trailer",
                at,
                "trailer disagrees with the archive read",
            ));
        }
        let mut extra = [0u8; 1];
        match self.r.read(&mut extra) {
            Ok(0) => Ok(()),
            Ok(_) => Err(Error::corrupt(
                "archive structure",
                self.offset,
                "bytes after the trailer",
            )),
            Err(e) => Err(Error::io("reading the archive", e)),
        }
    }

    /// Reads a payload into a buffer that grows with the bytes that actually arrive, so a
    /// hostile length on a short input cannot make the reader allocate it up front.
    fn payload(&mut self, len: u32) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        (&mut self.r)
            .take(u64::from(len))
            .read_to_end(&mut buf)
            .map_err(|e| Error::io("reading the archive", e))?;
        if buf.len() != len as usize {
            return Err(Error::Truncated {
                detail: format!(
                    "input ends at offset {} inside a frame payload, before the archive was sealed",
                    self.offset + buf.len() as u64
                ),
            });
        }
        self.offset += u64::from(len);
        Ok(buf)
    }

    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        self.r.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Truncated {
                    detail: format!(
                        "input ends at or after offset {} inside {what}, before the archive was sealed",
                        self.offset
                    ),
                }
            } else {
                Error::io("reading the archive", e)
            }
        })?;
        self.offset += buf.len() as u64;
        Ok(())
    }
}

/// An INDEX frame holds exactly one record per stream frame before it; checked before its
/// payload is decoded, so its raw length cannot be used as a decompression bomb.
pub(crate) fn check_index_len(h: &FrameHeader, frames: usize, at: u64) -> Result<()> {
    let expected = (frames as u64).saturating_mul(crate::index::INDEX_RECORD_LEN as u64);
    if u64::from(h.raw_len) != expected {
        return Err(Error::corrupt(
            "index",
            at,
            format!(
                "raw length {} where {frames} records need {expected}",
                h.raw_len
            ),
        ));
    }
    Ok(())
}
