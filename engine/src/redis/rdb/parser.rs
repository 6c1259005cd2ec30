//! The incremental RDB parser.
//!
//! [`RdbParser`] is fed bytes as they arrive ([`RdbParser::feed`]) and hands out
//! [`Event`]s ([`RdbParser::next_event`]) until it needs more. It never holds a whole value:
//! a key's raw value bytes come out as [`Event::ValueChunk`]s of at most `chunk_size`
//! bytes, between [`Event::KeyStart`] and [`Event::KeyEnd`]. What it does buffer whole is
//! small by nature: a key name, an AUX field, a function library, a module's AUX data.
//!
//! Between two calls the internal buffer holds only bytes not yet handed out, so memory is
//! bounded by the largest feed plus the largest key name.

use super::primitives::{self, corrupt_at, plain_length};
use super::walker::{self, Input, Walk, Walker};
use super::{MAX_RDB_VERSION, VALKEY_RDB_VERSION, opcodes};
use crate::redis::crc64::Crc64;
use crate::{Error, ErrorKind, Result};

/// What comes before a key's type byte: the key-level opcodes that apply to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyMeta {
    /// Absolute expiry, unix milliseconds (EXPIRETIME_MS, or EXPIRETIME × 1000).
    pub expire_ms: Option<i64>,
    /// LRU idle time in seconds (IDLE).
    pub idle_s: Option<u64>,
    /// LFU frequency counter (FREQ).
    pub freq: Option<u8>,
}

/// The start of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyHeader {
    /// The database (SELECTDB) it is in.
    pub db: u64,
    /// The key, decoded.
    pub key: Vec<u8>,
    /// The RDB value type byte.
    pub type_byte: u8,
    /// Expiry and eviction metadata.
    pub meta: KeyMeta,
}

/// One thing the parser found.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The magic: `REDIS` and the RDB version.
    Header {
        /// RDB format version.
        version: u32,
    },
    /// An AUX field (`redis-ver`, `ctime`, `repl-id`, `lua` scripts of old replicas…).
    Aux {
        /// Field name.
        key: Vec<u8>,
        /// Field value.
        value: Vec<u8>,
    },
    /// SELECTDB: keys that follow are in this database.
    SelectDb(u64),
    /// RESIZEDB: size hints for the current database.
    ResizeDb {
        /// Keys in the database.
        db_size: u64,
        /// Keys with an expiry.
        expires_size: u64,
    },
    /// SLOT_INFO (cluster mode, RDB 12): size hints for a hash slot.
    SlotInfo {
        /// Slot number.
        slot: u64,
        /// Keys in the slot.
        size: u64,
        /// Keys with an expiry in the slot.
        expires_size: u64,
    },
    /// FUNCTION2: one function library's source code.
    Function(Vec<u8>),
    /// MODULE_AUX: a module's global data, raw: `<len module id> <len 2> <len when>`
    /// then the module's opcode-framed data and `<len 0>`.
    ModuleAux {
        /// The module type id (name and encoding version, see [`super::module_name`]).
        module_id: u64,
        /// 1: loaded before the keyspace; 2: after it.
        when: u64,
        /// The bytes exactly as in the RDB, after the opcode.
        raw: Vec<u8>,
    },
    /// A key starts; its value bytes follow as [`Event::ValueChunk`]s.
    KeyStart(KeyHeader),
    /// The next piece of the current key's value, exactly as in the RDB.
    ValueChunk(&'a [u8]),
    /// The current key's value is complete.
    KeyEnd,
    /// The EOF opcode, and the checksum trailer if the version has one (0: not computed).
    /// Verified before this event is returned.
    End {
        /// The trailer's CRC-64, when the version has one.
        checksum: Option<u64>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Magic,
    Top,
    KeyName(u8),
    Value,
    ValueEnd,
    ModuleAux,
    Checksum,
    Done,
}

/// The incremental RDB parser; see the module documentation.
pub struct RdbParser {
    buf: Vec<u8>,
    pos: usize,
    span_start: usize,
    base: u64,
    crc: Crc64,
    version: u32,
    state: State,
    db: u64,
    meta: KeyMeta,
    chunk_size: usize,
    walker: Walker,
    module_aux: Vec<u8>,
}

/// The parser's view of its buffer for the walker.
struct View<'p> {
    p: &'p mut RdbParser,
    limit: usize,
}

impl Input for View<'_> {
    fn avail(&self) -> &[u8] {
        &self.p.buf[self.p.pos..]
    }
    fn offset(&self) -> u64 {
        self.p.base + self.p.pos as u64
    }
    fn consume(&mut self, n: usize) {
        self.p.consume(n);
    }
    fn room(&self) -> usize {
        self.limit.saturating_sub(self.p.pos - self.p.span_start)
    }
    fn pending(&self) -> usize {
        self.p.pos - self.p.span_start
    }
}

/// Default largest [`Event::ValueChunk`].
pub const DEFAULT_CHUNK_SIZE: usize = 256 << 10;

impl Default for RdbParser {
    fn default() -> Self {
        Self::new()
    }
}

impl RdbParser {
    /// A parser with the default chunk size.
    pub fn new() -> Self {
        Self::with_chunk_size(DEFAULT_CHUNK_SIZE)
    }

    /// A parser whose value chunks hold at most `chunk_size` bytes (at least 1).
    pub fn with_chunk_size(chunk_size: usize) -> Self {
        RdbParser {
            buf: Vec::new(),
            pos: 0,
            span_start: 0,
            base: 0,
            crc: Crc64::new(),
            version: 0,
            state: State::Magic,
            db: 0,
            meta: KeyMeta::default(),
            chunk_size: chunk_size.max(1),
            walker: Walker::default(),
            module_aux: Vec::new(),
        }
    }

    /// The RDB version, once the header has been read (0 before).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Bytes of the RDB consumed so far.
    pub fn consumed(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// The database of the keys being read (the last SELECTDB; 0 before any).
    pub fn current_db(&self) -> u64 {
        self.db
    }

    /// Bytes held in the input buffer (not yet handed out, or waiting to be).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether the EOF opcode and the checksum have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Bytes fed after the end of the RDB (only meaningful once [`is_done`](Self::is_done)).
    pub fn trailing(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Adds input. Call it when [`next_event`](Self::next_event) returns `None`.
    pub fn feed(&mut self, data: &[u8]) {
        // Everything before `pos` has been handed out (no chunk is pending between calls).
        let drop = self.pos.min(self.span_start);
        if drop > 0 {
            self.buf.drain(..drop);
            self.base += drop as u64;
            self.pos -= drop;
            self.span_start -= drop;
        }
        self.buf.extend_from_slice(data);
    }

    /// Fails unless the RDB is complete: call it when the input ends.
    pub fn finish(&self) -> Result<()> {
        if self.state == State::Done {
            return Ok(());
        }
        let at = self.consumed();
        let what = match self.state {
            State::Magic => "in the header".to_string(),
            State::KeyName(_) | State::Value | State::ValueEnd => {
                format!("inside a key in db {}", self.db)
            }
            State::ModuleAux => "inside module AUX data".to_string(),
            State::Checksum => "in the checksum trailer".to_string(),
            State::Top => "before the EOF opcode".to_string(),
            State::Done => unreachable!("checked above"),
        };
        Err(Error::new(
            ErrorKind::Corrupt,
            format!("the RDB is truncated: it ends at byte {at}, {what}"),
        ))
    }

    fn consume(&mut self, n: usize) {
        self.crc.update(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
    }

    fn at(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Takes the pending chunk of value bytes (possibly empty).
    fn take_span(&mut self) -> (usize, usize) {
        let span = (self.span_start, self.pos);
        self.span_start = self.pos;
        span
    }

    /// The next event, or `None` when more input is needed (or after the end).
    pub fn next_event(&mut self) -> Result<Option<Event<'_>>> {
        loop {
            // Outside a value nothing is pending: keep `span_start` at `pos`.
            if !matches!(self.state, State::Value | State::ModuleAux) {
                self.span_start = self.pos;
            }
            match self.state {
                State::Done => return Ok(None),
                State::Magic => return self.magic(),
                State::Top => {
                    let before = self.pos;
                    if let Some(ev) = self.top()? {
                        return Ok(Some(ev));
                    }
                    if self.pos == before && self.state == State::Top {
                        return Ok(None);
                    }
                }
                State::KeyName(type_byte) => {
                    let at = self.at();
                    let Some((key, used)) = primitives::string(self.avail(), at)? else {
                        return Ok(None);
                    };
                    self.consume(used);
                    let prog = walker::program(type_byte, self.version, at - 1)?;
                    self.walker = Walker::new(prog);
                    self.span_start = self.pos;
                    self.state = State::Value;
                    let meta = std::mem::take(&mut self.meta);
                    return Ok(Some(Event::KeyStart(KeyHeader {
                        db: self.db,
                        key,
                        type_byte,
                        meta,
                    })));
                }
                State::Value => {
                    let mut w = std::mem::take(&mut self.walker);
                    let limit = self.chunk_size;
                    let r = w.walk(&mut View { p: self, limit });
                    self.walker = w;
                    let r = r?;
                    if r == Walk::Done {
                        self.state = State::ValueEnd;
                    }
                    let (a, b) = self.take_span();
                    if a < b {
                        return Ok(Some(Event::ValueChunk(&self.buf[a..b])));
                    }
                    if r == Walk::NeedMore {
                        return Ok(None);
                    }
                }
                State::ValueEnd => {
                    self.state = State::Top;
                    return Ok(Some(Event::KeyEnd));
                }
                State::ModuleAux => {
                    let mut w = std::mem::take(&mut self.walker);
                    let r = w.walk(&mut View {
                        p: self,
                        limit: usize::MAX,
                    });
                    self.walker = w;
                    let r = r?;
                    let (a, b) = self.take_span();
                    self.module_aux.extend_from_slice(&self.buf[a..b]);
                    if r == Walk::NeedMore {
                        return Ok(None);
                    }
                    self.state = State::Top;
                    let raw = std::mem::take(&mut self.module_aux);
                    let (module_id, n) = plain_length(&raw, 0)?.expect("walked");
                    let (when_op, m) = plain_length(&raw[n..], 0)?.expect("walked");
                    let (when, _) = plain_length(&raw[n + m..], 0)?.expect("walked");
                    if when_op != 2 {
                        return Err(corrupt_at(
                            self.at(),
                            format!("module AUX 'when' has opcode {when_op}, expected 2"),
                        ));
                    }
                    return Ok(Some(Event::ModuleAux {
                        module_id,
                        when,
                        raw,
                    }));
                }
                State::Checksum => {
                    let Some(trailer) = self.avail().get(..8) else {
                        return Ok(None);
                    };
                    let stored = u64::from_le_bytes(trailer.try_into().expect("8 bytes"));
                    let at = self.at();
                    self.pos += 8; // the trailer is not part of its own checksum
                    self.state = State::Done;
                    let computed = self.crc.value();
                    if stored != 0 && stored != computed {
                        return Err(Error::new(
                            ErrorKind::Corrupt,
                            format!(
                                "RDB checksum mismatch: the trailer at byte {at} says \
                                 {stored:016x}, the data hashes to {computed:016x}"
                            ),
                        ));
                    }
                    return Ok(Some(Event::End {
                        checksum: Some(stored),
                    }));
                }
            }
        }
    }

    fn magic(&mut self) -> Result<Option<Event<'_>>> {
        let Some(head) = self.avail().get(..9) else {
            if !b"REDIS".starts_with(&self.avail()[..self.avail().len().min(5)])
                && !b"VALKEY".starts_with(&self.avail()[..self.avail().len().min(6)])
            {
                return Err(not_rdb(self.avail()));
            }
            return Ok(None);
        };
        let version = match head {
            [b'V', b'A', b'L', b'K', b'E', b'Y', digits @ ..] => {
                if !digits.iter().all(u8::is_ascii_digit) {
                    return Err(not_rdb(head));
                }
                let v = ascii_number(digits);
                // Valkey writes its own magic from RDB 80 on; below that it is REDIS.
                if v < VALKEY_RDB_VERSION {
                    return Err(Error::new(
                        ErrorKind::Corrupt,
                        format!("a VALKEY magic with RDB version {v}: Valkey's start at 80"),
                    ));
                }
                if v > VALKEY_RDB_VERSION {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!(
                            "Valkey RDB version {v} is newer than this build supports (up to \
                             {VALKEY_RDB_VERSION}, Valkey 9)"
                        ),
                    ));
                }
                v
            }
            [b'R', b'E', b'D', b'I', b'S', digits @ ..]
                if digits.iter().all(u8::is_ascii_digit) =>
            {
                let v = ascii_number(digits);
                if v == 0 {
                    return Err(Error::new(
                        ErrorKind::Corrupt,
                        "RDB version 0 does not exist",
                    ));
                }
                if v > MAX_RDB_VERSION {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!(
                            "RDB version {v} is newer than this build supports (up to \
                             {MAX_RDB_VERSION}, Redis 7.4–8.4; and Valkey's {VALKEY_RDB_VERSION})"
                        ),
                    ));
                }
                v
            }
            _ => return Err(not_rdb(head)),
        };
        self.consume(9);
        self.version = version;
        self.state = State::Top;
        Ok(Some(Event::Header { version }))
    }

    /// One top-level opcode. `Ok(None)` with the state unchanged: more input needed;
    /// with the state changed: go on.
    fn top(&mut self) -> Result<Option<Event<'static>>> {
        let at = self.at();
        let b = self.avail();
        let Some(&op) = b.first() else {
            return Ok(None);
        };
        let rest = &b[1..];
        match op {
            opcodes::EOF => {
                self.consume(1);
                if self.version >= 5 {
                    self.state = State::Checksum;
                    Ok(None)
                } else {
                    self.state = State::Done;
                    Ok(Some(Event::End { checksum: None }))
                }
            }
            opcodes::SELECTDB => {
                let Some((db, used)) = plain_length(rest, at + 1)? else {
                    return Ok(None);
                };
                self.consume(1 + used);
                self.db = db;
                Ok(Some(Event::SelectDb(db)))
            }
            opcodes::RESIZEDB => {
                let Some((db_size, a)) = plain_length(rest, at + 1)? else {
                    return Ok(None);
                };
                let Some((expires_size, c)) = plain_length(&rest[a..], at + 1 + a as u64)? else {
                    return Ok(None);
                };
                self.consume(1 + a + c);
                Ok(Some(Event::ResizeDb {
                    db_size,
                    expires_size,
                }))
            }
            opcodes::SLOT_INFO => {
                let Some((slot, a)) = plain_length(rest, at + 1)? else {
                    return Ok(None);
                };
                let Some((size, c)) = plain_length(&rest[a..], at + 1 + a as u64)? else {
                    return Ok(None);
                };
                let Some((expires_size, d)) =
                    plain_length(&rest[a + c..], at + 1 + (a + c) as u64)?
                else {
                    return Ok(None);
                };
                self.consume(1 + a + c + d);
                Ok(Some(Event::SlotInfo {
                    slot,
                    size,
                    expires_size,
                }))
            }
            opcodes::AUX => {
                let Some((key, a)) = primitives::string(rest, at + 1)? else {
                    return Ok(None);
                };
                let Some((value, c)) = primitives::string(&rest[a..], at + 1 + a as u64)? else {
                    return Ok(None);
                };
                self.consume(1 + a + c);
                Ok(Some(Event::Aux { key, value }))
            }
            opcodes::FUNCTION2 => {
                let Some((code, a)) = primitives::string(rest, at + 1)? else {
                    return Ok(None);
                };
                self.consume(1 + a);
                Ok(Some(Event::Function(code)))
            }
            opcodes::FUNCTION_PRE_GA => Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "pre-release function format (opcode 246, Redis 7.0 release candidates) \
                     at byte {at}: Redis itself no longer loads it"
                ),
            )),
            opcodes::MODULE_AUX => {
                self.consume(1);
                self.walker = Walker::new(walker::MODULE_AUX);
                self.span_start = self.pos;
                self.state = State::ModuleAux;
                Ok(None)
            }
            opcodes::EXPIRETIME_MS => {
                let Some(v) = rest.get(..8) else {
                    return Ok(None);
                };
                let v = i64::from_le_bytes(v.try_into().expect("8"));
                self.meta.expire_ms = Some(v);
                self.consume(9);
                Ok(None)
            }
            opcodes::EXPIRETIME => {
                let Some(v) = rest.get(..4) else {
                    return Ok(None);
                };
                let secs = i32::from_le_bytes(v.try_into().expect("4"));
                self.meta.expire_ms = Some(i64::from(secs) * 1000);
                self.consume(5);
                Ok(None)
            }
            opcodes::FREQ => {
                let Some(&f) = rest.first() else {
                    return Ok(None);
                };
                let f: u8 = f;
                self.meta.freq = Some(f);
                self.consume(2);
                Ok(None)
            }
            opcodes::IDLE => {
                let Some((idle, a)) = plain_length(rest, at + 1)? else {
                    return Ok(None);
                };
                self.meta.idle_s = Some(idle);
                self.consume(1 + a);
                Ok(None)
            }
            opcodes::ENTERPRISE_RAM_LRU => {
                // Redis Enterprise writes its own LRU hint before a key; it means nothing
                // to open-source Redis, so it is skipped like librdb does.
                let Some((_, a)) = plain_length(rest, at + 1)? else {
                    return Ok(None);
                };
                self.consume(1 + a);
                Ok(None)
            }
            type_byte if super::is_value_type(type_byte, self.version) => {
                self.consume(1);
                self.state = State::KeyName(type_byte);
                Ok(None)
            }
            other => Err(walker::unknown_type(other, self.version, at)),
        }
    }
}

/// The decimal number of ASCII digits (at most 4 of them: no overflow).
fn ascii_number(digits: &[u8]) -> u32 {
    digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'))
}

fn not_rdb(head: &[u8]) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!(
            "not an RDB: it starts with {:?}, not REDIS and a version",
            String::from_utf8_lossy(&head[..head.len().min(9)])
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::crc64::crc64;

    fn run(data: &[u8]) -> Result<Vec<String>> {
        let mut p = RdbParser::new();
        p.feed(data);
        let mut out = Vec::new();
        while let Some(ev) = p.next_event()? {
            out.push(format!("{ev:?}"));
        }
        p.finish()?;
        Ok(out)
    }

    fn with_crc(mut body: Vec<u8>) -> Vec<u8> {
        body.push(0xFF);
        let crc = crc64(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        body
    }

    #[test]
    fn versions_and_magic() {
        let err = run(b"REDIS0019\xff\0\0\0\0\0\0\0\0").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(
            err.message()
                .starts_with("RDB version 19 is newer than this build supports")
        );
        // Valkey 9's magic, and its RDB 80 only.
        assert!(run(&with_crc(b"VALKEY080".to_vec())).is_ok());
        assert_eq!(
            run(b"VALKEY081\xff").unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        assert_eq!(
            run(b"VALKEY011\xff").unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        assert_eq!(
            run(b"VALKEY0x0\xff").unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        assert_eq!(
            run(b"REDIS0080\xff").unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        assert_eq!(run(b"GIF89a").unwrap_err().kind(), ErrorKind::Corrupt);
        assert_eq!(run(b"REDIS00x1").unwrap_err().kind(), ErrorKind::Corrupt);
        // RDB < 5 has no checksum trailer; a zero trailer means "not computed".
        assert!(run(b"REDIS0004\xff").is_ok());
        assert!(run(b"REDIS0011\xff\0\0\0\0\0\0\0\0").is_ok());
        assert!(run(&with_crc(b"REDIS0012".to_vec())).is_ok());
        let mut bad = with_crc(b"REDIS0012".to_vec());
        bad[12] ^= 1;
        assert!(
            run(&bad)
                .unwrap_err()
                .message()
                .contains("checksum mismatch")
        );
    }

    #[test]
    fn unknown_types_and_opcodes_name_their_offset() {
        let err = run(&with_crc(b"REDIS0012\xfe\x00\x1a\x01k".to_vec())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.message().contains("26 (0x1a) at byte 11"), "{err}");
        let err = run(&with_crc(b"REDIS0012\x64".to_vec())).unwrap_err();
        assert!(err.message().contains("100 (0x64) at byte 9"), "{err}");
        let err = run(&with_crc(b"REDIS0012\xf6".to_vec())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
    }

    #[test]
    fn type_22_is_what_the_version_says() {
        // Valkey 9: field, value, 8-byte expiry (-1: none) per field.
        let mut body = b"VALKEY080\xfe\x00\x16\x01h\x01\x01a\x01b".to_vec();
        body.extend_from_slice(&(-1i64).to_le_bytes());
        body.extend_from_slice(b"\x00\x01s\x01v");
        let events = run(&with_crc(body)).unwrap();
        assert!(
            events.iter().any(|e| e.contains("type_byte: 22")),
            "{events:?}"
        );
        assert_eq!(events.iter().filter(|e| e == &"KeyEnd").count(), 2);
        // The same bytes in a Redis RDB are the 7.4 release candidates' layout (a TTL
        // length before each field): "a" is then a TTL... and the value runs short.
        let mut body = b"REDIS0012\xfe\x00\x16\x01h\x01\x01a\x01b".to_vec();
        body.extend_from_slice(&(-1i64).to_le_bytes());
        assert!(run(&with_crc(body)).is_err());
        // Redis' types 23–25 do not exist in Valkey's RDB 80.
        let err = run(&with_crc(b"VALKEY080\xfe\x00\x19\x01k".to_vec())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.message().contains("Valkey"), "{err}");
    }

    #[test]
    fn key_metadata_applies_to_the_next_key_only() {
        let mut body = b"REDIS0010\xfe\x02".to_vec();
        body.push(0xFC);
        body.extend_from_slice(&1_700_000_000_000i64.to_le_bytes());
        body.extend_from_slice(b"\xf9\x05\x00\x01a\x01x\x00\x01b\x01y");
        let mut p = RdbParser::new();
        p.feed(&with_crc(body));
        let mut headers = Vec::new();
        while let Some(ev) = p.next_event().unwrap() {
            if let Event::KeyStart(h) = ev {
                headers.push(h);
            }
        }
        assert!(p.is_done());
        assert_eq!(headers[0].db, 2);
        assert_eq!(headers[0].meta.expire_ms, Some(1_700_000_000_000));
        assert_eq!(headers[0].meta.freq, Some(5));
        assert_eq!(headers[1].meta, KeyMeta::default());
    }
}
