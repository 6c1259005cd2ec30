//! The Redis half of a restore test: the archive's own check (every value decoded, every
//! database's key count and digest recomputed and compared with the manifest), and, when a
//! throwaway server holds the restored copy, a key-by-key comparison of its content with
//! the archive's, by logical value (DUMP decoded with the same decoders), so that a
//! different internal encoding on the server is not a false alarm.

use coffer_engine::redis::archive::RedisArchive;
use coffer_engine::redis::rdb::decode_value;
use coffer_engine::redis::record::{key_digest, xor_into};
use coffer_format::MappedArchive;
use coffer_testkit::{RespConnection, RespValue};
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

/// Checks the archive, and `live` (a server the archive was restored into) if given.
pub fn check(
    archive: &MappedArchive,
    mut live: Option<&mut RespConnection>,
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
        let mut live_check = live.as_ref().map(|_| LiveCheck::default());
        let mut live_keys = 0i64;
        // keys with a TTL that had passed when looked at: the server may still count them
        // in DBSIZE until it evicts them
        let mut expired = 0i64;
        if let Some(conn) = live.as_deref_mut() {
            let n = db.db.to_string();
            expect_ok(conn.command(&[b"SELECT", n.as_bytes()]), "SELECT")?;
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
            let (Some(conn), Some(l)) = (live.as_deref_mut(), live_check.as_mut()) else {
                return Ok(());
            };
            let expired_now = || {
                k.meta
                    .expire_ms
                    .is_some_and(|t| t <= chrono::Utc::now().timestamp_millis())
            };
            if k.meta.expire_ms.is_some_and(|t| t <= now_ms) {
                expired += 1;
                return Ok(());
            }
            live_keys += 1;
            l.compared += 1;
            let reply = conn.command(&[b"DUMP", &k.key]).map_err(|e| {
                coffer_engine::Error::new(coffer_engine::ErrorKind::Connect, e.to_string())
            })?;
            match reply {
                RespValue::Bulk(p) if p.len() >= 11 => {
                    let body = &p[1..p.len() - 10];
                    let version = u16::from_le_bytes([p[p.len() - 10], p[p.len() - 9]]);
                    let same =
                        decode_value(p[0], body, version.into()).is_ok_and(|there| there == value);
                    if !same {
                        l.different += 1;
                        problem(
                            &mut c,
                            format!("key {}: another value on the server", quoted(&k.key)),
                        );
                    }
                }
                // it expired while the check ran: not a loss
                _ if expired_now() => {
                    l.compared -= 1;
                    live_keys -= 1;
                    expired += 1;
                }
                _ => {
                    l.missing += 1;
                    problem(
                        &mut c,
                        format!("key {}: missing on the server", quoted(&k.key)),
                    );
                }
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
        if let (Some(conn), Some(mut l)) = (live.as_deref_mut(), live_check) {
            let size = match conn.command(&[b"DBSIZE"]) {
                Ok(RespValue::Integer(n)) => n,
                other => {
                    return Err(CliError::new(
                        exit::DATABASE,
                        format!("DBSIZE on the test server: {other:?}"),
                    ));
                }
            };
            l.extra = if size < live_keys {
                size - live_keys
            } else {
                (size - live_keys - expired).max(0)
            };
            c.live = Some(l);
        }
        out.push(c);
    }
    Ok(out)
}

fn expect_ok(
    r: Result<RespValue, coffer_testkit::HarnessError>,
    what: &str,
) -> Result<(), CliError> {
    match r {
        Ok(RespValue::Simple(_)) => Ok(()),
        other => Err(CliError::new(
            exit::DATABASE,
            format!("{what} on the test server: {other:?}"),
        )),
    }
}
