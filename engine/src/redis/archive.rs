//! Reading a Redis dump archive back (the layout is in [`super::record`]): its function
//! libraries, AUX fields and, one database at a time, its keys, each handed out whole as
//! soon as its last piece is read. Memory stays at one frame plus one key's value.

use coffer_format::{MappedArchive, StreamInfo};

use super::dump::{KIND_AUX, KIND_DB, KIND_FUNCTIONS};
use super::record::{self, ArchivedKey, KeyAssembler, Record};
use crate::{Error, ErrorKind, Result};

/// A sealed archive written by [`super::dump()`].
pub struct RedisArchive<'a> {
    archive: &'a MappedArchive,
    /// RDB version of the source server's payload (the raw value bytes' format).
    pub rdb_version: u32,
    /// The source server's version, when known.
    pub server_version: Option<String>,
    /// `"redis"` or `"valkey"`, when the manifest says.
    pub server: Option<String>,
}

/// One database's stream.
#[derive(Clone, Copy)]
pub struct DbStream<'a> {
    /// Database number on the source.
    pub db: u32,
    /// Keys archived, from the manifest (0 if absent).
    pub keys: u64,
    info: &'a StreamInfo,
}

impl<'a> RedisArchive<'a> {
    /// Checks that `archive` holds a Redis dump.
    pub fn new(archive: &'a MappedArchive) -> Result<Self> {
        let app = &archive.manifest().app;
        if app["source"] != "redis" {
            let what = app["source"].as_str().unwrap_or("unknown");
            return Err(Error::new(
                ErrorKind::Usage,
                format!("this is not a Redis archive (its source is {what})"),
            ));
        }
        let rdb_version = app["rdb_version"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|&v| super::rdb::is_supported_version(v))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Corrupt,
                    format!(
                        "the manifest's rdb_version {} is not one this build reads",
                        app["rdb_version"]
                    ),
                )
            })?;
        Ok(RedisArchive {
            archive,
            rdb_version,
            server_version: app["server_version"].as_str().map(str::to_string),
            server: app["server"].as_str().map(str::to_string),
        })
    }

    /// Whether some keys may be hashes with field TTLs: the manifest counts the keys of
    /// each type (archives before that count: whenever the RDB version has such types).
    pub fn may_have_field_ttls(&self) -> bool {
        let version = self.rdb_version;
        if version < 12 {
            return false;
        }
        match self.archive.manifest().app["types"].as_object() {
            None => true,
            Some(types) => types.iter().any(|(t, n)| {
                t.parse::<u8>()
                    .is_ok_and(|t| super::rdb::has_field_ttls(t, version))
                    && n.as_u64() != Some(0)
            }),
        }
    }

    /// The database streams, by database number.
    pub fn databases(&self) -> Result<Vec<DbStream<'a>>> {
        let app = &self.archive.manifest().app;
        let mut out = Vec::new();
        for info in self.archive.streams() {
            if info.descriptor.kind != KIND_DB {
                continue;
            }
            let db = info.descriptor.meta["db"]
                .as_u64()
                .and_then(|d| u32::try_from(d).ok())
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::Corrupt,
                        format!("stream {:?} has no database number", info.descriptor.name),
                    )
                })?;
            let keys = app["dbs"][db.to_string()]["keys"].as_u64().unwrap_or(0);
            out.push(DbStream { db, keys, info });
        }
        out.sort_by_key(|d| d.db);
        if out.windows(2).any(|w| w[0].db == w[1].db) {
            return Err(Error::new(
                ErrorKind::Corrupt,
                "two streams for the same database",
            ));
        }
        Ok(out)
    }

    /// Calls `f` with every record of the streams of `kind`.
    fn records_of_kind(
        &self,
        kind: &str,
        f: &mut dyn FnMut(Record<'_>) -> Result<()>,
    ) -> Result<()> {
        for info in self.archive.streams() {
            if info.descriptor.kind == kind {
                self.records(info, f)?;
            }
        }
        Ok(())
    }

    fn records(
        &self,
        info: &StreamInfo,
        f: &mut dyn FnMut(Record<'_>) -> Result<()>,
    ) -> Result<()> {
        for e in self.archive.data_entries(info) {
            let frame = self.archive.read_frame(e)?;
            for r in record::parse_frame(&frame)? {
                f(r)?;
            }
        }
        Ok(())
    }

    /// The function libraries' source code, in order.
    pub fn functions(&self) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        self.records_of_kind(KIND_FUNCTIONS, &mut |r| match r {
            Record::Function(code) => {
                out.push(code.to_vec());
                Ok(())
            }
            _ => Err(Error::new(
                ErrorKind::Corrupt,
                "a non-function record in the functions stream",
            )),
        })?;
        Ok(out)
    }

    /// The AUX fields and the raw module AUX records.
    #[allow(clippy::type_complexity)]
    pub fn aux(&self) -> Result<(Vec<(Vec<u8>, Vec<u8>)>, Vec<Vec<u8>>)> {
        let mut aux = Vec::new();
        let mut modules = Vec::new();
        self.records_of_kind(KIND_AUX, &mut |r| match r {
            Record::Aux { key, value } => {
                aux.push((key.to_vec(), value.to_vec()));
                Ok(())
            }
            Record::ModuleAux(raw) => {
                modules.push(raw.to_vec());
                Ok(())
            }
            _ => Err(Error::new(
                ErrorKind::Corrupt,
                "an unexpected record in the AUX stream",
            )),
        })?;
        Ok((aux, modules))
    }

    /// Every record of one database's stream, in order (a key's value may come in several
    /// pieces: a KEY record then VALUE records).
    pub fn db_records(
        &self,
        db: &DbStream<'_>,
        f: &mut dyn FnMut(Record<'_>) -> Result<()>,
    ) -> Result<()> {
        self.records(db.info, f)
    }

    /// The index records of one database's DATA frames, in order.
    pub fn frames(&self, db: &DbStream<'_>) -> &'a [coffer_format::IndexEntry] {
        self.archive.data_entries(db.info)
    }

    /// Reads and checks one frame.
    pub fn read_frame(&self, e: &coffer_format::IndexEntry) -> Result<Vec<u8>> {
        Ok(self.archive.read_frame(e)?)
    }

    /// The underlying archive.
    pub fn mapped(&self) -> &'a MappedArchive {
        self.archive
    }

    /// Every key of one database, whole, in archive order.
    pub fn keys(
        &self,
        db: &DbStream<'_>,
        f: &mut dyn FnMut(ArchivedKey) -> Result<()>,
    ) -> Result<()> {
        let mut asm = KeyAssembler::new();
        for e in self.archive.data_entries(db.info) {
            let frame = self.archive.read_frame(e)?;
            asm.push_frame_each(&frame, f)?;
        }
        if asm.in_key() {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!("the stream of db {} ends inside a key", db.db),
            ));
        }
        Ok(())
    }
}

/// Which target database each source database goes to (`--db`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DbMap {
    /// Every database keeps its number.
    #[default]
    Same,
    /// Everything goes into this database.
    All(u32),
    /// Listed databases are renumbered (`SRC:DST`); the others are left out.
    Pairs(Vec<(u32, u32)>),
}

impl DbMap {
    /// Parses `N` (everything into N) or `SRC:DST[,SRC:DST…]` (only those, renumbered).
    pub fn parse(s: &str) -> Result<DbMap> {
        let bad = || {
            Error::new(
                ErrorKind::Usage,
                format!("bad --db {s:?}: expected N or SRC:DST[,SRC:DST...]"),
            )
        };
        let s = s.trim();
        if !s.contains(':') {
            return s.parse().map(DbMap::All).map_err(|_| bad());
        }
        let mut pairs = Vec::new();
        for p in s.split(',') {
            let (a, b) = p.split_once(':').ok_or_else(bad)?;
            let a: u32 = a.trim().parse().map_err(|_| bad())?;
            let b: u32 = b.trim().parse().map_err(|_| bad())?;
            if pairs.iter().any(|&(x, _)| x == a) {
                return Err(bad());
            }
            pairs.push((a, b));
        }
        Ok(DbMap::Pairs(pairs))
    }

    /// Where database `db` goes; `None`: it is left out.
    pub fn target(&self, db: u32) -> Option<u32> {
        match self {
            DbMap::Same => Some(db),
            DbMap::All(n) => Some(*n),
            DbMap::Pairs(p) => p.iter().find(|&&(s, _)| s == db).map(|&(_, d)| d),
        }
    }
}

/// Redis' glob (`KEYS`, `SCAN MATCH`): `*`, `?`, `[abc]`, `[^a-z]`, `\x`; byte-wise.
pub fn glob_match(pattern: &[u8], key: &[u8]) -> bool {
    // Iterative with one backtrack point (the last `*`), which is enough for globs and
    // keeps hostile patterns linear-ish instead of exponential.
    let (mut p, mut k) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while k < key.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, k));
                    continue;
                }
                b'?' => {
                    p += 1;
                    k += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(pattern, p, key[k]) {
                        if matched {
                            p = next;
                            k += 1;
                            continue;
                        }
                    } else if key[k] == b'[' {
                        p += 1;
                        k += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == key[k] {
                        p += 2;
                        k += 1;
                        continue;
                    }
                }
                c => {
                    if c == key[k] {
                        p += 1;
                        k += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, sk)) => {
                p = sp;
                k = sk + 1;
                star = Some((sp, sk + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pattern[at] == b'['`: (matched, index after
/// the class), or `None` if the class is not closed.
fn class(pattern: &[u8], at: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = at + 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    loop {
        let &b = pattern.get(i)?;
        if b == b']' {
            return Some((matched != negate, i + 1));
        }
        if b == b'\\' {
            let &e = pattern.get(i + 1)?;
            matched |= e == c;
            i += 2;
        } else if pattern.get(i + 1) == Some(&b'-')
            && pattern.get(i + 2).is_some_and(|&e| e != b']')
        {
            let (lo, hi) = (b.min(pattern[i + 2]), b.max(pattern[i + 2]));
            matched |= (lo..=hi).contains(&c);
            i += 3;
        } else {
            matched |= b == c;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let m = |p: &str, k: &str| glob_match(p.as_bytes(), k.as_bytes());
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("user:*", "user:1"));
        assert!(!m("user:*", "usr:1"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!m("*a*b*c*", "xxaxxcxxbxx"));
        assert!(m("a*", "a"));
        assert!(m("[", "["));
        assert!(!m("abc", "abcd"));
        assert!(m("*.*", "a.b.c"));
    }

    #[test]
    fn db_maps() {
        assert_eq!(DbMap::parse("3").unwrap(), DbMap::All(3));
        let m = DbMap::parse("0:2, 5:0").unwrap();
        assert_eq!(
            (m.target(0), m.target(5), m.target(1)),
            (Some(2), Some(0), None)
        );
        assert!(DbMap::parse("x").is_err());
        assert!(DbMap::parse("1:2,1:3").is_err());
        assert_eq!(DbMap::Same.target(7), Some(7));
    }
}
