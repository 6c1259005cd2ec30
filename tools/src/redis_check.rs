//! The Redis half of a restore test: the archive's own check (every value decoded, every
//! database's key count and digest recomputed and compared with the manifest), and, when a
//! throwaway server holds the restored copy, a key-by-key comparison of its content with
//! the archive's, by logical value (DUMP decoded with the same decoders), so that a
//! different internal encoding on the server is not a false alarm.

use coffer_engine::redis::archive::RedisArchive;
use coffer_engine::redis::conn::{Conn, encode};
use coffer_engine::redis::rdb::Value;
use coffer_engine::redis::rdb::decode_value;
use coffer_engine::redis::record::{key_digest, xor_into};
use coffer_engine::redis::replica::ReplicaOptions;
use coffer_format::MappedArchive;
use redis_protocol::resp2::types::OwnedFrame;
use serde::Serialize;

use crate::error::CliError;
use crate::exit;

/// One database's findings.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DbCheck {
    pub db: u32,
    /// Keys found in the archive.
    pub keys: u64,
    /// Keys the manifest says were archived.
    pub expected_keys: u64,
    /// The recomputed digest equals the manifest's.
    pub digest_ok: bool,
    /// Values the decoders refused (the first few are named in `problems`).
    pub undecodable: u64,
    /// Compared with a live copy: keys missing there, or with another value there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveCheck>,
    pub problems: Vec<String>,
}

/// A live copy's comparison.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LiveCheck {
    pub compared: u64,
    pub missing: u64,
    pub different: u64,
    /// Keys on the server beyond the archive's (DBSIZE minus the archive's live keys).
    pub extra: i64,
}

impl DbCheck {
    pub fn ok(&self) -> bool {
        self.keys == self.expected_keys
            && self.digest_ok
            && self.undecodable == 0
            && self
                .live
                .as_ref()
                .is_none_or(|l| l.missing == 0 && l.different == 0 && l.extra == 0)
    }
}

const MAX_PROBLEMS: usize = 10;

fn problem(c: &mut DbCheck, p: String) {
    if c.problems.len() < MAX_PROBLEMS {
        c.problems.push(p);
    }
}

fn quoted(key: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(key))
}

/// A server the archive was restored into, compared key by key: DUMPs pipelined in
/// batches (one round trip per batch, not per key), each payload decoded with the same
/// decoders as the archive's value.
pub struct Live {
    conn: Conn,
}

/// Keys sent per batch, and the most archive value bytes a batch holds.
const BATCH_KEYS: usize = 256;
const BATCH_BYTES: usize = 8 << 20;

/// One key awaiting its DUMP reply.
struct Pending {
    key: Vec<u8>,
    value: Value,
    expire_ms: Option<i64>,
}

/// What one database's comparison has counted so far.
#[derive(Default)]
struct Tally {
    check: LiveCheck,
    /// Keys expected on the server.
    live_keys: i64,
    /// Keys with a TTL that had passed when looked at: the server may still count them in
    /// DBSIZE until it evicts them.
    expired: i64,
}

impl Live {
    /// Connects to the test server on this machine.
    pub fn connect(port: u16) -> Result<Live, CliError> {
        let opts = ReplicaOptions {
            host: "127.0.0.1".into(),
            port,
            ..ReplicaOptions::default()
        };
        Ok(Live {
            conn: Conn::connect(&opts)?,
        })
    }

    fn command(&mut self, args: &[&[u8]], what: &str) -> Result<OwnedFrame, CliError> {
        match self.conn.command(args)? {
            OwnedFrame::Error(e) => Err(CliError::new(
                exit::DATABASE,
                format!("{what} on the test server: {e}"),
            )),
            reply => Ok(reply),
        }
    }

    /// Sends the batch's DUMPs at once, then compares each reply with its key.
    fn compare(
        &mut self,
        batch: &mut Vec<Pending>,
        c: &mut DbCheck,
        t: &mut Tally,
    ) -> coffer_engine::Result<()> {
        let mut out = Vec::new();
        for p in batch.iter() {
            encode(&mut out, &[b"DUMP", &p.key]);
        }
        self.conn.write_all(&out)?;
        for p in batch.drain(..) {
            let reply = self.conn.read_reply()?;
            match reply {
                OwnedFrame::BulkString(d) if d.len() >= 11 => {
                    let body = &d[1..d.len() - 10];
                    let version = u16::from_le_bytes([d[d.len() - 10], d[d.len() - 9]]);
                    let same = decode_value(d[0], body, version.into())
                        .is_ok_and(|there| there == p.value);
                    if !same {
                        t.check.different += 1;
                        problem(
                            c,
                            format!("key {}: another value on the server", quoted(&p.key)),
                        );
                    }
                }
                // it expired while the check ran: not a loss
                _ if p
                    .expire_ms
                    .is_some_and(|x| x <= chrono::Utc::now().timestamp_millis()) =>
                {
                    t.check.compared -= 1;
                    t.live_keys -= 1;
                    t.expired += 1;
                }
                _ => {
                    t.check.missing += 1;
                    problem(c, format!("key {}: missing on the server", quoted(&p.key)));
                }
            }
        }
        Ok(())
    }
}

/// Checks the archive, and `live` (a server the archive was restored into) if given.
pub fn check(
    archive: &MappedArchive,
    mut live: Option<&mut Live>,
) -> Result<Vec<DbCheck>, CliError> {
    let ra = RedisArchive::new(archive)?;
    let app = &archive.manifest().app;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut out = Vec::new();
    for db in ra.databases()? {
        let mut c = DbCheck {
            db: db.db,
            expected_keys: db.keys,
            ..DbCheck::default()
        };
        let mut digest = [0u8; 32];
        let mut tally = Tally::default();
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        if let Some(l) = live.as_deref_mut() {
            let n = db.db.to_string();
            l.command(&[b"SELECT", n.as_bytes()], "SELECT")?;
        }
        ra.keys(&db, &mut |k| {
            c.keys += 1;
            xor_into(&mut digest, &key_digest(&k.key, k.type_byte, &k.value));
            let value = match decode_value(k.type_byte, &k.value, ra.rdb_version) {
                Ok(v) => v,
                Err(e) => {
                    c.undecodable += 1;
                    problem(&mut c, format!("key {}: {e}", quoted(&k.key)));
                    return Ok(());
                }
            };
            let Some(l) = live.as_deref_mut() else {
                return Ok(());
            };
            if k.meta.expire_ms.is_some_and(|t| t <= now_ms) {
                tally.expired += 1;
                return Ok(());
            }
            tally.live_keys += 1;
            tally.check.compared += 1;
            batch_bytes += k.value.len();
            batch.push(Pending {
                key: k.key,
                value,
                expire_ms: k.meta.expire_ms,
            });
            if batch.len() >= BATCH_KEYS || batch_bytes >= BATCH_BYTES {
                batch_bytes = 0;
                l.compare(&mut batch, &mut c, &mut tally)?;
            }
            Ok(())
        })?;
        c.digest_ok = app["dbs"][db.db.to_string()]["digest"].as_str()
            == Some(coffer_format::hex(&digest).as_str());
        if !c.digest_ok {
            problem(
                &mut c,
                "the keys' digest differs from the manifest's".into(),
            );
        }
        if let Some(l) = live.as_deref_mut() {
            l.compare(&mut batch, &mut c, &mut tally)?;
            let size = match l.command(&[b"DBSIZE"], "DBSIZE")? {
                OwnedFrame::Integer(n) => n,
                other => {
                    return Err(CliError::new(
                        exit::DATABASE,
                        format!("DBSIZE on the test server: {other:?}"),
                    ));
                }
            };
            let mut lc = tally.check;
            lc.extra = if size < tally.live_keys {
                size - tally.live_keys
            } else {
                (size - tally.live_keys - tally.expired).max(0)
            };
            c.live = Some(lc);
        }
        out.push(c);
    }
    Ok(out)
}
