//! The forward scan (SPEC.md §14): walks a byte range frame by frame without trusting the
//! index, and after damage resynchronises on the frame sync marker. Verify and salvage
//! both stand on it, so they agree on what is intact.

use memchr::memmem;
use rayon::prelude::*;

use crate::crypto::ArchiveKeys;
use crate::frame::{FRAME_HEADER_LEN, FrameHeader, FrameType, SYNC};
use crate::payload::{Opened, open_payload};

/// A frame header found by the scan, with the outcome of its payload checks.
pub(crate) struct Found {
    pub(crate) offset: u64,
    pub(crate) header: FrameHeader,
    /// `Ok(Some(raw))` for intact metadata-carrying frames (BEGIN, END, MANIFEST, INDEX),
    /// `Ok(None)` for intact DATA frames (or any frame checked without a key), `Err` with
    /// what failed.
    pub(crate) payload: Result<Option<Vec<u8>>, String>,
}

/// A damaged region: bytes that are not part of any valid frame.
pub(crate) struct Gap {
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) reason: String,
}

/// Walks `bytes[start..end]`. A frame is "found" when its header passes SPEC.md §8.1
/// steps 1–2 and its payload lies inside the range; payload checks (steps 3–6) run in
/// parallel afterwards. `encrypted` is the archive's flag (`None` when the file header is
/// unreadable: each frame's own flag is then taken).
/// Told a frame's byte range once the scan is done with it (a memory map lets its pages
/// go; bytes in memory ignore it).
pub(crate) type Release<'a> = dyn Fn(std::ops::Range<u64>) + Sync + 'a;

pub(crate) fn scan(
    bytes: &[u8],
    start: usize,
    end: usize,
    archive_id: &[u8; 16],
    encrypted: Option<bool>,
    keys: Option<&ArchiveKeys>,
    release: &Release<'_>,
) -> (Vec<Found>, Vec<Gap>) {
    let mut headers = Vec::new();
    let mut gaps = Vec::new();
    let finder = memmem::Finder::new(&SYNC);
    let mut at = start;
    while at < end {
        match frame_at(bytes, at, end) {
            Ok(h) => {
                let len = h.frame_len() as usize;
                headers.push((at as u64, h));
                at += len;
            }
            Err(reason) => {
                let next = finder.find(&bytes[at + 1..end]).map_or(end, |i| at + 1 + i);
                gaps.push(Gap {
                    offset: at as u64,
                    len: (next - at) as u64,
                    reason,
                });
                at = next;
            }
        }
    }
    let found = headers
        .into_par_iter()
        .map(|(offset, header)| {
            let o = offset as usize + FRAME_HEADER_LEN;
            let stored = &bytes[o..o + header.stored_len as usize];
            let enc = encrypted.unwrap_or_else(|| header.encrypted());
            let keep = header.frame_type != FrameType::Data;
            let payload = match open_payload(&header, stored, offset, archive_id, enc, keys) {
                Ok(Opened::Raw(raw)) => Ok(keep.then_some(raw)),
                Ok(Opened::StoredHashOnly) => Ok(None),
                // the stream, seq and offset are reported beside the detail already
                Err(crate::Error::DamagedFrame { detail, .. }) => Err(detail),
                Err(e) => Err(e.to_string()),
            };
            release(offset..offset + FRAME_HEADER_LEN as u64 + u64::from(header.stored_len));
            Found {
                offset,
                header,
                payload,
            }
        })
        .collect();
    (found, gaps)
}

fn frame_at(bytes: &[u8], at: usize, end: usize) -> Result<FrameHeader, String> {
    let Some(hb) = bytes
        .get(at..at + FRAME_HEADER_LEN)
        .filter(|_| at + FRAME_HEADER_LEN <= end)
    else {
        return Err(format!(
            "{} stray bytes where a frame header should start",
            end - at
        ));
    };
    let h = FrameHeader::parse(hb.try_into().expect("128 bytes"), at as u64)
        .map_err(|e| e.to_string())?;
    if at as u64 + h.frame_len() > end as u64 {
        return Err(format!(
            "frame of stream {} seq {} is cut short: it needs {} bytes, {} remain",
            h.stream_id,
            h.seq,
            h.frame_len(),
            end - at
        ));
    }
    Ok(h)
}
