//! Random-access reading of a sealed archive through a memory map (SPEC.md §13.2): trailer
//! → index → any frame, so restore workers can read frames in parallel.
//!
//! The map is treated as untrusted, volatile bytes: every frame is checked (header against
//! its index record, stored hash, authentication, decoding, raw hash) and decoded into an
//! owned buffer; no view into the map is ever handed out.

#![allow(unsafe_code)] // `Mmap::map` in `FileBytes::open` and `madvise` in `FileBytes::release`; see their SAFETY notes.

use std::fs::File;
use std::ops::{Deref, Range};
use std::path::Path;

use memmap2::Mmap;
use rayon::prelude::*;

use crate::crypto::{ArchiveKeys, KeySource};
use crate::error::{Error, Result};
use crate::frame::{FRAME_HEADER_LEN, FrameHeader, FrameType, META_STREAM};
use crate::header::FileHeader;
use crate::index::{IndexEntry, parse_index};
use crate::manifest::Manifest;
use crate::payload::{Opened, open_payload};
use crate::stream::{StreamDescriptor, StreamEnd};
use crate::stream_reader::check_index_len;
use crate::trailer::{TRAILER_LEN, Trailer};

/// One stream of a mapped archive.
#[derive(Clone, Debug)]
pub struct StreamInfo {
    /// Stream id.
    pub id: u32,
    /// Its STREAM_BEGIN descriptor.
    pub descriptor: StreamDescriptor,
    /// Its STREAM_END summary.
    pub end: StreamEnd,
    /// Positions of its DATA frames in [`MappedArchive::entries`].
    pub data: Range<usize>,
}

/// An archive's bytes: a memory-mapped file, or a buffer (an empty file cannot be mapped;
/// fuzzers and tests hand in buffers).
pub(crate) enum FileBytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl FileBytes {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file =
            File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("reading metadata of {}", path.display()), e))?
            .len();
        if len == 0 {
            return Ok(FileBytes::Owned(Vec::new()));
        }
        // SAFETY: memmap2 requires that the file is not modified while mapped; a concurrent
        // writer could change bytes under us (or truncate the file, raising SIGBUS). coffer
        // archives are write-once: they are written under `.partial` and renamed into
        // place when sealed, so a published archive is not written again. Even if it were,
        // every byte range is hashed before use and decoded into an owned buffer whose hash
        // is checked again, so changed bytes are reported as damage, never returned.
        let map = unsafe { Mmap::map(&file) }
            .map_err(|e| Error::io(format!("memory-mapping {}", path.display()), e))?;
        Ok(FileBytes::Mapped(map))
    }
}

impl FileBytes {
    /// Tells the kernel that this process is done with the whole pages inside `range`
    /// (MADV_DONTNEED), so that reading an archive frame after frame does not leave the
    /// file's pages counted in the process's resident memory: a restore's RSS stays bounded
    /// by the frames in flight, whatever the archive's size. Pages only partly inside are
    /// kept (a neighbouring frame may be in use). A buffer, or a failed call, is left as is:
    /// this is an economy, never needed for correctness.
    pub(crate) fn release(&self, range: Range<u64>) {
        let FileBytes::Mapped(map) = self else {
            return;
        };
        // 4 KiB pages; where pages are larger, memmap2 rounds the start down to its page,
        // which costs at most a refault of a neighbour's bytes
        let page = 4096u64;
        let start = range.start.div_ceil(page) * page;
        let end = (range.end.min(map.len() as u64) / page) * page;
        if end <= start {
            return;
        }
        let (Ok(offset), Ok(len)) = (usize::try_from(start), usize::try_from(end - start)) else {
            return;
        };
        // SAFETY: the map is a read-only shared mapping of a file that is not written
        // again (see `open`). MADV_DONTNEED drops our page-table entries for the range; the
        // next access faults the same bytes back in from the page cache, so any slice into
        // the map still reads what it read before. memmap2 marks the advice unsafe because
        // on private or anonymous mappings the pages would come back zeroed, which is not
        // the case here.
        let _ =
            unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len) };
    }
}

impl Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Owned(v) => v,
        }
    }
}

/// The bytes and keys needed to read single frames; borrowed while the archive is opened.
struct View<'a> {
    bytes: &'a [u8],
    header: &'a FileHeader,
    keys: Option<&'a ArchiveKeys>,
}

impl View<'_> {
    fn header_at(&self, offset: u64) -> Result<FrameHeader> {
        let o = usize::try_from(offset)
            .ok()
            .filter(|&o| o + FRAME_HEADER_LEN <= self.bytes.len());
        let Some(o) = o else {
            return Err(Error::corrupt(
                "frame header",
                offset,
                "offset lies outside the file",
            ));
        };
        FrameHeader::parse(
            self.bytes[o..o + FRAME_HEADER_LEN]
                .try_into()
                .expect("128 bytes"),
            offset,
        )
    }

    fn open_at(&self, h: &FrameHeader, offset: u64) -> Result<Vec<u8>> {
        let start = offset as usize + FRAME_HEADER_LEN;
        let stored = self
            .bytes
            .get(start..start + h.stored_len as usize)
            .ok_or_else(|| {
                Error::corrupt("frame", offset, "payload runs past the end of the file")
            })?;
        let archive_id = &self.header.archive_id;
        match open_payload(
            h,
            stored,
            offset,
            archive_id,
            self.header.encrypted(),
            self.keys,
        )? {
            Opened::Raw(raw) => Ok(raw),
            Opened::StoredHashOnly => unreachable!("keys are present for encrypted archives"),
        }
    }

    /// Reads the MANIFEST (`index_frames` = `None`) or the INDEX frame (with the number of
    /// records the trailer announces).
    fn read_meta(&self, offset: u64, index_frames: Option<u64>) -> Result<Vec<u8>> {
        let h = self.header_at(offset)?;
        let (ty, seq) = if index_frames.is_some() {
            (FrameType::Index, 1)
        } else {
            (FrameType::Manifest, 0)
        };
        if h.frame_type != ty || h.stream_id != META_STREAM || h.seq != seq {
            return Err(Error::corrupt(
                "archive structure",
                offset,
                format!("expected the {ty:?} frame here"),
            ));
        }
        if let Some(n) = index_frames {
            check_index_len(&h, usize::try_from(n).unwrap_or(usize::MAX), offset)?;
        }
        self.open_at(&h, offset)
    }

    fn read_frame(&self, e: &IndexEntry) -> Result<Vec<u8>> {
        let h = self.header_at(e.file_offset)?;
        if IndexEntry::for_frame(&h, e.file_offset) != *e {
            return Err(Error::corrupt(
                "frame",
                e.file_offset,
                format!(
                    "frame header does not match its index record (stream {} seq {})",
                    e.stream_id, e.seq
                ),
            ));
        }
        self.open_at(&h, e.file_offset)
    }
}

/// A sealed archive opened for random access.
pub struct MappedArchive {
    bytes: FileBytes,
    header: FileHeader,
    keys: Option<ArchiveKeys>,
    entries: Vec<IndexEntry>,
    streams: Vec<StreamInfo>,
    manifest: Manifest,
}

impl MappedArchive {
    /// Maps `path` and reads its trailer, index, manifest and every stream's BEGIN and END
    /// frame, checking that they all agree. `key` is needed for an encrypted archive.
    pub fn open(path: &Path, key: Option<&KeySource>) -> Result<Self> {
        Self::from_bytes(FileBytes::open(path)?, key)
    }

    /// Opens an archive held in memory.
    pub fn from_vec(bytes: Vec<u8>, key: Option<&KeySource>) -> Result<Self> {
        Self::from_bytes(FileBytes::Owned(bytes), key)
    }

    fn from_bytes(bytes: FileBytes, key: Option<&KeySource>) -> Result<Self> {
        let (header, header_len) = FileHeader::parse(&bytes)?;
        let keys = match (header.encrypted(), key) {
            (true, Some(k)) => Some(ArchiveKeys::unlock(
                &header.key_slots,
                k,
                header.archive_id,
            )?),
            (true, None) => return Err(Error::KeyRequired),
            (false, _) => None,
        };
        let len = bytes.len() as u64;
        if len < (header_len + TRAILER_LEN) as u64 {
            return Err(Error::Truncated {
                detail: format!("file of {len} bytes has no trailer"),
            });
        }
        let at = len - TRAILER_LEN as u64;
        let tail: &[u8; TRAILER_LEN] = bytes[at as usize..].try_into().expect("64 bytes");
        let (trailer, _) = Trailer::parse(tail, at, header.encrypted(), keys.as_ref())?;
        if trailer.archive_id != header.archive_id {
            return Err(Error::corrupt(
                "trailer",
                at,
                "archive id differs from the header's: spliced files?",
            ));
        }
        if trailer.manifest_offset < header_len as u64 {
            return Err(Error::corrupt(
                "trailer",
                at,
                "manifest offset inside the header",
            ));
        }
        let view = View {
            bytes: &bytes,
            header: &header,
            keys: keys.as_ref(),
        };
        let manifest = Manifest::parse(&view.read_meta(trailer.manifest_offset, None)?)?;
        let index_raw = view.read_meta(trailer.index_offset, Some(trailer.frame_count))?;
        let entries = parse_index(&index_raw, trailer.index_offset)?;
        if entries.len() as u64 != trailer.frame_count {
            return Err(Error::corrupt(
                "index",
                trailer.index_offset,
                "record count differs from the trailer's",
            ));
        }
        check_layout(&entries, header_len as u64, trailer.manifest_offset)?;
        let streams = load_streams(&view, &entries, &manifest)?;
        Ok(MappedArchive {
            bytes,
            header,
            keys,
            entries,
            streams,
            manifest,
        })
    }

    fn view(&self) -> View<'_> {
        View {
            bytes: &self.bytes,
            header: &self.header,
            keys: self.keys.as_ref(),
        }
    }

    /// Reads and checks one frame; its header must match the index record exactly. The
    /// frame's pages of the map are released afterwards (frames are read once).
    pub fn read_frame(&self, e: &IndexEntry) -> Result<Vec<u8>> {
        let frame = self.view().read_frame(e);
        let len = FRAME_HEADER_LEN as u64 + u64::from(e.stored_len);
        self.bytes
            .release(e.file_offset..e.file_offset.saturating_add(len));
        frame
    }

    /// Reads `entries` on the rayon pool, calling `f` with each frame's raw bytes; results
    /// come back in the order of `entries`.
    pub fn par_map<T, F>(&self, entries: &[IndexEntry], f: F) -> Vec<Result<T>>
    where
        T: Send,
        F: Fn(&IndexEntry, Vec<u8>) -> T + Sync,
    {
        entries
            .par_iter()
            .map(|e| self.read_frame(e).map(|raw| f(e, raw)))
            .collect()
    }

    /// The file header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Every index record, sorted by (stream, seq).
    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// The streams, by id.
    pub fn streams(&self) -> &[StreamInfo] {
        &self.streams
    }

    /// The DATA frame records of one stream.
    pub fn data_entries(&self, stream: &StreamInfo) -> &[IndexEntry] {
        &self.entries[stream.data.clone()]
    }

    /// Size of the archive file.
    pub fn file_len(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// Frames must lie between the header and the manifest and must not overlap.
fn check_layout(entries: &[IndexEntry], start: u64, end: u64) -> Result<()> {
    let mut spans: Vec<(u64, u64)> = entries
        .iter()
        .map(|e| (e.file_offset, e.frame_len()))
        .collect();
    spans.sort_unstable();
    let mut cursor = start;
    for (off, len) in spans {
        if off < cursor || off.checked_add(len).is_none_or(|e| e > end) {
            return Err(Error::corrupt(
                "index",
                off,
                "frame overlaps another or lies outside the frame area",
            ));
        }
        cursor = off + len;
    }
    Ok(())
}

/// Groups index records into streams, checks each group's shape (BEGIN, dense DATA, END,
/// contiguous raw offsets), and reads its BEGIN and END frames, which must agree with the
/// index and the manifest.
fn load_streams(
    view: &View<'_>,
    entries: &[IndexEntry],
    manifest: &Manifest,
) -> Result<Vec<StreamInfo>> {
    let mut streams = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        let id = entries[i].stream_id;
        let n = entries[i..]
            .iter()
            .take_while(|e| e.stream_id == id)
            .count();
        let group = &entries[i..i + n];
        let bad =
            |d: String| Error::corrupt("index", group[0].file_offset, format!("stream {id}: {d}"));
        if n < 2 {
            return Err(bad("stream has no end".into()));
        }
        let mut raw_offset = 0;
        for (k, e) in group.iter().enumerate() {
            let want = match k {
                0 => FrameType::StreamBegin,
                k if k == n - 1 => FrameType::StreamEnd,
                _ => FrameType::Data,
            };
            if e.seq != k as u64 || e.frame_type != want {
                return Err(bad(format!(
                    "record {k} is {:?} seq {}, expected {want:?} seq {k}",
                    e.frame_type, e.seq
                )));
            }
            if e.raw_offset != raw_offset {
                return Err(bad(format!("raw offset chain broken at seq {k}")));
            }
            if want == FrameType::Data {
                raw_offset += u64::from(e.raw_len);
            }
        }
        let descriptor = StreamDescriptor::parse(&view.read_frame(&group[0])?, id)?;
        let end_entry = group[n - 1];
        let end = StreamEnd::parse(&view.read_frame(&end_entry)?, id, end_entry.file_offset)?;
        if end.data_frames != (n - 2) as u64 || end.raw_len != raw_offset {
            return Err(bad("end summary disagrees with the index".into()));
        }
        let agrees = manifest
            .streams
            .iter()
            .any(|s| s.id == id && s.descriptor == descriptor && s.agrees_with(&end));
        if !agrees {
            return Err(Error::Manifest(format!(
                "stream {id} disagrees with the manifest"
            )));
        }
        streams.push(StreamInfo {
            id,
            descriptor,
            end,
            data: i + 1..i + n - 1,
        });
        i += n;
    }
    if streams.len() != manifest.streams.len() {
        return Err(Error::Manifest(
            "manifest lists streams the index does not have".into(),
        ));
    }
    Ok(streams)
}
