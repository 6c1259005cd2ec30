//! Delimiting a value without decoding it.
//!
//! The streaming parser must know where each value ends, but it must not hold a value in
//! memory. Each type's layout is a tiny program of [`Op`]s: read a length, skip a string
//! (any encoding; the body passes through in chunks), skip a fixed number of bytes, skip a
//! string-encoded double, repeat a body as many times as the last length said, or walk a
//! module value's opcode-framed data. The [`Walker`] runs the program over the bytes as
//! they arrive, keeping only a small stack.

use super::types;
use crate::{Error, ErrorKind, Result};

/// One step of a value's layout.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    /// A length; becomes the count of a following `Repeat`.
    Len,
    /// A string in any encoding.
    Str,
    /// This many raw bytes.
    Fixed(u8),
    /// A string-encoded double: u8 length (253–255: NaN, +inf, −inf) and the text.
    DblStr,
    /// The body, as many times as the last `Len` said.
    Repeat(&'static [Op]),
    /// Module data: `<len opcode> <operand>` pairs up to opcode 0 (EOF).
    ModuleOps,
    /// This many lengths; the last one counts a following `Repeat`.
    Lens(u8),
    /// The body, once (a sub-program).
    Repeat1(&'static [Op]),
}

use Op::{DblStr, Fixed, Len, Lens, ModuleOps, Repeat, Repeat1, Str};

const STRING: &[Op] = &[Str];
const LIST: &[Op] = &[Len, Repeat(&[Str])];
const ZSET: &[Op] = &[Len, Repeat(&[Str, DblStr])];
const HASH: &[Op] = &[Len, Repeat(&[Str, Str])];
const ZSET_2: &[Op] = &[Len, Repeat(&[Str, Fixed(8)])];
const MODULE_2: &[Op] = &[Len, ModuleOps];
const QUICKLIST_2: &[Op] = &[Len, Repeat(&[Len, Str])];
const HASH_METADATA_PRE_GA: &[Op] = &[Len, Repeat(&[Len, Str, Str])];
const HASH_METADATA: &[Op] = &[Fixed(8), Len, Repeat(&[Len, Str, Str])];
const HASH_LISTPACK_EX: &[Op] = &[Fixed(8), Str];
/// Valkey 9: count, then (field, value, expiry ms as 8 bytes) for each field.
const VALKEY_HASH_2: &[Op] = &[Len, Repeat(&[Str, Str, Fixed(8)])];

// Streams: the nodes (master id, listpack); then v1: length, last id (2 lengths), the
// group count; v2+: also first id, max deleted id (2 each) and entries added. A group:
// name, last id, [v2+: entries read], the PEL, the consumers ([v3: active time]).
const PEL: &[Op] = &[Fixed(16), Fixed(8), Len];
const CONSUMER_V1: &[Op] = &[Str, Fixed(8), Len, Repeat(&[Fixed(16)])];
const CONSUMER_V3: &[Op] = &[Str, Fixed(8), Fixed(8), Len, Repeat(&[Fixed(16)])];
const GROUP_V1: &[Op] = &[Str, Lens(3), Repeat(PEL), Len, Repeat(CONSUMER_V1)];
const GROUP_V2: &[Op] = &[Str, Lens(4), Repeat(PEL), Len, Repeat(CONSUMER_V1)];
const GROUP_V3: &[Op] = &[Str, Lens(4), Repeat(PEL), Len, Repeat(CONSUMER_V3)];
const NODES: &[Op] = &[Len, Repeat(&[Str, Str])];
const STREAM_V1: &[Op] = &[Repeat1(NODES), Lens(4), Repeat(GROUP_V1)];
const STREAM_V2: &[Op] = &[Repeat1(NODES), Lens(9), Repeat(GROUP_V2)];
const STREAM_V3: &[Op] = &[Repeat1(NODES), Lens(9), Repeat(GROUP_V3)];
/// MODULE_AUX: module id, `when` opcode (must be 2), `when`, then module data.
pub(crate) const MODULE_AUX: &[Op] = &[Len, Len, Len, ModuleOps];

/// The layout program of a value of `type_byte` in RDB `version`, or why it cannot be
/// delimited.
pub(crate) fn program(type_byte: u8, version: u32, at: u64) -> Result<&'static [Op]> {
    use types as t;
    if super::is_valkey(version) {
        match type_byte {
            t::VALKEY_HASH_2 => return Ok(VALKEY_HASH_2),
            b if b > t::VALKEY_HASH_2 => return Err(unknown_type(b, version, at)),
            _ => {}
        }
    }
    Ok(match type_byte {
        t::STRING
        | t::HASH_ZIPMAP
        | t::LIST_ZIPLIST
        | t::SET_INTSET
        | t::ZSET_ZIPLIST
        | t::HASH_ZIPLIST
        | t::HASH_LISTPACK
        | t::ZSET_LISTPACK
        | t::SET_LISTPACK
        | t::HASH_LISTPACK_EX_PRE_GA => STRING,
        t::LIST | t::SET | t::LIST_QUICKLIST => LIST,
        t::ZSET => ZSET,
        t::HASH => HASH,
        t::ZSET_2 => ZSET_2,
        t::MODULE_2 => MODULE_2,
        t::LIST_QUICKLIST_2 => QUICKLIST_2,
        t::STREAM_LISTPACKS => STREAM_V1,
        t::STREAM_LISTPACKS_2 => STREAM_V2,
        t::STREAM_LISTPACKS_3 => STREAM_V3,
        t::HASH_METADATA_PRE_GA => HASH_METADATA_PRE_GA,
        t::HASH_METADATA => HASH_METADATA,
        t::HASH_LISTPACK_EX => HASH_LISTPACK_EX,
        t::MODULE_PRE_GA => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "RDB type 6 (pre-release module value) at byte {at}: Redis itself no longer \
                     loads it"
                ),
            ));
        }
        other => return Err(unknown_type(other, version, at)),
    })
}

pub(crate) fn unknown_type(t: u8, version: u32, at: u64) -> Error {
    let hint = match t {
        23..=40 if super::is_valkey(version) => " (a type newer than Valkey's RDB 80)",
        _ if super::is_valkey(version) => "",
        26 | 27 => " (a stream written by Redis 8.6 or later)",
        28 => " (an array, Redis 8.8 or later)",
        29..=33 => " (a type newer than RDB 12)",
        _ => "",
    };
    Error::new(
        ErrorKind::Unsupported,
        format!("unknown RDB value type or opcode {t} ({t:#04x}) at byte {at}{hint}"),
    )
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    prog: &'static [Op],
    pc: usize,
    remaining: u64,
}

/// Where a walk stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Walk {
    /// The value is complete.
    Done,
    /// The input is used up; feed more.
    NeedMore,
    /// The chunk limit is reached; hand the bytes over and call again.
    ChunkFull,
}

/// A value being delimited.
#[derive(Debug, Default)]
pub(crate) struct Walker {
    stack: Vec<Frame>,
    last_len: u64,
    skip: u64,
    module_operand: Option<u64>,
}

/// What the walker reads from and advances: the parser's input.
pub(crate) trait Input {
    /// Unconsumed bytes.
    fn avail(&self) -> &[u8];
    /// Absolute offset of `avail()[0]`.
    fn offset(&self) -> u64;
    /// Consumes `n` bytes.
    fn consume(&mut self, n: usize);
    /// Bytes that may still be consumed before the current chunk is full.
    fn room(&self) -> usize;
    /// Bytes consumed into the current chunk so far.
    fn pending(&self) -> usize;
}

/// Whether a header of `n` bytes must wait for the next chunk: headers are not split,
/// so a chunk holds at most `max(chunk size, 19)` bytes (19: the largest string header).
fn header_waits(input: &impl Input, n: usize) -> bool {
    n > input.room() && input.pending() > 0
}

impl Walker {
    pub(crate) fn new(prog: &'static [Op]) -> Self {
        Walker {
            stack: vec![Frame {
                prog,
                pc: 0,
                remaining: 1,
            }],
            ..Walker::default()
        }
    }

    /// Runs until the value ends, the input runs out or the chunk is full.
    pub(crate) fn walk(&mut self, input: &mut impl Input) -> Result<Walk> {
        use super::primitives::{plain_length, string_header};
        loop {
            if input.room() == 0 {
                return Ok(Walk::ChunkFull);
            }
            if self.skip > 0 {
                let n = (self.skip.min(input.avail().len() as u64) as usize).min(input.room());
                if n == 0 {
                    return Ok(Walk::NeedMore);
                }
                input.consume(n);
                self.skip -= n as u64;
                continue;
            }
            if let Some(op) = self.module_operand {
                let at = input.offset();
                if op == 5 {
                    let Some(h) = string_header(input.avail(), at)? else {
                        return Ok(Walk::NeedMore);
                    };
                    if header_waits(input, h.header_len) {
                        return Ok(Walk::ChunkFull);
                    }
                    input.consume(h.header_len);
                    self.skip = h.body_len;
                } else {
                    let Some((_, used)) = plain_length(input.avail(), at)? else {
                        return Ok(Walk::NeedMore);
                    };
                    if header_waits(input, used) {
                        return Ok(Walk::ChunkFull);
                    }
                    input.consume(used);
                }
                self.module_operand = None;
                continue;
            }
            let Some(frame) = self.stack.last_mut() else {
                return Ok(Walk::Done);
            };
            if frame.pc == frame.prog.len() {
                frame.remaining -= 1;
                if frame.remaining == 0 {
                    self.stack.pop();
                    if let Some(parent) = self.stack.last_mut() {
                        parent.pc += 1;
                    }
                } else {
                    frame.pc = 0;
                }
                continue;
            }
            let at = input.offset();
            match frame.prog[frame.pc] {
                Len => {
                    let Some((n, used)) = plain_length(input.avail(), at)? else {
                        return Ok(Walk::NeedMore);
                    };
                    if header_waits(input, used) {
                        return Ok(Walk::ChunkFull);
                    }
                    input.consume(used);
                    self.last_len = n;
                    frame.pc += 1;
                }
                Str => {
                    let Some(h) = string_header(input.avail(), at)? else {
                        return Ok(Walk::NeedMore);
                    };
                    if header_waits(input, h.header_len) {
                        return Ok(Walk::ChunkFull);
                    }
                    input.consume(h.header_len);
                    self.skip = h.body_len;
                    frame.pc += 1;
                }
                Fixed(n) => {
                    self.skip = u64::from(n);
                    frame.pc += 1;
                }
                DblStr => {
                    let Some(&b) = input.avail().first() else {
                        return Ok(Walk::NeedMore);
                    };
                    if header_waits(input, 1) {
                        return Ok(Walk::ChunkFull);
                    }
                    input.consume(1);
                    self.skip = if b < 253 { u64::from(b) } else { 0 };
                    frame.pc += 1;
                }
                Repeat(body) => {
                    if self.last_len == 0 {
                        frame.pc += 1;
                    } else {
                        let remaining = self.last_len;
                        self.stack.push(Frame {
                            prog: body,
                            pc: 0,
                            remaining,
                        });
                    }
                }
                Repeat1(body) => self.stack.push(Frame {
                    prog: body,
                    pc: 0,
                    remaining: 1,
                }),
                Lens(n) => self.stack.push(Frame {
                    prog: &[Len],
                    pc: 0,
                    remaining: u64::from(n),
                }),
                ModuleOps => {
                    let Some((op, used)) = plain_length(input.avail(), at)? else {
                        return Ok(Walk::NeedMore);
                    };
                    if header_waits(input, used) {
                        return Ok(Walk::ChunkFull);
                    }
                    input.consume(used);
                    match op {
                        0 => frame.pc += 1,
                        1 | 2 | 5 => self.module_operand = Some(op),
                        3 => self.skip = 4,
                        4 => self.skip = 8,
                        other => {
                            return Err(super::primitives::corrupt_at(
                                at,
                                format!("unknown module data opcode {other}"),
                            ));
                        }
                    }
                }
            }
        }
    }
}
