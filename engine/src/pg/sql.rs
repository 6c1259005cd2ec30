//! Rendering a PostgreSQL archive as a plain SQL script, as `pg_restore -f` does: `psql`
//! loads it into an empty database. Every frame is verified as it is read.

use std::collections::HashMap;
use std::io::Write;

use coffer_format::MappedArchive;

use super::content::Content;
use super::dump::{PgManifest, TableStats, TocDocument};
use super::toc::{Section, TocEntry};
use crate::error::{Error, ErrorKind, Result};

/// The PostgreSQL parts of an archive: manifest and TOC.
pub struct PgArchive {
    pub manifest: PgManifest,
    pub toc: TocDocument,
}

impl PgArchive {
    /// Reads the manifest and the TOC stream of a mapped archive.
    pub fn read(a: &MappedArchive) -> Result<Self> {
        let app = &a.manifest().app;
        if app.get("kind").and_then(|k| k.as_str()) != Some("postgres") {
            return Err(Error::new(ErrorKind::Usage, "not a PostgreSQL archive"));
        }
        let manifest: PgManifest = serde_json::from_value(app.clone())
            .map_err(|e| Error::new(ErrorKind::Corrupt, format!("PostgreSQL manifest: {e}")))?;
        let stream = a
            .streams()
            .iter()
            .find(|s| s.id == manifest.toc_stream && s.descriptor.kind == "pg.toc")
            .ok_or_else(|| Error::new(ErrorKind::Corrupt, "the archive has no TOC stream"))?;
        let mut json = Vec::new();
        for e in a.data_entries(stream) {
            json.extend_from_slice(&a.read_frame(e)?);
        }
        let toc: TocDocument = serde_json::from_slice(&json)
            .map_err(|e| Error::new(ErrorKind::Corrupt, format!("TOC: {e}")))?;
        Ok(PgArchive { manifest, toc })
    }

    /// Table statistics by TOC id.
    pub fn tables(&self) -> HashMap<u32, &TableStats> {
        self.manifest.tables.iter().map(|t| (t.toc_id, t)).collect()
    }
}

/// Writes the whole archive as SQL to `out`, leaving out what `content` says.
pub fn render(a: &MappedArchive, content: &Content, out: &mut dyn Write) -> Result<()> {
    let pg = PgArchive::read(a)?;
    let entries = content.omit(pg.toc.entries.clone());
    let w = |out: &mut dyn Write, s: &str| {
        out.write_all(s.as_bytes())
            .map_err(|e| Error::new(ErrorKind::Io, format!("writing the SQL script: {e}")))
    };
    let src = &pg.toc.source;
    // as pg_dump since 18 (and 17.6, 16.10…): psql refuses meta-commands between
    // \restrict and \unrestrict with a key no content of the archive can know, so nothing
    // a hostile source put into a name or a body can run a shell command when the script
    // is loaded
    let key = restrict_key()?;
    w(out, &format!("\\restrict {key}\n\n"))?;
    w(
        out,
        &format!(
            "--\n-- PostgreSQL database dump by coffer\n-- Source database: {}, server version {}\n--\n\n\
         SET statement_timeout = 0;\nSET lock_timeout = 0;\nSET idle_in_transaction_session_timeout = 0;\n\
         SET client_encoding = '{}';\nSET standard_conforming_strings = on;\n\
         SELECT pg_catalog.set_config('search_path', '', false);\nSET check_function_bodies = false;\n\
         SET xmloption = content;\nSET client_min_messages = warning;\nSET row_security = off;\n\n",
            src.database.replace('\n', " "),
            src.server_version,
            src.data_encoding
        ),
    )?;
    let tables = pg.tables();
    let large_objects: HashMap<u32, &super::dump::LargeObjectStats> = pg
        .manifest
        .large_objects
        .iter()
        .map(|l| (l.toc_id, l))
        .collect();
    let streams: HashMap<u32, &coffer_format::StreamInfo> =
        a.streams().iter().map(|s| (s.id, s)).collect();
    for section in [
        Section::PreData,
        Section::Data,
        Section::PostData,
        Section::Acl,
        Section::PostAcl,
    ] {
        for e in entries.iter().filter(|e| e.section == section) {
            w(out, &header(e))?;
            if let Some(data) = &e.data {
                w(out, &format!("{};\n", data.load_sql("FROM stdin")))?;
                if let Some(t) = tables.get(&e.id) {
                    for sid in &t.streams {
                        let s = streams.get(sid).ok_or_else(|| {
                            Error::new(
                                ErrorKind::Corrupt,
                                format!("stream {sid} of {} is missing", t.qualified),
                            )
                        })?;
                        for f in a.data_entries(s) {
                            let rows = a.read_frame(f).map_err(|err| {
                                Error::from(err).context(format!("table {}", t.qualified))
                            })?;
                            out.write_all(&rows).map_err(|e| {
                                Error::new(ErrorKind::Io, format!("writing the SQL script: {e}"))
                            })?;
                        }
                    }
                }
                w(out, "\\.\n\n")?;
            } else if let Some(oid) = e.large_object {
                let lo = large_objects.get(&e.id).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Corrupt,
                        format!("large object {oid} has no data in the manifest"),
                    )
                })?;
                let s = streams.get(&lo.stream).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Corrupt,
                        format!("stream {} of large object {oid} is missing", lo.stream),
                    )
                })?;
                for f in a.data_entries(s) {
                    let bytes = a
                        .read_frame(f)
                        .map_err(|err| Error::from(err).context(format!("large object {oid}")))?;
                    w(
                        out,
                        &format!(
                            "SELECT pg_catalog.lo_put('{oid}', {}, '\\x{}');\n",
                            f.raw_offset,
                            coffer_format::hex(&bytes)
                        ),
                    )?;
                }
                w(out, "\n")?;
            } else {
                let (sql, owner) = content.statements(e);
                for s in [sql.as_deref(), owner].into_iter().flatten() {
                    w(out, &format!("{s}\n"))?;
                }
                w(out, "\n")?;
            }
        }
    }
    w(out, "--\n-- coffer dump complete\n--\n\n")?;
    w(out, &format!("\\unrestrict {key}\n"))?;
    out.flush()
        .map_err(|e| Error::new(ErrorKind::Io, format!("writing the SQL script: {e}")))
}

fn header(e: &TocEntry) -> String {
    let clean = |s: &str| s.replace(['\n', '\r'], " ");
    format!(
        "--\n-- Name: {}; Type: {}; Schema: {}; Owner: {}\n--\n\n",
        clean(&e.name),
        e.kind,
        clean(e.schema.as_deref().unwrap_or("-")),
        clean(e.owner.as_deref().unwrap_or("-"))
    )
}

/// `DO $tag$ body $tag$;` with a dollar-quote tag that does not occur in `body`, so that no
/// name inside it can end the quoting.
pub(crate) fn do_block(body: &str) -> String {
    let tag = (0u32..)
        .map(|n| format!("$c{n}$"))
        .find(|t| !body.contains(t.as_str()))
        .expect("some tag is not in the body");
    format!("DO {tag}{body}{tag};")
}

/// 32 random letters and digits for `\restrict`.
fn restrict_key() -> Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::new(ErrorKind::Io, format!("drawing a random key: {e}")))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}
