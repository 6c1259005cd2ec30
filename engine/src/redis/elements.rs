//! Redis values decoded element by element as their bytes arrive, in pieces of any size:
//! [`CollStream`] (lists, sets, sorted sets, hashes in their non-compact encodings and
//! quicklists) and [`StringStream`] (strings, LZF included). Restores rebuild big values
//! with them; restore tests digest big values with them ([`ValueDigester`]), on the
//! archive's side and on a DUMP's, without ever holding a whole value.

use super::lzf;
use super::rdb::primitives::{self, StringKind};
use super::rdb::{Value, types as t};
use super::record::broken;
use crate::Result;

/// The collection encodings decoded element by element as they arrive (the others are
/// one blob each, or streams and modules, which need the whole value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CollKind {
    /// A list, one string per element.
    List,
    /// A set, one string per member.
    Set,
    /// A sorted set with scores as decimal text.
    ZSet,
    /// A sorted set with binary scores.
    ZSet2,
    /// A hash, field then value.
    Hash,
    /// A list as ziplist nodes.
    Quicklist,
    /// A list as plain or listpack nodes.
    Quicklist2,
}

impl CollKind {
    /// The kind of an RDB type byte, if it is one of these.
    pub fn of(type_byte: u8) -> Option<CollKind> {
        Some(match type_byte {
            t::LIST => CollKind::List,
            t::SET => CollKind::Set,
            t::ZSET => CollKind::ZSet,
            t::ZSET_2 => CollKind::ZSet2,
            t::HASH => CollKind::Hash,
            t::LIST_QUICKLIST => CollKind::Quicklist,
            t::LIST_QUICKLIST_2 => CollKind::Quicklist2,
            _ => return None,
        })
    }
}

/// A collection value arriving in pieces: its count, then its elements (or quicklist
/// nodes), each handed out as soon as its bytes are in. Memory is one element (or one
/// quicklist node) plus one piece, whatever the number of elements.
pub struct CollStream {
    kind: CollKind,
    buf: Vec<u8>,
    pos: usize,
    /// Elements (or nodes) still due, once the count is read.
    left: Option<u64>,
}

const COLL: &str = "collection value";

impl CollStream {
    /// A stream for a value of `kind`.
    pub fn new(kind: CollKind) -> Self {
        CollStream {
            kind,
            buf: Vec::new(),
            pos: 0,
            left: None,
        }
    }

    /// One element (or node) at the start of `b`: calls `out` with its parts (ZADD's
    /// score first); the bytes it took, or `None` if `b` does not hold it whole yet.
    fn element(
        kind: CollKind,
        b: &[u8],
        out: &mut dyn FnMut(&[&[u8]]) -> Result<()>,
    ) -> Result<Option<usize>> {
        if kind == CollKind::Quicklist2 {
            return Self::quicklist2_node(b, out);
        }
        let Some((first, mut used)) = primitives::string(b, 0)? else {
            return Ok(None);
        };
        match kind {
            CollKind::List | CollKind::Set => out(&[&first])?,
            CollKind::Hash => {
                let Some((v, u)) = primitives::string(&b[used..], 0)? else {
                    return Ok(None);
                };
                used += u;
                out(&[&first, &v])?;
            }
            CollKind::ZSet2 => {
                let Some(raw) = b.get(used..used + 8) else {
                    return Ok(None);
                };
                used += 8;
                let score = f64::from_le_bytes(raw.try_into().expect("8 bytes"));
                if score.is_nan() {
                    return Err(super::corrupt(COLL, used, "NaN score"));
                }
                out(&[score_text(score).as_bytes(), &first])?;
            }
            CollKind::ZSet => {
                let Some(&n) = b.get(used) else {
                    return Ok(None);
                };
                used += 1;
                let score = match n {
                    253 => return Err(super::corrupt(COLL, used, "NaN score")),
                    254 => "inf".to_string(),
                    255 => "-inf".to_string(),
                    n => {
                        let Some(text) = b.get(used..used + usize::from(n)) else {
                            return Ok(None);
                        };
                        used += usize::from(n);
                        let f = std::str::from_utf8(text)
                            .ok()
                            .and_then(|s| s.parse::<f64>().ok())
                            .filter(|f| !f.is_nan())
                            .ok_or_else(|| super::corrupt(COLL, used, "score is not a number"))?;
                        score_text(f)
                    }
                };
                out(&[score.as_bytes(), &first])?;
            }
            CollKind::Quicklist => {
                for e in super::ziplist::entries(&first)? {
                    out(&[&e.to_vec()])?;
                }
            }
            CollKind::Quicklist2 => unreachable!("handled above"),
        }
        Ok(Some(used))
    }

    /// A quicklist node: its container, plain (1: one element) or packed (2: a
    /// listpack), then its bytes.
    fn quicklist2_node(
        b: &[u8],
        out: &mut dyn FnMut(&[&[u8]]) -> Result<()>,
    ) -> Result<Option<usize>> {
        let Some((container, clen)) = primitives::plain_length(b, 0)? else {
            return Ok(None);
        };
        let Some((node, used)) = primitives::string(&b[clen..], 0)? else {
            return Ok(None);
        };
        match container {
            1 => out(&[&node])?,
            2 => {
                for e in super::listpack::entries(&node)? {
                    out(&[&e.to_vec()])?;
                }
            }
            other => {
                return Err(super::corrupt(
                    COLL,
                    0,
                    format!("quicklist container {other}"),
                ));
            }
        }
        Ok(Some(clen + used))
    }

    /// Adds the next piece of the value; calls `out` with the parts of each element now
    /// whole: one for a list or set, (field, value) for a hash, (score, member) for a
    /// sorted set, its score as [`score_text`] gives it whatever the encoding.
    pub fn push(
        &mut self,
        piece: &[u8],
        out: &mut dyn FnMut(&[&[u8]]) -> Result<()>,
    ) -> Result<()> {
        self.buf.extend_from_slice(piece);
        loop {
            let b = &self.buf[self.pos..];
            let Some(left) = self.left else {
                match primitives::plain_length(b, 0)? {
                    Some((n, used)) => {
                        self.left = Some(n);
                        self.pos += used;
                        continue;
                    }
                    None => break,
                }
            };
            if left == 0 {
                if !b.is_empty() {
                    return Err(broken("bytes after the last element of a value"));
                }
                break;
            }
            match Self::element(self.kind, b, out)? {
                Some(used) => {
                    self.pos += used;
                    self.left = Some(left - 1);
                }
                None => break,
            }
        }
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        Ok(())
    }

    /// Fails unless the value ended exactly after its last element.
    pub fn finish(&self) -> Result<()> {
        if self.left == Some(0) && self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(broken("a collection value is cut short"))
        }
    }
}

/// An RDB string arriving in pieces, handed out decoded in chunks (LZF decompressed on
/// the way).
pub struct StringStream {
    chunk: usize,
    /// The header's bytes, until it is whole.
    head: Vec<u8>,
    state: StrState,
}

enum StrState {
    Header,
    /// Plain bytes: this many still due.
    Raw(u64),
    /// An integer: its bytes, this many still due.
    Int(StringKind, Vec<u8>, usize),
    /// LZF: compressed bytes still due.
    Lzf(u64, lzf::Decoder),
    Done,
}

impl StringStream {
    /// A stream handing out chunks of at most `chunk` bytes.
    pub fn new(chunk: usize) -> Self {
        StringStream {
            chunk,
            head: Vec::new(),
            state: StrState::Header,
        }
    }

    /// Adds the next piece of the value; calls `out` with the decoded bytes now known.
    pub fn push(&mut self, mut p: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        while !p.is_empty() {
            match &mut self.state {
                StrState::Header => {
                    let take = p.len().min(32 - self.head.len().min(32));
                    let before = self.head.len();
                    self.head.extend_from_slice(&p[..take]);
                    let Some(h) = primitives::string_header(&self.head, 0)? else {
                        if self.head.len() >= 32 {
                            return Err(broken("a string header is too long"));
                        }
                        p = &p[take..];
                        continue;
                    };
                    // Give back what went past the header.
                    let used = h.header_len - before;
                    p = &p[used..];
                    self.head.clear();
                    self.state = match h.kind {
                        StringKind::Raw => StrState::Raw(h.body_len),
                        StringKind::Int => StrState::Int(h.kind, Vec::new(), h.body_len as usize),
                        StringKind::Lzf(ulen) => {
                            StrState::Lzf(h.body_len, lzf::Decoder::new(ulen, self.chunk))
                        }
                    };
                    if matches!(self.state, StrState::Raw(0)) {
                        self.state = StrState::Done;
                    }
                }
                StrState::Raw(left) => {
                    let n = (*left).min(p.len() as u64) as usize;
                    for c in p[..n].chunks(self.chunk) {
                        out(c)?;
                    }
                    *left -= n as u64;
                    p = &p[n..];
                    if *left == 0 {
                        self.state = StrState::Done;
                    }
                }
                StrState::Int(kind, bytes, left) => {
                    let n = (*left).min(p.len());
                    bytes.extend_from_slice(&p[..n]);
                    *left -= n;
                    p = &p[n..];
                    if *left == 0 {
                        out(&primitives::decode_body(*kind, bytes, 0)?)?;
                        self.state = StrState::Done;
                    }
                }
                StrState::Lzf(left, dec) => {
                    let n = (*left).min(p.len() as u64) as usize;
                    dec.push(&p[..n], out)?;
                    *left -= n as u64;
                    p = &p[n..];
                    if *left == 0 {
                        let StrState::Lzf(_, dec) =
                            std::mem::replace(&mut self.state, StrState::Done)
                        else {
                            unreachable!()
                        };
                        dec.finish(out)?;
                    }
                }
                StrState::Done => return Err(broken("bytes after the end of a string")),
            }
        }
        Ok(())
    }

    /// Ends the value (flushing the LZF decoder); fails if it is cut short.
    pub fn finish(self, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        match self.state {
            StrState::Done => Ok(()),
            StrState::Lzf(0, dec) => dec.finish(out),
            _ => Err(broken("a string value is cut short")),
        }
    }
}

/// A score as ZADD reads it back exactly: `inf`, `-inf`, or the shortest decimal that
/// round-trips.
pub fn score_text(s: f64) -> String {
    if s == f64::INFINITY {
        "inf".into()
    } else if s == f64::NEG_INFINITY {
        "-inf".into()
    } else {
        format!("{s:?}")
    }
}

/// Chunk size of the strings a [`ValueDigester`] decodes.
const DIGEST_CHUNK: usize = 64 << 10;

/// The logical digest of a value: what it holds, not how it is encoded. Strings and lists
/// are digested in order; sets, hashes and sorted sets by a wrapping sum of a 128-bit
/// hash of each element (its length-prefixed parts), so that two servers that lay a
/// dict out in another order, or in another encoding, give the same digest.
struct Logical {
    /// 0 string, 1 list, 2 set, 3 sorted set, 4 hash.
    class: u8,
    ordered: blake3::Hasher,
    sum: u128,
    count: u64,
}

impl Logical {
    fn new(class: u8) -> Self {
        Logical {
            class,
            ordered: blake3::Hasher::new(),
            sum: 0,
            count: 0,
        }
    }

    /// String bytes.
    fn bytes(&mut self, b: &[u8]) {
        self.ordered.update(b);
        self.count += b.len() as u64;
    }

    /// One element, as its parts.
    fn element(&mut self, parts: &[&[u8]]) {
        self.count += 1;
        if self.class == 1 {
            for p in parts {
                self.ordered.update(&(p.len() as u64).to_le_bytes());
                self.ordered.update(p);
            }
            return;
        }
        let mut h = blake3::Hasher::new();
        for p in parts {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p);
        }
        let d = h.finalize();
        let low = u128::from_le_bytes(d.as_bytes()[..16].try_into().expect("16 bytes"));
        self.sum = self.sum.wrapping_add(low);
    }

    fn finish(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(&[self.class]);
        h.update(&self.count.to_le_bytes());
        h.update(self.ordered.finalize().as_bytes());
        h.update(&self.sum.to_le_bytes());
        *h.finalize().as_bytes()
    }
}

/// The class [`Logical`] files a collection kind under.
fn class_of(kind: CollKind) -> u8 {
    match kind {
        CollKind::List | CollKind::Quicklist | CollKind::Quicklist2 => 1,
        CollKind::Set => 2,
        CollKind::ZSet | CollKind::ZSet2 => 3,
        CollKind::Hash => 4,
    }
}

enum Decoder {
    Str(StringStream),
    Coll(CollStream),
}

/// The logical digest of a value arriving in pieces (from an archive's records or a
/// DUMP reply), equal to [`value_digest`] of the decoded value: memory is one element
/// plus one piece.
pub struct ValueDigester {
    dec: Decoder,
    logical: Logical,
}

impl ValueDigester {
    /// A digester for a value of RDB type `type_byte`, if that type can be decoded in
    /// pieces (a string, or a [`CollKind`]).
    pub fn new(type_byte: u8) -> Option<Self> {
        if type_byte == t::STRING {
            return Some(ValueDigester {
                dec: Decoder::Str(StringStream::new(DIGEST_CHUNK)),
                logical: Logical::new(0),
            });
        }
        let kind = CollKind::of(type_byte)?;
        Some(ValueDigester {
            dec: Decoder::Coll(CollStream::new(kind)),
            logical: Logical::new(class_of(kind)),
        })
    }

    /// Adds the next piece of the value's bytes.
    pub fn push(&mut self, piece: &[u8]) -> Result<()> {
        let l = &mut self.logical;
        match &mut self.dec {
            Decoder::Str(s) => s.push(piece, &mut |b| {
                l.bytes(b);
                Ok(())
            }),
            Decoder::Coll(c) => c.push(piece, &mut |parts| {
                l.element(parts);
                Ok(())
            }),
        }
    }

    /// The digest, once the value is complete.
    pub fn finish(self) -> Result<[u8; 32]> {
        let mut l = self.logical;
        match self.dec {
            Decoder::Str(s) => s.finish(&mut |b| {
                l.bytes(b);
                Ok(())
            })?,
            Decoder::Coll(c) => c.finish()?,
        }
        Ok(l.finish())
    }
}

/// The logical digest of a decoded string, list, set, sorted set or hash (the same as a
/// [`ValueDigester`] gives for it, whatever its encoding); `None` for streams and
/// modules.
pub fn value_digest(v: &Value) -> Option<[u8; 32]> {
    let l = match v {
        Value::String(s) => {
            let mut l = Logical::new(0);
            l.bytes(s);
            l
        }
        Value::List(items) => {
            let mut l = Logical::new(1);
            items.iter().for_each(|e| l.element(&[e]));
            l
        }
        Value::Set(members) => {
            let mut l = Logical::new(2);
            members.iter().for_each(|m| l.element(&[m]));
            l
        }
        Value::ZSet(items) => {
            let mut l = Logical::new(3);
            for (m, s) in items {
                l.element(&[score_text(*s).as_bytes(), m]);
            }
            l
        }
        Value::Hash(fields) => {
            let mut l = Logical::new(4);
            for f in fields {
                match f.expire_ms {
                    None => l.element(&[&f.field, &f.value]),
                    Some(x) => l.element(&[&f.field, &f.value, &x.to_le_bytes()]),
                }
            }
            l
        }
        Value::Stream(_) | Value::Module { .. } => return None,
    };
    Some(l.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::rdb::decode_value;

    /// The streamed digest, fed a byte at a time, and the decoded value's.
    fn both(type_byte: u8, raw: &[u8]) -> ([u8; 32], [u8; 32]) {
        let mut d = ValueDigester::new(type_byte).unwrap();
        for b in raw.chunks(1) {
            d.push(b).unwrap();
        }
        let v = decode_value(type_byte, raw, 11).unwrap();
        (d.finish().unwrap(), value_digest(&v).unwrap())
    }

    #[test]
    fn digests_are_logical() {
        let (a, b) = both(t::SET, b"\x02\x01a\x02bb");
        assert_eq!(a, b);
        // Another order, the same set; another member, another set.
        assert_eq!(both(t::SET, b"\x02\x02bb\x01a").0, a);
        assert_ne!(both(t::SET, b"\x02\x02bc\x01a").0, a);
        // A list with the same elements is not the set, and its order counts.
        let (l, m) = both(t::LIST, b"\x02\x01a\x02bb");
        assert_eq!(l, m);
        assert_ne!(l, a);
        assert_ne!(both(t::LIST, b"\x02\x02bb\x01a").0, l);
        // Hashes: field/value pairs, in any order.
        let (h, g) = both(t::HASH, b"\x02\x01f\x01v\x01g\x01w");
        assert_eq!(h, g);
        assert_eq!(both(t::HASH, b"\x02\x01g\x01w\x01f\x01v").0, h);
        assert_ne!(both(t::HASH, b"\x02\x01g\x01v\x01f\x01w").0, h);
        // Sorted sets: a text score and a binary one are the same score.
        let mut z2 = b"\x01\x01m".to_vec();
        z2.extend_from_slice(&2.5f64.to_le_bytes());
        let (z, y) = both(t::ZSET_2, &z2);
        assert_eq!(z, y);
        assert_eq!(both(t::ZSET, b"\x01\x01m\x032.5").0, z);
        assert_ne!(both(t::ZSET, b"\x01\x01m\x032.6").0, z);
        // Strings, plain and as an integer.
        let (s, r) = both(t::STRING, b"\x05hello");
        assert_eq!(s, r);
        assert_eq!(both(t::STRING, b"\xc0\x07").0, both(t::STRING, b"\x017").0);
        // Cut short, or with bytes after the end: errors.
        let mut d = ValueDigester::new(t::SET).unwrap();
        d.push(b"\x02\x01a").unwrap();
        assert!(d.finish().is_err());
        let mut d = ValueDigester::new(t::STRING).unwrap();
        assert!(d.push(b"\x01ab").is_err());
        assert!(ValueDigester::new(t::STREAM_LISTPACKS).is_none());
    }
}
