//! Helpers shared by the format crate's integration tests: write an archive from known
//! streams with several producer threads, and read it back through each reader.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::path::Path;

use coffer_format::{
    ArchiveWriter, Event, KdfParams, KeySource, MappedArchive, StreamDescriptor, StreamReader,
    WriteSummary, WriterOptions,
};

/// Stream name → its DATA frames' raw bytes, in order.
pub type Content = BTreeMap<String, Vec<Vec<u8>>>;

/// Argon2id costs small enough for tests that derive keys many times.
pub fn cheap_kdf() -> KdfParams {
    KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    }
}

pub fn options(key: Option<KeySource>) -> WriterOptions {
    WriterOptions {
        encryption: key,
        kdf: cheap_kdf(),
        in_flight_frames: 2,
        ..WriterOptions::default()
    }
}

/// Writes `content` to `path`, the streams spread over `threads` producer threads that run
/// at once, so frames of different streams interleave.
pub fn write(path: &Path, content: &Content, threads: usize, opts: WriterOptions) -> WriteSummary {
    let writer = ArchiveWriter::create(path, opts).expect("create");
    let streams: Vec<_> = content.iter().collect();
    std::thread::scope(|s| {
        for t in 0..threads.max(1) {
            let mine: Vec<_> = streams
                .iter()
                .skip(t)
                .step_by(threads.max(1))
                .copied()
                .collect();
            let writer = &writer;
            s.spawn(move || {
                for (name, frames) in mine {
                    let mut w = writer
                        .stream(StreamDescriptor::new("test.data", name.clone()))
                        .expect("stream");
                    for f in frames {
                        w.write_frame(f).expect("write_frame");
                    }
                    w.finish().expect("finish stream");
                }
            });
        }
    });
    writer
        .finish(serde_json::json!({"test": true}))
        .expect("finish")
}

/// Reads every stream back with the streaming reader.
pub fn read_streaming(bytes: &[u8], key: Option<&KeySource>) -> coffer_format::Result<Content> {
    let mut r = StreamReader::new(bytes, key)?;
    let mut names = BTreeMap::new();
    let mut out = Content::new();
    while let Some(ev) = r.next_event()? {
        match ev {
            Event::Begin { stream, descriptor } => {
                out.insert(descriptor.name.clone(), Vec::new());
                names.insert(stream, descriptor.name);
            }
            Event::Data { stream, bytes, .. } => {
                out.get_mut(&names[&stream]).expect("begun").push(bytes);
            }
            Event::End { .. } => {}
        }
    }
    assert!(
        r.manifest().is_some(),
        "a reader that finished has read the manifest"
    );
    Ok(out)
}

/// Reads every stream back through the memory map, frames decoded on the rayon pool.
pub fn read_mapped(path: &Path, key: Option<&KeySource>) -> coffer_format::Result<Content> {
    let a = MappedArchive::open(path, key)?;
    let mut out = Content::new();
    for s in a.streams() {
        let frames = a
            .par_map(a.data_entries(s), |_, raw| raw)
            .into_iter()
            .collect::<coffer_format::Result<Vec<_>>>()?;
        out.insert(s.descriptor.name.clone(), frames);
    }
    Ok(out)
}

/// A small archive with two streams: used by the exhaustive damage tests.
pub fn small_content() -> Content {
    let mut c = Content::new();
    c.insert(
        "alpha".into(),
        vec![b"first frame, compressible? no".to_vec(), vec![7u8; 200]],
    );
    c.insert("beta".into(), vec![b"x".to_vec()]);
    c
}
