//! Entry points for the cargo-fuzz targets in `fuzz/`: each feeds arbitrary bytes to one
//! parser or decoder of the Redis side. None of them may panic, whatever the input.

use super::elements::{ValueDigester, value_digest};
use super::rdb::{Event, RdbParser, decode_value};
use super::record::KeyAssembler;
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

/// The logical value decoder, the first byte being the type; and the streaming decoders on
/// the same value.
pub fn value(data: &[u8]) {
    let Some((&t, raw)) = data.split_first() else {
        return;
    };
    let t = t % 32;
    let whole = decode_value(t, raw, 12);
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
