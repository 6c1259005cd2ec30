//! Encryption: wrong and missing keys give clear errors; tampering is detected even when
//! the attacker fixes every unkeyed checksum.

mod common;

use coffer_format::{Error, KeySource, MappedArchive, StreamReader, verify, verify_bytes};
use common::{options, read_mapped, read_streaming, small_content, write};

fn crc_fix(header: &mut [u8]) {
    let crc = crc32c::crc32c(&header[..124]);
    header[124..128].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn wrong_passphrase_and_missing_key_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.coffer");
    write(
        &path,
        &small_content(),
        1,
        options(Some(KeySource::passphrase("right"))),
    );
    let wrong = KeySource::passphrase("wrong");
    let bytes = std::fs::read(&path).unwrap();
    assert!(matches!(
        MappedArchive::open(&path, Some(&wrong)),
        Err(Error::WrongKey)
    ));
    assert!(matches!(
        StreamReader::new(&bytes[..], Some(&wrong)),
        Err(Error::WrongKey)
    ));
    assert!(matches!(verify(&path, Some(&wrong)), Err(Error::WrongKey)));
    assert!(matches!(
        MappedArchive::open(&path, None),
        Err(Error::KeyRequired)
    ));
    let key_file = KeySource::key_file_bytes(vec![0; 32]).unwrap();
    assert!(matches!(
        MappedArchive::open(&path, Some(&key_file)),
        Err(Error::WrongKey)
    ));
    assert_eq!(
        Error::WrongKey.to_string(),
        "wrong passphrase or key file: no key slot of this archive opens with it"
    );
    let right = KeySource::passphrase("right");
    assert_eq!(read_mapped(&path, Some(&right)).unwrap(), small_content());
}

#[test]
fn keyless_verify_scrubs_stored_hashes_only_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.coffer");
    write(
        &path,
        &small_content(),
        1,
        options(Some(KeySource::passphrase("k"))),
    );
    let report = verify(&path, None).unwrap();
    assert!(report.is_intact() && report.encrypted && !report.payloads_checked);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    assert!(
        !verify_bytes(&bytes, None).unwrap().is_intact(),
        "scrub catches damage without a key"
    );
}

/// Re-seals a frame's unkeyed checks (stored hash, header CRC) after tampering, as an
/// attacker could; only authentication can catch it.
fn refresh_unkeyed(bytes: &mut [u8], offset: usize) {
    let stored_len =
        u32::from_le_bytes(bytes[offset + 32..offset + 36].try_into().unwrap()) as usize;
    let payload = offset + 128..offset + 128 + stored_len;
    let hash = blake3::hash(&bytes[payload]);
    bytes[offset + 44..offset + 76].copy_from_slice(hash.as_bytes());
    crc_fix(&mut bytes[offset..offset + 128]);
}

#[test]
fn tampered_frames_fail_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.coffer");
    let key = || KeySource::key_file_bytes(vec![9; 40]).unwrap();
    write(&path, &small_content(), 1, options(Some(key())));
    let a = MappedArchive::open(&path, Some(&key())).unwrap();
    let victim = a.data_entries(&a.streams()[0])[0];
    let original = std::fs::read(&path).unwrap();
    let off = victim.file_offset as usize;

    // 1. flip a ciphertext byte and fix the stored hash and CRC
    let mut b = original.clone();
    b[off + 128] ^= 1;
    refresh_unkeyed(&mut b, off);
    let report = verify_bytes(&b, Some(&key())).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.detail.contains("authentication failed")),
        "{:?}",
        report.problems
    );
    assert!(read_streaming(&b, Some(&key())).is_err());

    // 2. move the frame to another stream (change its stream id), fixing the CRC
    let mut b = original.clone();
    let other = a.streams()[1].id;
    b[off + 12..off + 16].copy_from_slice(&other.to_le_bytes());
    crc_fix(&mut b[off..off + 128]);
    let report = verify_bytes(&b, Some(&key())).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.detail.contains("authentication failed")),
        "{:?}",
        report.problems
    );

    // 3. downgrade: clear the encrypted flag so the frame claims to be plain
    let mut b = original;
    b[off + 6] &= !1;
    crc_fix(&mut b[off..off + 128]);
    assert!(!verify_bytes(&b, Some(&key())).unwrap().is_intact());
    assert!(read_streaming(&b, Some(&key())).is_err());
}
