//! Random streams written by several producer threads read back byte-identical through
//! both the streaming and the memory-mapped reader, plain and encrypted.

mod common;

use coffer_format::{KeySource, verify};
use common::{Content, options, read_mapped, read_streaming, write};
use proptest::prelude::*;

fn frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // incompressible: exercises the "stored" codec
        prop::collection::vec(any::<u8>(), 1..3000),
        // compressible: a short pattern repeated
        (prop::collection::vec(any::<u8>(), 1..8), 1usize..5000).prop_map(|(pat, n)| pat
            .iter()
            .copied()
            .cycle()
            .take(n)
            .collect()),
    ]
}

fn content() -> impl Strategy<Value = Content> {
    prop::collection::btree_map("[a-z]{1,8}", prop::collection::vec(frame(), 0..6), 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn plain_archives_round_trip(content in content(), threads in 1usize..4) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.coffer");
        let summary = write(&path, &content, threads, options(None));
        let bytes = std::fs::read(&path).unwrap();
        prop_assert_eq!(summary.bytes, bytes.len() as u64);
        prop_assert_eq!(&read_streaming(&bytes, None).unwrap(), &content);
        prop_assert_eq!(&read_mapped(&path, None).unwrap(), &content);
        let report = verify(&path, None).unwrap();
        prop_assert!(report.is_intact(), "{:?}", report.problems);
    }

    #[test]
    fn encrypted_archives_round_trip(content in content(), threads in 1usize..4) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.coffer");
        let key = || KeySource::key_file_bytes(vec![42; 32]).unwrap();
        write(&path, &content, threads, options(Some(key())));
        let bytes = std::fs::read(&path).unwrap();
        prop_assert_eq!(&read_streaming(&bytes, Some(&key())).unwrap(), &content);
        prop_assert_eq!(&read_mapped(&path, Some(&key())).unwrap(), &content);
        prop_assert!(verify(&path, Some(&key())).unwrap().is_intact());
    }
}

#[test]
fn partial_file_is_published_only_when_finished() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.coffer");
    let partial = dir.path().join("a.coffer.partial");
    let w = coffer_format::ArchiveWriter::create(&path, options(None)).unwrap();
    assert!(partial.exists() && !path.exists());
    drop(w);
    assert!(
        !partial.exists() && !path.exists(),
        "an abandoned archive leaves nothing behind"
    );
    write(&path, &common::small_content(), 1, options(None));
    assert!(path.exists() && !partial.exists());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn an_unfinished_stream_refuses_to_seal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.coffer");
    let w = coffer_format::ArchiveWriter::create(&path, options(None)).unwrap();
    let mut s = w
        .stream(coffer_format::StreamDescriptor::new("k", "open"))
        .unwrap();
    s.write_frame(b"data").unwrap();
    let err = w.finish(serde_json::Value::Null).unwrap_err();
    assert!(err.to_string().contains("never finished"), "{err}");
    assert!(!path.exists());
    assert!(matches!(
        s.write_frame(b"more"),
        Err(coffer_format::Error::WriterClosed)
    ));
}
