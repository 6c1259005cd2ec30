//! Golden archives: files written by format version 1.0, committed under
//! `tests/golden/v1/`, that every later build must decode to exactly the content below.
//!
//! The files never change once committed. `regenerate_golden` writes a missing one (run it
//! with `cargo test -p coffer-format --test golden -- --ignored`); it is how the set was
//! made and how a new version's set will be.

mod common;

use std::path::{Path, PathBuf};

use coffer_format::{
    ArchiveWriter, KdfParams, KeySource, MappedArchive, StreamDescriptor, WriterOptions, verify,
};
use common::{Content, read_mapped, read_streaming};

const PASSPHRASE: &str = "coffer golden passphrase";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/v1")
}

fn key_file() -> KeySource {
    KeySource::key_file(&dir().join("golden.key")).unwrap()
}

/// The content every golden archive holds: a text stream cut into frames on line
/// boundaries, every byte value, a frame that compresses to almost nothing, an empty
/// stream, and a stream with metadata.
fn expected() -> Vec<(StreamDescriptor, Vec<Vec<u8>>)> {
    let rows: Vec<u8> = (0..2000)
        .flat_map(|i| format!("{i}\tname {i}\t{}.{:02}\t\\N\n", i * 7, i % 100).into_bytes())
        .collect();
    let cut = rows.iter().position(|&b| b == b'\n').unwrap() + 1 + rows.len() / 2;
    let cut = cut + rows[cut..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut meta = StreamDescriptor::new("golden.meta", "with \"meta\" ü");
    meta.meta = serde_json::json!({"columns": ["a", "b"], "rows": 3});
    vec![
        (
            StreamDescriptor::new("golden.rows", "public.rows"),
            vec![rows[..cut].to_vec(), rows[cut..].to_vec()],
        ),
        (
            StreamDescriptor::new("golden.bytes", "bytes"),
            vec![(0..=255u8).collect(), (0..=255u8).rev().collect()],
        ),
        (
            StreamDescriptor::new("golden.zeros", "zeros"),
            vec![vec![0; 100_000]],
        ),
        (StreamDescriptor::new("golden.empty", "empty"), vec![]),
        (meta, vec![b"x".to_vec()]),
    ]
}

fn expected_content() -> Content {
    expected().into_iter().map(|(d, f)| (d.name, f)).collect()
}

fn app() -> serde_json::Value {
    serde_json::json!({"golden": 1, "note": "application metadata is kept verbatim"})
}

/// How to get a golden file's key (none for the plain one).
type KeyFn = fn() -> Option<KeySource>;

/// Each golden file and its key.
fn cases() -> Vec<(&'static str, KeyFn)> {
    vec![
        ("plain.coffer", || None),
        ("encrypted-passphrase.coffer", || {
            Some(KeySource::passphrase(PASSPHRASE))
        }),
        ("encrypted-keyfile.coffer", || Some(key_file())),
    ]
}

#[test]
fn golden_archives_decode_forever() {
    for (name, key) in cases() {
        let path = dir().join(name);
        assert!(
            path.exists(),
            "{name} is missing: golden archives must never be removed"
        );
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            read_mapped(&path, key().as_ref()).unwrap(),
            expected_content(),
            "{name}"
        );
        assert_eq!(
            read_streaming(&bytes, key().as_ref()).unwrap(),
            expected_content(),
            "{name}"
        );
        let report = verify(&path, key().as_ref()).unwrap();
        assert!(report.is_intact(), "{name}: {:?}", report.problems);
        let a = MappedArchive::open(&path, key().as_ref()).unwrap();
        assert_eq!(a.manifest().app, app(), "{name}");
        let descriptors: Vec<_> = a.streams().iter().map(|s| s.descriptor.clone()).collect();
        let want: Vec<_> = expected().into_iter().map(|(d, _)| d).collect();
        assert_eq!(descriptors, want, "{name}");
        assert_eq!(a.header().encrypted(), key().is_some(), "{name}");
    }
}

#[test]
#[ignore = "writes missing golden archives; run by hand when a format version is added"]
fn regenerate_golden() {
    let d = dir();
    std::fs::create_dir_all(&d).unwrap();
    if !d.join("golden.key").exists() {
        std::fs::write(
            d.join("golden.key"),
            b"coffer golden key file: 32+ bytes of key material\n",
        )
        .unwrap();
    }
    for (name, key) in cases() {
        let path = d.join(name);
        if path.exists() {
            continue;
        }
        let options = WriterOptions {
            zstd_level: 3,
            encryption: key(),
            // cheap enough that the decode test stays fast; still real Argon2id
            kdf: KdfParams {
                m_kib: 8 << 10,
                t: 1,
                p: 1,
            },
            writer_name: "coffer 0.1.0 (golden)".into(),
            ..WriterOptions::default()
        };
        let w = ArchiveWriter::create(&path, options).unwrap();
        for (descriptor, frames) in expected() {
            let mut s = w.stream(descriptor).unwrap();
            for f in frames {
                s.write_frame(&f).unwrap();
            }
            s.finish().unwrap();
        }
        w.finish(app()).unwrap();
    }
}
