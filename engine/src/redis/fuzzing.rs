//! Entry points for the cargo-fuzz targets in `fuzz/`: each feeds arbitrary bytes to one
//! parser or decoder of the Redis side. None of them may panic, whatever the input.

use super::elements::{ValueDigester, value_digest};
use super::rdb::{Event, RdbParser, Value, decode_value};
use super::record::KeyAssembler;
use super::reencode::{FieldTtls, Reencoded, reencode};
use super::replica::{MarkMatcher, parse_preamble};
use super::{intset, listpack, lzf, ziplist, zipmap};

/// The streaming RDB parser, fed in chunks whose sizes come from the first byte, and the
/// logical decoder on every key it delimits (small values only, to keep runs fast).
pub fn rdb(data: &[u8]) {
    let Some((&first, data)) = data.split_first() else {
        return;
    };
    let piece = usize::from(first % 64) + 1;
    let mut p = RdbParser::new();
    let mut version = 0;
    let mut key: Option<(u8, Vec<u8>)> = None;
    for chunk in data.chunks(piece) {
        p.feed(chunk);
        loop {
            match p.next_event() {
                Ok(Some(Event::Header { version: v })) => version = v,
                Ok(Some(Event::KeyStart(h))) => key = Some((h.type_byte, Vec::new())),
                Ok(Some(Event::ValueChunk(c))) => {
                    if let Some((_, v)) = key.as_mut() {
                        if v.len() < 1 << 16 {
                            v.extend_from_slice(c);
                        }
                    }
                }
                Ok(Some(Event::KeyEnd)) => {
                    if let Some((t, v)) = key.take() {
                        let _ = decode_value(t, &v, version);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if p.is_done() {
            break;
        }
    }
    let _ = p.finish();
}

/// The replication framing: the payload preamble line (`$<len>` / `$EOF:<mark>`), then the
/// end-mark matcher fed the rest in pieces.
pub fn preamble(data: &[u8]) {
    let (line, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mark = match parse_preamble(line) {
        Ok(super::replica::Payload::EofMark(m)) => m,
        _ => {
            let mut m = [b'0'; 40];
            for (d, s) in m.iter_mut().zip(line) {
                *d = *s;
            }
            m
        }
    };
    let mut matcher = MarkMatcher::new(mark);
    let piece = rest.first().map_or(1, |&b| usize::from(b % 41) + 1);
    for chunk in rest.chunks(piece) {
        match matcher.feed(chunk) {
            Ok(Some(n)) => {
                assert!(n <= chunk.len());
                break;
            }
            Ok(None) => {}
            Err(_) => break,
        }
    }
}

/// The listpack decoder.
pub fn listpack(data: &[u8]) {
    let _ = listpack::entries(data);
}

/// The ziplist decoder.
pub fn ziplist(data: &[u8]) {
    let _ = ziplist::entries(data);
}

/// The intset decoder.
pub fn intset(data: &[u8]) {
    let _ = intset::values(data);
}

/// The zipmap decoder.
pub fn zipmap(data: &[u8]) {
    let _ = zipmap::pairs(data);
}

/// The LZF decompressors: the first two bytes give the expected length, the third the
/// size of the pieces the incremental [`lzf::Decoder`] is fed, and of its output chunks.
/// The two must agree: the same bytes out, or both refusing.
pub fn lzf(data: &[u8]) {
    let [a, b, piece, input @ ..] = data else {
        return;
    };
    let expected = usize::from(u16::from_le_bytes([*a, *b]));
    let whole = lzf::decompress(input, expected);
    if let Ok(out) = &whole {
        assert_eq!(out.len(), expected);
    }
    let piece = usize::from(*piece % 64) + 1;
    let mut d = lzf::Decoder::new(expected as u64, piece);
    let mut streamed = Vec::new();
    let mut sink = |c: &[u8]| {
        streamed.extend_from_slice(c);
        Ok(())
    };
    let pushed = input.chunks(piece).try_for_each(|c| d.push(c, &mut sink));
    let result = pushed.and_then(|()| d.finish(&mut sink));
    match (&whole, result) {
        (Ok(out), Ok(())) => assert_eq!(out, &streamed, "the two decoders disagree"),
        (Err(_), Err(_)) => {}
        (w, r) => panic!("one decoder accepts what the other refuses: {w:?} vs {r:?}"),
    }
}

/// The logical value decoder, the first byte being the type (its bit 5 set: in Valkey's
/// RDB 80, else Redis' 12); the streaming decoders on the same value; and its re-encoding
/// for older and the other family's versions, which must decode to the same elements.
pub fn value(data: &[u8]) {
    let Some((&t, raw)) = data.split_first() else {
        return;
    };
    let version = if t & 0x20 != 0 { 80 } else { 12 };
    let t = t % 32;
    let whole = decode_value(t, raw, version);
    if let Ok(v) = &whole {
        for target in [9, 10, 11, 12, 80] {
            reencoded_agrees(t, raw, version, v, target);
        }
    }
    // The streaming decoders (restore-test's big keys, restore's rebuilt collections), fed
    // the same bytes in pieces, must not panic either, and must agree with the whole-value
    // decoder whenever both accept the value.
    let Some(mut streamed) = ValueDigester::new(t) else {
        return;
    };
    let piece = usize::from(raw.first().copied().unwrap_or(0) % 17) + 1;
    let digest = raw
        .chunks(piece)
        .try_for_each(|c| streamed.push(c))
        .and_then(|()| streamed.finish());
    if let (Ok(v), Ok(d)) = (&whole, &digest) {
        assert_eq!(
            value_digest(v).as_ref(),
            Some(d),
            "type {t}: the streamed digest differs from the whole value's"
        );
    }
}

/// A value re-encoded for RDB `target` decodes there, to the same elements (but the field
/// TTLs dropped, and the stream metadata the older layout has no place for).
fn reencoded_agrees(t: u8, raw: &[u8], version: u32, v: &Value, target: u32) {
    let (type_byte, value) = match reencode(t, raw, version, target, 0, FieldTtls::Drop) {
        Ok(Reencoded::Value {
            type_byte, value, ..
        }) => (type_byte, value),
        Ok(_) => return,
        Err(e) => panic!("type {t} decodes but does not re-encode for {target}: {e}"),
    };
    let again = decode_value(type_byte, &value, target)
        .unwrap_or_else(|e| panic!("type {t} re-encoded as {type_byte} for {target}: {e}"));
    // (fields whose TTL is not after 0, "now" here, are left out)
    let fields = |v: &Value| match v {
        Value::Hash(f) => {
            let mut f: Vec<(Vec<u8>, Vec<u8>)> = f
                .iter()
                .filter(|f| f.expire_ms.is_none_or(|e| e > 0))
                .map(|f| (f.field.clone(), f.value.clone()))
                .collect();
            f.sort();
            Some(f)
        }
        _ => None,
    };
    match (v, &again) {
        (Value::Stream(a), Value::Stream(b)) => {
            assert_eq!(a.entries, b.entries, "type {t} for {target}");
            assert_eq!(a.groups.len(), b.groups.len(), "type {t} for {target}");
        }
        (Value::Hash(_), Value::Hash(_)) => {
            assert_eq!(fields(v), fields(&again), "type {t} for {target}")
        }
        (a, b) => assert_eq!(value_digest(a), value_digest(b), "type {t} for {target}"),
    }
}

/// The archive record parser and key assembler, on frames cut at points taken from the
/// first two bytes.
pub fn records(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let cut = usize::from(data[0]) % (data.len() - 1);
    let body = &data[2..];
    let cut = cut.min(body.len());
    let mut asm = KeyAssembler::new();
    let mut keys = 0usize;
    let mut count = |_k| {
        keys += 1;
        Ok(())
    };
    if asm.push_frame_each(&body[..cut], &mut count).is_ok() {
        let _ = asm.push_frame_each(&body[cut..], &mut count);
    }
    let _ = asm.finish();
}

#[cfg(test)]
mod tests {
    /// The fuzz targets' own corpus, each input and every one-byte change of it, through
    /// the value and RDB entry points (which assert their decoders agree): a few seconds
    /// of what `fuzz/smoke` does for longer, in every `cargo test`.
    #[test]
    fn corpus_and_its_one_byte_mutants_pass() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        for (target, entry) in [
            ("redis_value", super::value as fn(&[u8])),
            ("rdb", super::rdb as fn(&[u8])),
        ] {
            let mut names: Vec<_> = std::fs::read_dir(root.join(target))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("seed-")
                })
                .collect();
            names.sort();
            assert!(!names.is_empty(), "{target}: no seeds");
            for path in names {
                let seed = std::fs::read(&path).unwrap();
                entry(&seed);
                // (every byte of small seeds; of big ones, a spread of 200)
                let step = (seed.len() / 200).max(1);
                for at in (1..seed.len()).step_by(step) {
                    for flip in [0x01u8, 0xff] {
                        let mut m = seed.clone();
                        m[at] ^= flip;
                        entry(&m);
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn random_values_never_panic(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..120)) {
            super::value(&raw);
        }
    }
}
