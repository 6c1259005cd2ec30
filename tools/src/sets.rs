//! The backup set on disk (DESIGN.md §5): where `coffer backup` puts its archives, the JSON
//! record of each set, and how sets are listed, published and removed.
//!
//! ```text
//! BACKUP_DIR/
//!   postgres/<db>_<YYYYmmdd_HHMMSS>.coffer
//!   redis/redis_<YYYYmmdd_HHMMSS>.coffer
//!   sets/<YYYYmmdd_HHMMSS>.json
//!   logs/backup_<YYYYmm>.log
//!   .incoming/<YYYYmmdd_HHMMSS>/    archives of a running backup, moved out when sealed and verified
//!   .lock                           held by a running backup or prune
//! ```
//!
//! Set ids are UTC times: names sort in time order, and a daylight-saving change cannot
//! make two nights share a name.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::CliError;
use crate::exit;

/// `strftime` pattern of a set id.
pub const ID_FORMAT: &str = "%Y%m%d_%H%M%S";

/// Which database a part holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartKind {
    Postgres,
    Redis,
}

impl PartKind {
    pub fn name(self) -> &'static str {
        match self {
            PartKind::Postgres => "postgres",
            PartKind::Redis => "redis",
        }
    }
}

/// One archive of a set, or the failure that stopped it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Part {
    pub kind: Option<PartKind>,
    /// What was dumped: the database name, or the Redis host:port.
    pub source: String,
    /// The archive, relative to BACKUP_DIR; absent when the part failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub seconds: f64,
    /// Archive size.
    pub bytes: u64,
    /// Data before compression.
    pub raw_bytes: u64,
    /// Tables (PostgreSQL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tables: Option<u64>,
    /// Rows (PostgreSQL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Keys (Redis).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<u64>,
    /// The archive id from its header, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_id: Option<String>,
    /// BLAKE3 of the whole archive file (as `b3sum` prints it), for copies made elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// Every frame checked after the archive was sealed.
    pub verified: bool,
}

/// One `coffer restore-test` of a set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RestoreTest {
    pub at: DateTime<Utc>,
    pub passed: bool,
    pub seconds: f64,
    /// One line per part: what was checked and how it went.
    pub summary: Vec<String>,
}

/// `sets/<id>.json`: what one `coffer backup` produced, and its result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetRecord {
    pub id: String,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub environment: String,
    pub ok: bool,
    /// Archives were encrypted (the key itself is never recorded).
    pub encrypted: bool,
    /// Kept whatever the retention policy says (`coffer pin`).
    #[serde(default)]
    pub pinned: bool,
    pub parts: Vec<Part>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restore_tests: Vec<RestoreTest>,
}

impl SetRecord {
    /// When the set was taken, from its id.
    pub fn time(&self) -> DateTime<Utc> {
        parse_id(&self.id).unwrap_or(self.started)
    }

    /// Total archive bytes.
    pub fn bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.bytes).sum()
    }
}

/// The time a set id names.
pub fn parse_id(id: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(id, ID_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

/// The backup directory.
#[derive(Clone, Debug)]
pub struct BackupDir {
    pub root: PathBuf,
}

/// Held while a backup or prune runs; released when dropped.
pub struct DirLock {
    _file: File,
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> CliError {
    CliError::new(exit::OUTPUT, format!("{what} {}: {e}", path.display()))
}

impl BackupDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        BackupDir { root: root.into() }
    }

    pub fn sets(&self) -> PathBuf {
        self.root.join("sets")
    }

    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn incoming(&self, id: &str) -> PathBuf {
        self.root.join(".incoming").join(id)
    }

    pub fn part_dir(&self, kind: PartKind) -> PathBuf {
        self.root.join(kind.name())
    }

    pub fn record_path(&self, id: &str) -> PathBuf {
        self.sets().join(format!("{id}.json"))
    }

    /// Creates the layout, every directory 0700 (existing ones are tightened too: the
    /// archives hold the whole database).
    pub fn create(&self) -> Result<(), CliError> {
        for d in [
            self.root.clone(),
            self.sets(),
            self.logs(),
            self.root.join(".incoming"),
            self.part_dir(PartKind::Postgres),
            self.part_dir(PartKind::Redis),
        ] {
            make_private_dir(&d)?;
        }
        Ok(())
    }

    /// Takes the directory's lock, or says who holds it.
    pub fn lock(&self) -> Result<DirLock, CliError> {
        self.take_lock(rustix::fs::FlockOperation::NonBlockingLockExclusive)
    }

    /// Takes the directory's lock, waiting for whoever holds it.
    pub fn lock_wait(&self) -> Result<DirLock, CliError> {
        self.take_lock(rustix::fs::FlockOperation::LockExclusive)
    }

    fn take_lock(&self, how: rustix::fs::FlockOperation) -> Result<DirLock, CliError> {
        let path = self.root.join(".lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_err(&path, "opening", e))?;
        rustix::fs::flock(&f, how).map_err(|e| {
            if e == rustix::io::Errno::WOULDBLOCK {
                CliError::new(
                    exit::BUSY,
                    format!(
                        "another coffer backup or prune is running on {} (it holds {})",
                        self.root.display(),
                        path.display()
                    ),
                )
            } else {
                io_err(&path, "locking", e.into())
            }
        })?;
        Ok(DirLock { _file: f })
    }

    /// Every set record, oldest first; records that cannot be read are reported in
    /// `warnings` and left out.
    pub fn list(&self, warnings: &mut Vec<String>) -> Result<Vec<SetRecord>, CliError> {
        let dir = self.sets();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(CliError::new(
                    exit::BAD_INPUT,
                    format!("reading {}: {e}", dir.display()),
                ));
            }
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let parsed = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<SetRecord>(&b).map_err(|e| e.to_string()));
            match parsed {
                // a record is only the set it is named after: a copy saved under another
                // name must not stand for (and prune away) the original
                Ok(r)
                    if path.file_stem().is_some_and(|s| *s == *r.id)
                        && parse_id(&r.id).is_some() =>
                {
                    out.push(r)
                }
                Ok(r) => warnings.push(format!(
                    "{}: holds set {:?}, not the set its name says (ignored)",
                    path.display(),
                    r.id
                )),
                Err(e) => warnings.push(format!("{}: unreadable set record: {e}", path.display())),
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// One set by id.
    pub fn read(&self, id: &str) -> Result<SetRecord, CliError> {
        if parse_id(id).is_none() {
            return Err(CliError::new(
                exit::USAGE,
                format!("{id:?} is not a set id (YYYYmmdd_HHMMSS)"),
            ));
        }
        let path = self.record_path(id);
        let bytes = fs::read(&path).map_err(|e| {
            CliError::new(
                exit::BAD_INPUT,
                format!("no backup set {id}: {}: {e}", path.display()),
            )
        })?;
        let record: SetRecord = serde_json::from_slice(&bytes)
            .map_err(|e| CliError::new(exit::BAD_INPUT, format!("{}: {e}", path.display())))?;
        // as in list(): a record counts only for the set it is named after (a copy under
        // another name would otherwise be written back over the set it names)
        if record.id != id {
            return Err(CliError::new(
                exit::BAD_INPUT,
                format!(
                    "{} records set {}, not {id}: ignored",
                    path.display(),
                    record.id
                ),
            ));
        }
        Ok(record)
    }

    /// Writes a set record atomically (temporary file, fsync, rename, directory fsync).
    pub fn write(&self, record: &SetRecord) -> Result<(), CliError> {
        let json = serde_json::to_vec_pretty(record).expect("a set record serialises");
        write_atomic(&self.record_path(&record.id), &json, 0o600)
    }

    /// The archive a part names, if the name is one `coffer backup` writes
    /// (`postgres/NAME` or `redis/NAME`): a hand-edited record cannot point outside.
    pub fn archive_path(&self, file: &str) -> Option<PathBuf> {
        let (dir, name) = file.split_once('/')?;
        let plain = !name.is_empty() && !name.contains('/') && name != ".." && name != ".";
        (matches!(dir, "postgres" | "redis") && plain).then(|| self.root.join(file))
    }

    /// Deletes a set: its record first (so no listing ever shows a set whose archives are
    /// half gone), then its archives.
    pub fn remove(&self, record: &SetRecord) -> Result<(), CliError> {
        let path = self.record_path(&record.id);
        fs::remove_file(&path).map_err(|e| io_err(&path, "removing", e))?;
        for p in &record.parts {
            if let Some(path) = p.file.as_deref().and_then(|f| self.archive_path(f)) {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&path, "removing", e)),
                }
            }
        }
        Ok(())
    }

    /// Fraction of the backup volume that is free (for unprivileged users), 0–1.
    pub fn free_fraction(&self) -> Result<f64, CliError> {
        let s = rustix::fs::statvfs(&self.root).map_err(|e| {
            CliError::new(
                exit::BAD_INPUT,
                format!("statvfs {}: {e}", self.root.display()),
            )
        })?;
        if s.f_blocks == 0 {
            return Ok(1.0);
        }
        Ok(s.f_bavail as f64 / s.f_blocks as f64)
    }
}

/// Creates `dir` (and parents) with mode 0700, and sets 0700 on it if it existed.
pub fn make_private_dir(dir: &Path) -> Result<(), CliError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_err(dir, "creating", e))?;
    let mode = fs::metadata(dir)
        .map_err(|e| io_err(dir, "reading", e))?
        .permissions()
        .mode();
    if mode & 0o7777 == 0o700 {
        // already private: no metadata write (which a read-only or immutable directory
        // would refuse even when nothing changes)
        return Ok(());
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| io_err(dir, "setting permissions of", e))
}

/// Writes `bytes` to `path` (with `mode`) so that a reader sees the old file or the new
/// one, never a part, even across a crash or beside another writer: a temporary file of
/// its own in the same directory, synced, renamed over `path`, the directory synced.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let result = (|| {
        let mut tmp = tempfile::Builder::new()
            .prefix(".coffer-")
            .permissions(fs::Permissions::from_mode(mode))
            .tempfile_in(dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        File::open(dir)?.sync_all()
    })();
    result.map_err(|e: std::io::Error| io_err(path, "writing", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_utc_times_that_sort() {
        let t = parse_id("20261125_020000").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-25T02:00:00+00:00");
        assert_eq!(t.format(ID_FORMAT).to_string(), "20261125_020000");
        assert!(parse_id("2026-11-25").is_none());
    }

    #[test]
    fn only_archive_names_coffer_writes_are_followed() {
        let dir = BackupDir::new("/b");
        assert_eq!(
            dir.archive_path("postgres/app_1.coffer"),
            Some(PathBuf::from("/b/postgres/app_1.coffer"))
        );
        for bad in [
            "/etc/passwd",
            "postgres/../x",
            "postgres/a/b",
            "sets/x.json",
            "redis/",
            "redis/..",
        ] {
            assert_eq!(dir.archive_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn layout_is_private_and_the_lock_is_exclusive() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = BackupDir::new(tmp.path().join("b"));
        dir.create().unwrap();
        for d in ["", "sets", "logs", "postgres", "redis", ".incoming"] {
            let mode = fs::metadata(dir.root.join(d)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{d}");
        }
        let held = dir.lock().unwrap();
        let again = dir.lock().err().expect("second lock refused");
        assert!(
            again.message.contains("another coffer"),
            "{}",
            again.message
        );
        assert_eq!(again.code, exit::BUSY);
        drop(held);
        dir.lock().unwrap();
        write_atomic(&dir.root.join("x.json"), b"{}", 0o600).unwrap();
        let mode = fs::metadata(dir.root.join("x.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
