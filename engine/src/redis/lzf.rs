//! LZF decompression, as Redis uses it for compressed RDB strings (encoding `0xC3`).
//!
//! The stream is a sequence of runs. A control byte `c < 32` is followed by `c + 1`
//! literal bytes. Otherwise `c >> 5` is a length (7 means "add the next byte"), and the
//! low 5 bits with the next byte form a distance: `len + 2` bytes are copied from
//! `distance + 1` bytes back in the output, possibly overlapping what is being written.

use crate::Result;
use crate::redis::corrupt;

/// Decompresses `input`, which must expand to exactly `expected_len` bytes.
///
/// The output never grows past `expected_len`, and it is allocated as it is produced,
/// so a hostile `expected_len` costs nothing the input does not actually expand to.
pub fn decompress(input: &[u8], expected_len: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decompress_into(input, expected_len, &mut out)?;
    Ok(out)
}

/// [`decompress`], appending to `out` (on error, `out` is left as it was).
///
/// The output is allocated as it is produced, so a hostile `expected_len` costs
/// nothing the input does not actually expand to.
pub fn decompress_into(input: &[u8], expected_len: usize, out: &mut Vec<u8>) -> Result<()> {
    let base = out.len();
    let r = expand(input, expected_len, base, out);
    if r.is_err() {
        out.truncate(base);
    }
    r
}

fn expand(input: &[u8], expected_len: usize, base: usize, out: &mut Vec<u8>) -> Result<()> {
    let end = base.saturating_add(expected_len);
    // LZF expands at most 88x (a 3-byte back-reference copies 264 bytes).
    out.reserve(expected_len.min(input.len().saturating_mul(4) + 64));
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            let lit = input.get(ip..ip + n).ok_or_else(|| {
                corrupt(
                    "LZF string",
                    ip,
                    format!("literal run of {n} bytes past the end"),
                )
            })?;
            if out.len() + n > end {
                return Err(too_long(ip, expected_len));
            }
            out.extend_from_slice(lit);
            ip += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                let &extra = input
                    .get(ip)
                    .ok_or_else(|| corrupt("LZF string", ip, "back-reference cut short"))?;
                len += usize::from(extra);
                ip += 1;
            }
            let &low = input
                .get(ip)
                .ok_or_else(|| corrupt("LZF string", ip, "back-reference cut short"))?;
            ip += 1;
            let distance = ((ctrl & 0x1f) << 8) + usize::from(low) + 1;
            let written = out.len() - base;
            if distance > written {
                return Err(corrupt(
                    "LZF string",
                    ip - 1,
                    format!("back-reference {distance} bytes back with only {written} written"),
                ));
            }
            let n = len + 2;
            if out.len() + n > end {
                return Err(too_long(ip, expected_len));
            }
            let start = out.len() - distance;
            // Overlapping when distance < n: the last `distance` bytes repeat, so copying
            // the longest run already there at each step gives the same bytes.
            let mut left = n;
            while left > 0 {
                let step = left.min(out.len() - start);
                out.extend_from_within(start..start + step);
                left -= step;
            }
        }
    }
    if out.len() != end {
        return Err(corrupt(
            "LZF string",
            input.len(),
            format!(
                "expanded to {} bytes, declared {expected_len}",
                out.len() - base
            ),
        ));
    }
    Ok(())
}

/// The farthest an LZF back-reference reaches: 13 bits of distance, plus one.
const MAX_DISTANCE: usize = 8192;

/// Where a [`Decoder`] stands between two input pieces.
#[derive(Clone, Copy, Debug)]
enum State {
    /// Expecting a control byte.
    Ctrl,
    /// Inside a literal run: this many bytes to copy.
    Literal(usize),
    /// A back-reference whose length byte (`ctrl >> 5 == 7`) is next.
    LenByte(usize),
    /// A back-reference of this control byte and length, whose distance byte is next.
    DistByte(usize, usize),
}

/// LZF decompression of an input that arrives in pieces, producing its output in chunks:
/// memory is the 8 KiB window back-references reach plus one chunk, whatever the size.
pub struct Decoder {
    state: State,
    /// The window (the last `MAX_DISTANCE` bytes already handed out) then the output not
    /// handed out yet.
    buf: Vec<u8>,
    /// Where the output not handed out yet starts in `buf`.
    fresh: usize,
    /// Output bytes produced so far.
    produced: u64,
    /// Input bytes consumed so far.
    consumed: u64,
    expected_len: u64,
    chunk: usize,
}

impl Decoder {
    /// A decoder of a stream that must expand to exactly `expected_len` bytes, handing out
    /// chunks of about `chunk` bytes.
    pub fn new(expected_len: u64, chunk: usize) -> Self {
        let chunk = chunk.max(1);
        Decoder {
            state: State::Ctrl,
            buf: Vec::with_capacity(MAX_DISTANCE + chunk + 300),
            fresh: 0,
            produced: 0,
            consumed: 0,
            expected_len,
            chunk,
        }
    }

    fn grow(&mut self, n: usize) -> Result<()> {
        self.produced += n as u64;
        if self.produced > self.expected_len {
            return Err(corrupt(
                "LZF string",
                self.consumed as usize,
                format!(
                    "expands past its declared length of {} bytes",
                    self.expected_len
                ),
            ));
        }
        Ok(())
    }

    /// Hands out the fresh output if it reached a chunk (or `all`), keeping the window.
    fn drain(&mut self, all: bool, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        if self.buf.len() - self.fresh >= self.chunk || (all && self.buf.len() > self.fresh) {
            out(&self.buf[self.fresh..])?;
            let keep_from = self.buf.len().saturating_sub(MAX_DISTANCE);
            self.buf.drain(..keep_from);
            self.fresh = self.buf.len();
        }
        Ok(())
    }

    /// Decodes the next piece of input, calling `out` with each chunk of output.
    pub fn push(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let mut ip = 0;
        while ip < input.len() {
            match self.state {
                State::Ctrl => {
                    let ctrl = usize::from(input[ip]);
                    ip += 1;
                    self.state = if ctrl < 32 {
                        State::Literal(ctrl + 1)
                    } else if ctrl >> 5 == 7 {
                        State::LenByte(ctrl)
                    } else {
                        State::DistByte(ctrl, ctrl >> 5)
                    };
                }
                State::Literal(n) => {
                    let take = n.min(input.len() - ip);
                    self.grow(take)?;
                    self.buf.extend_from_slice(&input[ip..ip + take]);
                    ip += take;
                    self.state = if take == n {
                        State::Ctrl
                    } else {
                        State::Literal(n - take)
                    };
                }
                State::LenByte(ctrl) => {
                    self.state = State::DistByte(ctrl, 7 + usize::from(input[ip]));
                    ip += 1;
                }
                State::DistByte(ctrl, len) => {
                    let distance = ((ctrl & 0x1f) << 8) + usize::from(input[ip]) + 1;
                    ip += 1;
                    if distance > self.buf.len() {
                        return Err(corrupt(
                            "LZF string",
                            self.consumed as usize + ip - 1,
                            format!("back-reference {distance} bytes back before the start"),
                        ));
                    }
                    let n = len + 2;
                    self.grow(n)?;
                    let start = self.buf.len() - distance;
                    let mut left = n;
                    while left > 0 {
                        let step = left.min(self.buf.len() - start);
                        self.buf.extend_from_within(start..start + step);
                        left -= step;
                    }
                    self.state = State::Ctrl;
                }
            }
            if self.buf.len() - self.fresh >= self.chunk {
                self.drain(false, out)?;
            }
        }
        self.consumed += input.len() as u64;
        Ok(())
    }

    /// Ends the stream: hands out the rest, failing unless exactly `expected_len` bytes
    /// came out of whole runs.
    pub fn finish(mut self, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        if !matches!(self.state, State::Ctrl) {
            return Err(corrupt(
                "LZF string",
                self.consumed as usize,
                "the input ends inside a run",
            ));
        }
        if self.produced != self.expected_len {
            return Err(corrupt(
                "LZF string",
                self.consumed as usize,
                format!(
                    "expanded to {} bytes, declared {}",
                    self.produced, self.expected_len
                ),
            ));
        }
        self.drain(true, out)
    }
}

fn too_long(at: usize, expected_len: usize) -> crate::Error {
    corrupt(
        "LZF string",
        at,
        format!("expands past its declared length of {expected_len} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_overlapping_back_references() {
        // "aaaaaaaaaa": literal 'a', then copy 9 bytes from distance 1.
        let input = [0x00, b'a', (7 << 5), 9 - 2 - 7, 0x00];
        assert_eq!(decompress(&input, 10).unwrap(), b"aaaaaaaaaa");
        // "abcabcabc": literal "abc", then 6 bytes from distance 3.
        let input = [0x02, b'a', b'b', b'c', (4 << 5), 0x02];
        assert_eq!(decompress(&input, 9).unwrap(), b"abcabcabc");
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        assert!(decompress(&[0x05, b'a'], 6).is_err()); // literal past the end
        assert!(decompress(&[0x20, 0x00], 3).is_err()); // reference before the start
        assert!(decompress(&[0x00, b'a'], 2).is_err()); // too short
        assert!(decompress(&[0x01, b'a', b'b'], 1).is_err()); // too long
        assert!(decompress(&[0xe0], 100).is_err()); // cut short
        assert!(decompress(&[0x00, b'a', 0xe0, 0xff, 0x00], usize::MAX).is_err());
    }

    /// The streaming decoder agrees with the one-shot one, however the input is cut.
    fn streamed(input: &[u8], len: usize, cut: usize, chunk: usize) -> Result<Vec<u8>> {
        let mut d = Decoder::new(len as u64, chunk);
        let mut out = Vec::new();
        let mut sink = |c: &[u8]| {
            out.extend_from_slice(c);
            Ok(())
        };
        for piece in input.chunks(cut.max(1)) {
            d.push(piece, &mut sink)?;
        }
        d.finish(&mut sink)?;
        Ok(out)
    }

    #[test]
    fn streaming_matches_one_shot() {
        let input = [0x02, b'a', b'b', b'c', (4 << 5), 0x02, (7 << 5), 20, 0x05];
        let whole = decompress(&input, 38).unwrap();
        for cut in 1..input.len() + 1 {
            for chunk in [1, 3, 64] {
                assert_eq!(streamed(&input, 38, cut, chunk).unwrap(), whole);
            }
        }
        assert!(streamed(&input, 37, 2, 4).is_err());
        assert!(streamed(&input, 39, 2, 4).is_err());
        assert!(streamed(&input[..8], 38, 2, 4).is_err());
        assert!(streamed(&[0x20, 0x00], 3, 1, 1).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
                        len in 0usize..300) {
            let _ = decompress(&input, len);
        }

        #[test]
        fn streaming_agrees(input in proptest::collection::vec(proptest::num::u8::ANY, 0..96),
                            len in 0usize..400, cut in 1usize..9, chunk in 1usize..40) {
            let a = decompress(&input, len).ok();
            let b = streamed(&input, len, cut, chunk).ok();
            proptest::prop_assert_eq!(a, b);
        }
    }
}
