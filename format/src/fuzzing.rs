//! Entry points for the cargo-fuzz targets in `fuzz/`: each feeds arbitrary bytes to one
//! parser. They exist so the targets stay one-liners and can reach crate-private parsers.
//! None of them may panic, whatever the input.

use crate::frame::{FRAME_HEADER_LEN, FrameHeader};
use crate::header::FileHeader;
use crate::index::parse_index;
use crate::manifest::Manifest;
use crate::mapped::MappedArchive;
use crate::stream::{StreamDescriptor, StreamEnd};
use crate::stream_reader::StreamReader;
use crate::trailer::{TRAILER_LEN, Trailer};
use crate::verify::verify_bytes;

/// The file header parser.
pub fn file_header(data: &[u8]) {
    let _ = FileHeader::parse(data);
    let _ = FileHeader::read_from(&mut &data[..]);
}

/// The frame header parser.
pub fn frame_header(data: &[u8]) {
    if let Some(b) = data.get(..FRAME_HEADER_LEN) {
        let _ = FrameHeader::parse(b.try_into().expect("128 bytes"), 0);
    }
}

/// The index, trailer, stream descriptor and stream end parsers.
pub fn index_and_trailer(data: &[u8]) {
    let _ = parse_index(data, 0);
    if let Some(b) = data.get(..TRAILER_LEN) {
        let b: &[u8; TRAILER_LEN] = b.try_into().expect("64 bytes");
        let _ = Trailer::parse(b, data.len() as u64, false, None);
        let _ = Trailer::parse(b, data.len() as u64, true, None);
    }
    let _ = StreamEnd::parse(data, 0, 0);
}

/// The manifest and stream descriptor (JSON) parsers.
pub fn manifest(data: &[u8]) {
    let _ = Manifest::parse(data);
    let _ = StreamDescriptor::parse(data, 0);
}

/// Every whole-archive reader: streaming, random access, verify. Plain archives only: a
/// key derivation per input would make fuzzing crawl.
pub fn archive(data: &[u8]) {
    if let Ok(mut r) = StreamReader::new(data, None) {
        while let Ok(Some(_)) = r.next_event() {}
    }
    if let Ok(a) = MappedArchive::from_vec(data.to_vec(), None) {
        for e in a.entries() {
            let _ = a.read_frame(e);
        }
    }
    let _ = verify_bytes(data, None);
}
