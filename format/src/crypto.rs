//! Encryption at rest (SPEC.md §6): key slots, key derivation, frame sealing.
//!
//! Each archive has a random 32-byte file key. It is stored only wrapped, in a key slot of
//! the file header, under a key-encryption key derived from a passphrase (Argon2id) or from
//! a key file (BLAKE3). Everything else is derived from the file key with BLAKE3's
//! `derive_key`, so that a frame's nonce depends only on its stream and sequence number:
//! dump workers can seal frames in parallel and there is no nonce state to keep.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::limits;

/// Bytes of a Poly1305 tag appended to every sealed payload.
pub const TAG_LEN: usize = 16;
/// Bytes of a key slot in the file header's TLV area.
pub(crate) const KEY_SLOT_LEN: usize = 92;
/// Cipher suite number of ChaCha20-Poly1305 with BLAKE3 key derivation.
pub(crate) const SUITE_CHACHA20_BLAKE3: u16 = 1;
const MIN_KEY_FILE_LEN: usize = 32;

/// Where the key of an encrypted archive comes from. Cloning copies the key material into
/// another zeroized buffer (a backup hands one to each archive it writes at once).
#[derive(Clone)]
pub enum KeySource {
    /// A passphrase, stretched with Argon2id.
    Passphrase(Zeroizing<Vec<u8>>),
    /// The contents of a key file (at least 32 bytes, ideally random).
    KeyFile(Zeroizing<Vec<u8>>),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material, not even in debug output.
        f.write_str(match self {
            KeySource::Passphrase(_) => "KeySource::Passphrase(<redacted>)",
            KeySource::KeyFile(_) => "KeySource::KeyFile(<redacted>)",
        })
    }
}

impl KeySource {
    /// A passphrase key.
    pub fn passphrase(p: impl Into<Vec<u8>>) -> Self {
        KeySource::Passphrase(Zeroizing::new(p.into()))
    }

    /// Key file contents. Refuses files too short to hold 256 bits of key.
    pub fn key_file_bytes(bytes: Vec<u8>) -> Result<Self> {
        let bytes = Zeroizing::new(bytes);
        if bytes.len() < MIN_KEY_FILE_LEN {
            return Err(Error::BadKeyFile(format!(
                "{} bytes; a key file needs at least {MIN_KEY_FILE_LEN} (e.g. `head -c 32 /dev/urandom`)",
                bytes.len()
            )));
        }
        Ok(KeySource::KeyFile(bytes))
    }

    /// Reads a key file.
    pub fn key_file(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::io(format!("reading key file {}", path.display()), e))?;
        Self::key_file_bytes(bytes)
    }

    fn kind(&self) -> u8 {
        match self {
            KeySource::Passphrase(_) => 1,
            KeySource::KeyFile(_) => 2,
        }
    }
}

/// Argon2id cost parameters for passphrase key slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: RFC 9106's second recommendation, about 0.1–0.3 s.
    fn default() -> Self {
        KdfParams {
            m_kib: 64 << 10,
            t: 3,
            p: 1,
        }
    }
}

/// A key slot: the file key wrapped under a key-encryption key (SPEC.md §6.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeySlot {
    kind: u8,
    params: KdfParams,
    salt: [u8; 16],
    nonce: [u8; 12],
    wrapped: [u8; 48],
}

impl KeySlot {
    pub(crate) fn encode(&self) -> [u8; KEY_SLOT_LEN] {
        let mut b = [0u8; KEY_SLOT_LEN];
        b[..32].copy_from_slice(&self.bound_part());
        b[32..44].copy_from_slice(&self.nonce);
        b[44..92].copy_from_slice(&self.wrapped);
        b
    }

    /// Bytes 0..32: kind, reserved, KDF parameters, salt. Bound into the wrap's AAD so that
    /// nobody can weaken the parameters of an existing slot.
    fn bound_part(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0] = self.kind;
        b[4..8].copy_from_slice(&self.params.m_kib.to_le_bytes());
        b[8..12].copy_from_slice(&self.params.t.to_le_bytes());
        b[12..16].copy_from_slice(&self.params.p.to_le_bytes());
        b[16..32].copy_from_slice(&self.salt);
        b
    }

    fn aad_full(&self, archive_id: &[u8; 16]) -> Vec<u8> {
        let mut aad = b"coffer v1 key slot".to_vec();
        aad.extend_from_slice(archive_id);
        aad.extend_from_slice(&self.bound_part());
        aad
    }

    pub(crate) fn parse(b: &[u8], offset: u64) -> Result<Self> {
        if b.len() != KEY_SLOT_LEN {
            return Err(Error::corrupt(
                "key slot",
                offset,
                format!("length {}", b.len()),
            ));
        }
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let kind = b[0];
        if kind != 1 && kind != 2 {
            return Err(Error::UnsupportedFeature {
                what: format!("key slot kind {kind}"),
            });
        }
        if b[1..4].iter().any(|&x| x != 0) {
            return Err(Error::corrupt(
                "key slot",
                offset,
                "reserved bytes are not zero",
            ));
        }
        let params = KdfParams {
            m_kib: u32_at(4),
            t: u32_at(8),
            p: u32_at(12),
        };
        if kind == 1 {
            check_kdf_limits(params, offset)?;
        }
        Ok(KeySlot {
            kind,
            params,
            salt: b[16..32].try_into().expect("16 bytes"),
            nonce: b[32..44].try_into().expect("12 bytes"),
            wrapped: b[44..92].try_into().expect("48 bytes"),
        })
    }

    /// Wraps `file_key` for `source`.
    pub(crate) fn wrap(
        source: &KeySource,
        params: KdfParams,
        archive_id: &[u8; 16],
        file_key: &[u8; 32],
    ) -> Result<Self> {
        let mut slot = KeySlot {
            kind: source.kind(),
            params: if source.kind() == 1 {
                params
            } else {
                KdfParams {
                    m_kib: 0,
                    t: 0,
                    p: 0,
                }
            },
            salt: random_bytes()?,
            nonce: random_bytes()?,
            wrapped: [0; 48],
        };
        let kek = slot.kek(source)?;
        let mut buf = file_key.to_vec();
        let tag = ChaCha20Poly1305::new(Key::from_slice(&kek[..]))
            .encrypt_in_place_detached(
                Nonce::from_slice(&slot.nonce),
                &slot.aad_full(archive_id),
                &mut buf,
            )
            .map_err(|_| Error::Usage("key wrap failed".into()))?;
        slot.wrapped[..32].copy_from_slice(&buf);
        slot.wrapped[32..].copy_from_slice(&tag);
        Ok(slot)
    }

    /// Unwraps the file key, or `None` if `source` is not this slot's key.
    fn unwrap_key(
        &self,
        source: &KeySource,
        archive_id: &[u8; 16],
    ) -> Result<Option<Zeroizing<[u8; 32]>>> {
        if source.kind() != self.kind {
            return Ok(None);
        }
        let kek = self.kek(source)?;
        let mut buf = Zeroizing::new(self.wrapped[..32].to_vec());
        let ok = ChaCha20Poly1305::new(Key::from_slice(&kek[..]))
            .decrypt_in_place_detached(
                Nonce::from_slice(&self.nonce),
                &self.aad_full(archive_id),
                &mut buf,
                Tag::from_slice(&self.wrapped[32..]),
            )
            .is_ok();
        Ok(ok.then(|| Zeroizing::new(buf[..].try_into().expect("32 bytes"))))
    }

    fn kek(&self, source: &KeySource) -> Result<Zeroizing<[u8; 32]>> {
        let mut kek = Zeroizing::new([0u8; 32]);
        match source {
            KeySource::Passphrase(p) => {
                let params =
                    argon2::Params::new(self.params.m_kib, self.params.t, self.params.p, Some(32))
                        .map_err(|e| Error::UnsupportedFeature {
                            what: format!("Argon2id parameters: {e}"),
                        })?;
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                    .hash_password_into(p, &self.salt, &mut kek[..])
                    .map_err(|e| Error::Usage(format!("Argon2id failed: {e}")))?;
            }
            KeySource::KeyFile(bytes) => {
                let mut h = blake3::Hasher::new_derive_key("coffer v1 key-file kek");
                h.update(&self.salt);
                h.update(bytes);
                kek.copy_from_slice(h.finalize().as_bytes());
            }
        }
        Ok(kek)
    }
}

fn check_kdf_limits(p: KdfParams, offset: u64) -> Result<()> {
    for (what, value, max) in [
        ("Argon2id memory (KiB)", p.m_kib, limits::MAX_ARGON2_M_KIB),
        ("Argon2id passes", p.t, limits::MAX_ARGON2_T),
        ("Argon2id lanes", p.p, limits::MAX_ARGON2_P),
    ] {
        if value > max {
            return Err(Error::LimitExceeded {
                what,
                offset,
                value: value.into(),
                max: max.into(),
            });
        }
    }
    Ok(())
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| {
        Error::io(
            "reading the system's random source",
            std::io::Error::other(e.to_string()),
        )
    })?;
    Ok(b)
}

/// The keys of one open, encrypted archive (SPEC.md §6.2).
pub(crate) struct ArchiveKeys {
    file_key: Zeroizing<[u8; 32]>,
    archive_id: [u8; 16],
    raw_mac: Zeroizing<[u8; 32]>,
    trailer_mac: Zeroizing<[u8; 32]>,
}

impl ArchiveKeys {
    pub(crate) fn new(file_key: Zeroizing<[u8; 32]>, archive_id: [u8; 16]) -> Self {
        let raw_mac = Zeroizing::new(derive(
            &file_key,
            &archive_id,
            "coffer v1 raw-hash-mac",
            &[],
        ));
        let trailer_mac =
            Zeroizing::new(derive(&file_key, &archive_id, "coffer v1 trailer-mac", &[]));
        ArchiveKeys {
            file_key,
            archive_id,
            raw_mac,
            trailer_mac,
        }
    }

    /// Opens the first key slot that `source` unlocks.
    pub(crate) fn unlock(
        slots: &[KeySlot],
        source: &KeySource,
        archive_id: [u8; 16],
    ) -> Result<Self> {
        for slot in slots {
            if let Some(key) = slot.unwrap_key(source, &archive_id)? {
                return Ok(Self::new(key, archive_id));
            }
        }
        Err(Error::WrongKey)
    }

    /// The AEAD for one stream's frames.
    pub(crate) fn stream_cipher(&self, stream_id: u32) -> ChaCha20Poly1305 {
        let key = Zeroizing::new(derive(
            &self.file_key,
            &self.archive_id,
            "coffer v1 frame-encryption",
            &stream_id.to_le_bytes(),
        ));
        ChaCha20Poly1305::new(Key::from_slice(&key[..]))
    }

    pub(crate) fn raw_hasher(&self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(&self.raw_mac)
    }

    pub(crate) fn trailer_check(&self, bytes: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.trailer_mac, bytes).as_bytes()
    }
}

fn derive(file_key: &[u8; 32], archive_id: &[u8; 16], context: &str, extra: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(context);
    h.update(file_key);
    h.update(archive_id);
    h.update(extra);
    *h.finalize().as_bytes()
}

/// The nonce of a frame: its sequence number and whether it ends its stream.
pub(crate) fn frame_nonce(seq: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&seq.to_le_bytes());
    n[11] = u8::from(last);
    n
}

/// The associated data of a frame: archive id, header bytes 0..44, raw hash.
pub(crate) fn frame_aad(
    archive_id: &[u8; 16],
    header_prefix: &[u8],
    raw_hash: &[u8; 32],
) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + header_prefix.len() + 32);
    aad.extend_from_slice(archive_id);
    aad.extend_from_slice(header_prefix);
    aad.extend_from_slice(raw_hash);
    aad
}

/// Seals `buf` in place and appends the tag.
pub(crate) fn seal(
    cipher: &ChaCha20Poly1305,
    nonce: &[u8; 12],
    aad: &[u8],
    buf: &mut Vec<u8>,
) -> Result<()> {
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(nonce), aad, buf)
        .map_err(|_| Error::Usage("frame larger than the cipher allows".into()))?;
    buf.extend_from_slice(&tag);
    Ok(())
}

/// Opens a sealed payload; `false` when authentication fails.
pub(crate) fn open(
    cipher: &ChaCha20Poly1305,
    nonce: &[u8; 12],
    aad: &[u8],
    sealed: &[u8],
) -> Option<Vec<u8>> {
    let split = sealed.len().checked_sub(TAG_LEN)?;
    let mut buf = sealed[..split].to_vec();
    cipher
        .decrypt_in_place_detached(
            Nonce::from_slice(nonce),
            aad,
            &mut buf,
            Tag::from_slice(&sealed[split..]),
        )
        .ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> KdfParams {
        KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        }
    }

    #[test]
    fn slot_round_trip_and_wrong_key() {
        let id = [9u8; 16];
        let key = [5u8; 32];
        let src = KeySource::passphrase("correct horse");
        let slot = KeySlot::wrap(&src, cheap(), &id, &key).unwrap();
        let parsed = KeySlot::parse(&slot.encode(), 0).unwrap();
        assert_eq!(parsed, slot);
        assert_eq!(*parsed.unwrap_key(&src, &id).unwrap().unwrap(), key);
        assert!(
            parsed
                .unwrap_key(&KeySource::passphrase("wrong"), &id)
                .unwrap()
                .is_none()
        );
        assert!(
            parsed.unwrap_key(&src, &[8u8; 16]).unwrap().is_none(),
            "archive id is bound"
        );
    }

    #[test]
    fn key_file_must_be_long_enough() {
        assert!(matches!(
            KeySource::key_file_bytes(vec![1; 31]),
            Err(Error::BadKeyFile(_))
        ));
        let src = KeySource::key_file_bytes(vec![7; 32]).unwrap();
        let slot = KeySlot::wrap(&src, cheap(), &[1; 16], &[2; 32]).unwrap();
        assert_eq!(*slot.unwrap_key(&src, &[1; 16]).unwrap().unwrap(), [2; 32]);
    }

    #[test]
    fn hostile_kdf_parameters_are_refused_before_running_argon2() {
        let src = KeySource::passphrase("x");
        let mut slot = KeySlot::wrap(&src, cheap(), &[1; 16], &[2; 32])
            .unwrap()
            .encode();
        slot[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            KeySlot::parse(&slot, 0),
            Err(Error::LimitExceeded { .. })
        ));
    }
}
