//! Damage is always detected, and salvage recovers exactly what is intact.
//!
//! Exhaustive over a small archive: every single-bit flip is reported by `verify` and
//! refused by both readers; a cut at every offset is reported as truncated, and salvage of
//! the cut file recovers exactly the DATA frames that lie wholly before the cut.

mod common;

use std::path::Path;

use coffer_format::{Error, KeySource, MappedArchive, salvage, verify, verify_bytes};
use common::{Content, options, read_mapped, read_streaming, small_content, write};

fn small_archive(dir: &Path, key: Option<KeySource>) -> Vec<u8> {
    let path = dir.join("small.coffer");
    write(&path, &small_content(), 1, options(key));
    std::fs::read(path).unwrap()
}

/// Every flip must make verify report a problem (or refuse the file outright), and must
/// make both readers fail: nothing damaged is ever returned as good data.
fn assert_every_flip_detected(bytes: &[u8], key: impl Fn() -> Option<KeySource>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flipped.coffer");
    for bit in 0..bytes.len() * 8 {
        let mut b = bytes.to_vec();
        b[bit / 8] ^= 1 << (bit % 8);
        let k = key();
        // Err: not an archive, unsupported version, wrong key — refused outright
        if let Ok(report) = verify_bytes(&b, k.as_ref()) {
            assert!(!report.is_intact(), "flip of bit {bit} not reported");
        }
        assert!(
            read_streaming(&b, k.as_ref()).is_err(),
            "streaming reader accepted flip of bit {bit}"
        );
        std::fs::write(&path, &b).unwrap();
        assert!(
            read_mapped(&path, k.as_ref()).is_err(),
            "mapped reader accepted flip of bit {bit}"
        );
    }
}

#[test]
fn every_bit_flip_of_a_plain_archive_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = small_archive(dir.path(), None);
    assert!(verify_bytes(&bytes, None).unwrap().is_intact());
    assert_every_flip_detected(&bytes, || None);
}

#[test]
fn every_bit_flip_of_an_encrypted_archive_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let key = || Some(KeySource::key_file_bytes(vec![1; 32]).unwrap());
    let bytes = small_archive(dir.path(), key());
    assert!(verify_bytes(&bytes, key().as_ref()).unwrap().is_intact());
    assert_every_flip_detected(&bytes, key);
}

#[test]
fn a_flipped_byte_is_reported_with_its_stream_seq_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.coffer");
    write(&path, &small_content(), 1, options(None));
    let a = MappedArchive::open(&path, None).unwrap();
    let s = &a.streams()[0];
    let target = a.data_entries(s)[1];
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(target.file_offset + 128 + 5) as usize] ^= 0x40; // inside the payload
    let report = verify_bytes(&bytes, None).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let p = &report.problems[0];
    assert_eq!(
        (p.offset, p.stream, p.seq),
        (target.file_offset, Some(s.id), Some(target.seq))
    );
    assert!(p.detail.contains("BLAKE3"), "{}", p.detail);
}

/// The DATA frames of each stream that end at or before `cut`.
fn complete_before(path: &Path, cut: u64) -> Content {
    let a = MappedArchive::open(path, None).unwrap();
    let mut c = Content::new();
    for s in a.streams() {
        let frames: Vec<Vec<u8>> = a
            .data_entries(s)
            .iter()
            .filter(|e| e.file_offset + e.frame_len() <= cut)
            .map(|e| a.read_frame(e).unwrap())
            .collect();
        let begin = a.entries().iter().find(|e| e.stream_id == s.id).unwrap();
        if begin.file_offset + begin.frame_len() <= cut || !frames.is_empty() {
            c.insert(s.descriptor.name.clone(), frames);
        }
    }
    c
}

#[test]
fn truncation_at_every_offset_is_reported_and_salvage_recovers_exactly_the_complete_frames() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.coffer");
    write(&path, &small_content(), 2, options(None));
    let bytes = std::fs::read(&path).unwrap();
    let cut_path = dir.path().join("cut.coffer");
    let out = dir.path().join("salvaged.coffer");
    let header_len = coffer_format::FileHeader::parse(&bytes).unwrap().1;
    for cut in 0..bytes.len() {
        let b = &bytes[..cut];
        assert!(
            matches!(
                read_streaming(b, None),
                Err(Error::Truncated { .. } | Error::NotAnArchive)
            ),
            "cut {cut}"
        );
        std::fs::write(&cut_path, b).unwrap();
        assert!(MappedArchive::open(&cut_path, None).is_err(), "cut {cut}");
        if cut < header_len {
            assert!(
                verify(&cut_path, None).is_err() || !verify(&cut_path, None).unwrap().is_intact()
            );
            continue;
        }
        let report = verify(&cut_path, None).unwrap();
        assert!(
            !report.sealed && !report.is_intact(),
            "cut {cut}: {:?}",
            report.problems
        );
        let s = salvage(&cut_path, &out, None, 3).unwrap();
        assert!(
            verify(&out, None).unwrap().is_intact(),
            "salvaged archive must verify clean"
        );
        let expected = complete_before(&path, cut as u64);
        assert_eq!(read_mapped(&out, None).unwrap(), expected, "cut {cut}");
        let a = MappedArchive::open(&path, None).unwrap();
        let mut statuses: Vec<(String, &str)> = a
            .streams()
            .iter()
            .filter(|st| expected.contains_key(&st.descriptor.name))
            .map(|st| {
                let end = a.entries()[st.data.end];
                let complete = end.file_offset + end.frame_len() <= cut as u64;
                (
                    st.descriptor.name.clone(),
                    if complete { "complete" } else { "truncated" },
                )
            })
            .collect();
        statuses.sort();
        let salvaged = MappedArchive::open(&out, None).unwrap();
        let mut got: Vec<(String, &str)> = s
            .streams
            .iter()
            .map(|st| {
                (
                    salvaged.streams()[st.id as usize].descriptor.name.clone(),
                    st.status.as_str(),
                )
            })
            .collect();
        got.sort();
        assert_eq!(got, statuses, "cut {cut}");
    }
}

#[test]
fn salvage_of_an_intact_archive_keeps_everything_and_the_app_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.coffer");
    let out = dir.path().join("b.coffer");
    write(&path, &small_content(), 1, options(None));
    let report = salvage(&path, &out, None, 3).unwrap();
    assert!(report.problems.is_empty());
    assert!(
        report
            .streams
            .iter()
            .all(|s| s.status == "complete" && s.lost_seqs.is_empty())
    );
    assert_eq!(read_mapped(&out, None).unwrap(), small_content());
    let m = MappedArchive::open(&out, None).unwrap().manifest().clone();
    assert_eq!(m.app, serde_json::json!({"test": true}));
    assert!(m.salvage.is_some());
}

#[test]
fn salvage_skips_a_damaged_frame_in_the_middle_and_reports_the_hole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.coffer");
    let mut content = Content::new();
    content.insert(
        "t".into(),
        (0..5u8).map(|i| vec![i; 100 + usize::from(i)]).collect(),
    );
    write(&path, &content, 1, options(None));
    let a = MappedArchive::open(&path, None).unwrap();
    let victim = a.data_entries(&a.streams()[0])[2]; // seq 3
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(victim.file_offset + 130) as usize] ^= 1;
    let damaged = dir.path().join("damaged.coffer");
    std::fs::write(&damaged, &bytes).unwrap();
    let out = dir.path().join("out.coffer");
    let report = salvage(&damaged, &out, None, 1).unwrap();
    assert_eq!(report.streams.len(), 1);
    assert_eq!(report.streams[0].status, "holes");
    assert_eq!(report.streams[0].lost_seqs, vec![3]);
    let mut expected = content.clone();
    expected.get_mut("t").unwrap().remove(2);
    assert_eq!(read_mapped(&out, None).unwrap(), expected);
}
