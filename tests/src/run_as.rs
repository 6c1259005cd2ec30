//! Running PostgreSQL's server programs as a non-root user when we are root.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::HarnessError;
use crate::binaries;

/// Who runs `initdb`, `postgres` and `pg_ctl`.
#[derive(Debug, Clone)]
pub(crate) enum RunAs {
    /// Not root: run the programs directly.
    CurrentUser,
    /// Root: PostgreSQL refuses to run, so drop to `nobody` with `setpriv`.
    /// (`setpriv` rather than `runuser`/`su`: it only changes credentials
    /// and execs, so the child's pid is the server's pid, no PAM session
    /// is opened and no login environment is substituted.)
    Unprivileged {
        uid: u32,
        gid: u32,
        setpriv: PathBuf,
    },
}

/// Whether the effective uid is 0. The owner of /proc/self is the effective
/// uid; reading it avoids an `unsafe` libc::geteuid call.
pub(crate) fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

impl RunAs {
    pub(crate) fn detect() -> Result<Self, HarnessError> {
        if !is_root() {
            return Ok(Self::CurrentUser);
        }
        let (uid, gid) = nobody()?;
        let setpriv = binaries::on_path("setpriv")
            .or_else(|| {
                let fallback = Path::new("/usr/bin/setpriv");
                fallback.exists().then(|| fallback.to_path_buf())
            })
            .ok_or(HarnessError::BinaryNotFound {
                binary: "setpriv (needed to run PostgreSQL as `nobody` when root)",
                package: "util-linux",
                searched: "$PATH and /usr/bin".into(),
            })?;
        Ok(Self::Unprivileged { uid, gid, setpriv })
    }

    /// A command that runs `program` as the server user.
    pub(crate) fn command(&self, program: &Path) -> Command {
        match self {
            Self::CurrentUser => Command::new(program),
            Self::Unprivileged { uid, gid, setpriv } => {
                let mut cmd = Command::new(setpriv);
                cmd.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(program);
                cmd
            }
        }
    }

    /// Makes `dir` (empty, just created) owned by the server user.
    pub(crate) fn hand_over(&self, dir: &Path) -> Result<(), HarnessError> {
        match self {
            Self::CurrentUser => Ok(()),
            Self::Unprivileged { uid, gid, .. } => {
                std::os::unix::fs::chown(dir, Some(*uid), Some(*gid)).map_err(HarnessError::io(
                    format!("chown {} to nobody", dir.display()),
                ))
            }
        }
    }

    /// Where to create the server's temporary directory: the unprivileged
    /// user must be able to traverse every parent, which `/tmp` guarantees and
    /// an arbitrary `$TMPDIR` (say, under /root) does not.
    pub(crate) fn temp_parent(&self) -> PathBuf {
        match self {
            Self::CurrentUser => std::env::temp_dir(),
            Self::Unprivileged { .. } => PathBuf::from("/tmp"),
        }
    }
}

/// uid and primary gid of `nobody`, from /etc/passwd.
fn nobody() -> Result<(u32, u32), HarnessError> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(HarnessError::io(
        "reading /etc/passwd to find user `nobody`",
    ))?;
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            if fields.next()? != "nobody" {
                return None;
            }
            let _password = fields.next()?;
            Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
        })
        .ok_or_else(|| HarnessError::Io {
            context: "running PostgreSQL as root needs an unprivileged user".into(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no user `nobody` in /etc/passwd",
            ),
        })
}
