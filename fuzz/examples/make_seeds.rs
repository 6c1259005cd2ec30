//! Writes the seed corpora of the fuzz targets: `cargo run --release --example make_seeds`
//! (from `fuzz/`; optional argument: the corpus root, default `corpus`).
//!
//! It writes a few small, valid archives with the real writer and cuts them into the pieces
//! each target parses, so the fuzzer starts from inputs that get past the magic numbers,
//! CRCs and hashes. Seeds are named `seed-*`; files libFuzzer added (named by their SHA-1)
//! are left alone. Archive ids and timestamps are random, so rerunning changes the bytes.

use std::path::{Path, PathBuf};

use coffer_format::{
    ArchiveWriter, FRAME_HEADER_LEN, FileHeader, IndexEntry, KeySource, MappedArchive,
    StreamDescriptor, WriterOptions,
};

const TRAILER_LEN: usize = 64;

/// Deterministic incompressible bytes (xorshift64*), so the writer stores them raw.
fn noise(len: usize, mut x: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

fn text(len: usize) -> Vec<u8> {
    b"1\talice\t2024-01-01\n2\tbob\t2024-01-02\n3\tcarol\t\\N\n"
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

struct Stream {
    descriptor: StreamDescriptor,
    frames: Vec<Vec<u8>>,
}

fn stream(kind: &str, name: &str, meta: serde_json::Value, frames: Vec<Vec<u8>>) -> Stream {
    Stream {
        descriptor: StreamDescriptor {
            kind: kind.into(),
            name: name.into(),
            meta,
        },
        frames,
    }
}

/// Writes an archive; streams are opened all at once and their frames interleaved, as
/// concurrent producers would.
fn write_archive(
    path: &Path,
    encryption: Option<KeySource>,
    streams: Vec<Stream>,
    app: serde_json::Value,
) -> Vec<u8> {
    let options = WriterOptions {
        encryption,
        in_flight_frames: 4,
        writer_name: "coffer make_seeds".into(),
        ..WriterOptions::default()
    };
    let w = ArchiveWriter::create(path, options).expect("create archive");
    let mut open: Vec<_> = streams
        .iter()
        .map(|s| {
            (
                w.stream(s.descriptor.clone()).expect("stream"),
                s.frames.iter(),
            )
        })
        .collect();
    loop {
        let mut wrote = false;
        for (sw, frames) in &mut open {
            if let Some(f) = frames.next() {
                sw.write_frame(f).expect("write_frame");
                wrote = true;
            }
        }
        if !wrote {
            break;
        }
    }
    for (sw, _) in open {
        sw.finish().expect("finish stream");
    }
    w.finish(app).expect("finish archive");
    std::fs::read(path).expect("read archive back")
}

/// The 48-byte index record layout (SPEC.md §10).
fn index_record(e: &IndexEntry) -> Vec<u8> {
    let mut r = Vec::with_capacity(48);
    r.extend_from_slice(&e.stream_id.to_le_bytes());
    r.extend_from_slice(&[e.frame_type.code(), 0, 0, 0]);
    r.extend_from_slice(&e.seq.to_le_bytes());
    r.extend_from_slice(&e.file_offset.to_le_bytes());
    r.extend_from_slice(&e.stored_len.to_le_bytes());
    r.extend_from_slice(&e.raw_len.to_le_bytes());
    r.extend_from_slice(&e.raw_offset.to_le_bytes());
    r.extend_from_slice(&e.stored_hash_prefix);
    r
}

/// Every frame header of an archive, in file order (frames start after the file header;
/// each is 128 bytes plus its stored length, the u32 at byte 32 of its header).
fn frame_headers(bytes: &[u8], header_len: usize) -> Vec<&[u8]> {
    let end = bytes.len() - TRAILER_LEN;
    let mut at = header_len;
    let mut out = Vec::new();
    while at + FRAME_HEADER_LEN <= end {
        let h = &bytes[at..at + FRAME_HEADER_LEN];
        let stored = u32::from_le_bytes(h[32..36].try_into().expect("4 bytes")) as usize;
        out.push(h);
        at += FRAME_HEADER_LEN + stored;
    }
    assert_eq!(at, end, "frames do not tile the archive");
    out
}

struct Seeds {
    root: PathBuf,
    written: usize,
}

impl Seeds {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).expect("create corpus dir");
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
        self.written += 1;
    }
}

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("corpus"), PathBuf::from);
    let tmp = std::env::temp_dir().join(format!("coffer-make-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("create temp dir");
    let mut seeds = Seeds { root, written: 0 };

    // Old seeds go (names may change); inputs the fuzzer found stay.
    for target in [
        "archive",
        "file_header",
        "frame_header",
        "index_trailer",
        "manifest",
    ] {
        if let Ok(dir) = std::fs::read_dir(seeds.root.join(target)) {
            for f in dir.flatten() {
                if f.file_name().to_string_lossy().starts_with("seed-") {
                    std::fs::remove_file(f.path()).expect("remove old seed");
                }
            }
        }
    }

    let null = serde_json::Value::Null;
    let key = || KeySource::key_file_bytes(noise(32, 99)).expect("key file");
    let archives: Vec<(&str, Option<KeySource>, Vec<Stream>, serde_json::Value)> = vec![
        // One stream: a compressible frame (zstd) and an incompressible one (stored).
        (
            "one-stream",
            None,
            vec![stream(
                "pg.table_data",
                "public.accounts",
                serde_json::json!({"columns": ["id", "name", "created"], "rows": 3}),
                vec![text(3000), noise(300, 1)],
            )],
            serde_json::json!({"engine": "postgres", "server_version": "16.4"}),
        ),
        // Three interleaved streams, one of them empty, one with a 1-byte frame.
        (
            "three-streams",
            None,
            vec![
                stream("pg.schema", "pre-data", null.clone(), vec![]),
                stream(
                    "pg.table_data",
                    "public.t",
                    null.clone(),
                    vec![text(100), noise(64, 2), text(700)],
                ),
                stream(
                    "redis.rdb",
                    "db0",
                    serde_json::json!({"db": 0}),
                    vec![vec![0x42]],
                ),
            ],
            null.clone(),
        ),
        // No streams at all.
        ("empty", None, vec![], null.clone()),
        // Encrypted with a key file: the `archive` target stops at the key check, but the
        // header (key slot TLV), frame headers (encrypted flag) and trailer are seeds too.
        (
            "encrypted",
            Some(key()),
            vec![stream(
                "pg.table_data",
                "public.secret",
                null.clone(),
                vec![text(500), noise(100, 3)],
            )],
            null.clone(),
        ),
    ];

    for (i, (name, encryption, streams, app)) in archives.into_iter().enumerate() {
        let encrypted = encryption.is_some();
        let path = tmp.join(format!("{name}.cfr"));
        let bytes = write_archive(&path, encryption, streams, app);
        let (_, header_len) = FileHeader::parse(&bytes).expect("parse own header");
        seeds.put("archive", &format!("{name}.cfr"), &bytes);
        seeds.put("file_header", name, &bytes[..header_len]);
        for (j, h) in frame_headers(&bytes, header_len).into_iter().enumerate() {
            let t = match h[4] {
                0x01 => "begin",
                0x02 => "data",
                0x03 => "end",
                0x10 => "manifest",
                0x11 => "index",
                _ => "other",
            };
            seeds.put("frame_header", &format!("{name}-{j:02}-{t}"), h);
        }
        seeds.put(
            "index_trailer",
            &format!("{name}-trailer"),
            &bytes[bytes.len() - TRAILER_LEN..],
        );
        if i == 0 {
            // A cut-short archive: no trailer, so readers take the "unsealed" paths.
            seeds.put(
                "archive",
                &format!("{name}-truncated.cfr"),
                &bytes[..bytes.len() - 70],
            );
        }
        if encrypted {
            continue;
        }
        let a = MappedArchive::from_vec(bytes.clone(), None).expect("read own archive");
        let index: Vec<u8> = a.entries().iter().flat_map(index_record).collect();
        if !index.is_empty() {
            seeds.put("index_trailer", &format!("{name}-index"), &index);
        }
        let m = serde_json::to_vec(a.manifest()).expect("manifest json");
        seeds.put("manifest", &format!("{name}-manifest.json"), &m);
        for (j, e) in a.entries().iter().enumerate() {
            let raw = a.read_frame(e).expect("read own frame");
            match e.frame_type.code() {
                0x01 => seeds.put("manifest", &format!("{name}-descriptor-{j}.json"), &raw),
                0x03 if i == 0 => seeds.put("index_trailer", &format!("{name}-stream-end"), &raw),
                _ => {}
            }
        }
    }

    // Hand-built inputs.
    seeds.put(
        "manifest",
        "minimal.json",
        br#"{"format_version":"1.0","writer":"x","created_unix_ms":1,"streams":[]}"#,
    );
    seeds.put(
        "manifest",
        "salvaged.json",
        br#"{"format_version":"1.0","writer":"coffer salvage","created_unix_ms":1700000000000,"streams":[{"id":0,"descriptor":{"kind":"pg.table_data","name":"public.t","meta":{"rows":2}},"data_frames":2,"raw_len":10,"stored_len":522,"digest":"0000000000000000000000000000000000000000000000000000000000000000"}],"salvage":[{"id":0,"original_id":3,"status":"holes","recovered_frames":2,"lost_seqs":[2,5]}],"app":{"k":[1,2.5,null,true,"s"]}}"#,
    );
    seeds.put(
        "manifest",
        "descriptor.json",
        br#"{"kind":"redis.rdb","name":"db0"}"#,
    );
    // One index record per frame type, and a record that is also a 48-byte STREAM_END.
    let mut records = Vec::new();
    for (seq, ty) in [(0u64, 0x01u8), (1, 0x02), (2, 0x03)] {
        let mut r = [0u8; 48];
        r[0..4].copy_from_slice(&7u32.to_le_bytes());
        r[4] = ty;
        r[8..16].copy_from_slice(&seq.to_le_bytes());
        r[16..24].copy_from_slice(&(100 + 200 * seq).to_le_bytes());
        r[24..28].copy_from_slice(&10u32.to_le_bytes());
        r[28..32].copy_from_slice(&10u32.to_le_bytes());
        records.extend_from_slice(&r);
    }
    seeds.put("index_trailer", "records-begin-data-end", &records);
    seeds.put("index_trailer", "record-one", &records[48..96]);

    std::fs::remove_dir_all(&tmp).expect("remove temp dir");
    println!(
        "wrote {} seeds under {}",
        seeds.written,
        seeds.root.display()
    );
}
