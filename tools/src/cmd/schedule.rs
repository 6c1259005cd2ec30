//! `coffer schedule`: the seed's setup_backup_cron.sh. Prints, or with `--install` writes,
//! the cron file or the systemd service and timer units that run `coffer backup` daily
//! and `coffer restore-test --latest` weekly, with the configuration's path.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use crate::error::CliError;
use crate::exit;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// /etc/cron.d/coffer (with a user column).
    Cron,
    /// coffer-backup.service/.timer and coffer-restore-test.service/.timer.
    Systemd,
}

/// `coffer schedule` options.
#[derive(Args, Debug)]
pub struct ScheduleArgs {
    /// The configuration file the jobs use (made absolute).
    #[arg(long, value_name = "FILE", default_value = "/etc/coffer/backup.conf")]
    pub config: PathBuf,
    #[arg(long, value_enum, default_value = "systemd")]
    pub format: Format,
    /// Daily backup time, HH:MM (the machine's local time, as cron and systemd read it).
    #[arg(long, value_name = "HH:MM", default_value = "02:00")]
    pub backup_at: String,
    /// Weekly restore test, DAY HH:MM (day: Mon … Sun).
    #[arg(long, value_name = "DAY HH:MM", default_value = "Sun 03:00")]
    pub restore_test_at: String,
    /// The user the jobs run as (cron's user column; systemd's User=).
    #[arg(long, default_value = "root")]
    pub user: String,
    /// Write the files into DIR (default /etc/cron.d or /etc/systemd/system) instead of
    /// printing them.
    #[arg(long)]
    pub install: bool,
    /// Where --install writes.
    #[arg(long, value_name = "DIR", requires = "install")]
    pub dir: Option<PathBuf>,
}

/// Week days: the name systemd takes, and cron's number.
const DAYS: [(&str, &str); 7] = [
    ("Mon", "1"),
    ("Tue", "2"),
    ("Wed", "3"),
    ("Thu", "4"),
    ("Fri", "5"),
    ("Sat", "6"),
    ("Sun", "0"),
];

fn usage(msg: String) -> CliError {
    CliError::new(exit::USAGE, msg)
}

/// `HH:MM` → (hour, minute).
fn clock(s: &str) -> Result<(u32, u32), CliError> {
    let bad = || usage(format!("{s:?}: expected a time as HH:MM (00:00 to 23:59)"));
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok((h, m))
}

/// `DAY HH:MM` → (index into DAYS, hour, minute).
fn weekly(s: &str) -> Result<(usize, u32, u32), CliError> {
    let (day, time) = s
        .split_once(' ')
        .ok_or_else(|| usage(format!("{s:?}: expected DAY HH:MM, e.g. \"Sun 03:00\"")))?;
    let d = day.to_ascii_lowercase();
    let i = DAYS
        .iter()
        .position(|(n, _)| d.starts_with(&n.to_ascii_lowercase()))
        .ok_or_else(|| usage(format!("{day:?}: expected a day, Mon to Sun")))?;
    let (h, m) = clock(time.trim())?;
    Ok((i, h, m))
}

/// A word for /bin/sh, in single quotes, with cron's `%` escaped (cron turns a bare `%`
/// into a newline).
fn sh_word(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''")).replace('%', "\\%")
}

/// A word for systemd's ExecStart=, in double quotes, with `%` specifiers and `$`
/// variable expansion escaped.
fn systemd_word(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
        .replace('%', "%%")
        .replace('$', "$$")
}

/// The files to write: (name, contents).
pub fn render(
    format: Format,
    exe: &Path,
    config: &Path,
    backup: (u32, u32),
    test: (usize, u32, u32),
    user: &str,
) -> Result<Vec<(String, String)>, CliError> {
    for (what, s) in [("program path", exe), ("configuration path", config)] {
        if s.to_str().is_none_or(|t| t.contains(['\n', '\r'])) {
            return Err(usage(format!(
                "the {what} {} cannot go in a schedule (not UTF-8, or a line break)",
                s.display()
            )));
        }
    }
    if user.is_empty()
        || !user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(usage(format!("{user:?}: not a user name")));
    }
    let exe = exe.to_str().unwrap_or_default();
    let conf = config.to_str().unwrap_or_default();
    let (day, th, tm) = test;
    Ok(match format {
        Format::Cron => {
            let cmd = |sub: &str| format!("{} {sub} --config {}", sh_word(exe), sh_word(conf));
            let text = format!(
                "# coffer: daily backup and weekly restore test (written by `coffer schedule`)\n\
                 SHELL=/bin/sh\n\
                 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
                 {} {} * * * {user} {}\n\
                 {tm} {th} * * {} {user} {}\n",
                backup.1,
                backup.0,
                cmd("backup"),
                DAYS[day].1,
                cmd("restore-test --latest")
            );
            vec![("coffer".into(), text)]
        }
        Format::Systemd => {
            let service = |what: &str, sub: &str| {
                format!(
                    "[Unit]\n\
                     Description=coffer {what}\n\
                     Wants=network-online.target\n\
                     After=network-online.target\n\n\
                     [Service]\n\
                     Type=oneshot\n\
                     User={user}\n\
                     ExecStart={} {sub} --config {}\n\
                     Nice=10\n\
                     IOSchedulingClass=best-effort\n\
                     IOSchedulingPriority=7\n",
                    systemd_word(exe),
                    systemd_word(conf)
                )
            };
            let timer = |what: &str, when: String| {
                format!(
                    "[Unit]\n\
                     Description=coffer {what} schedule\n\n\
                     [Timer]\n\
                     OnCalendar={when}\n\
                     Persistent=true\n\n\
                     [Install]\n\
                     WantedBy=timers.target\n"
                )
            };
            let day_name = DAYS[day].0;
            vec![
                (
                    "coffer-backup.service".into(),
                    service("daily backup", "backup"),
                ),
                (
                    "coffer-backup.timer".into(),
                    timer(
                        "daily backup",
                        format!("*-*-* {:02}:{:02}:00", backup.0, backup.1),
                    ),
                ),
                (
                    "coffer-restore-test.service".into(),
                    service("weekly restore test", "restore-test --latest"),
                ),
                (
                    "coffer-restore-test.timer".into(),
                    timer(
                        "weekly restore test",
                        format!("{day_name} *-*-* {th:02}:{tm:02}:00"),
                    ),
                ),
            ]
        }
    })
}

pub fn run(args: ScheduleArgs) -> Result<u8, CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::new(exit::USAGE, format!("cannot tell where coffer is: {e}")))?;
    let config = std::path::absolute(&args.config)
        .map_err(|e| usage(format!("{}: {e}", args.config.display())))?;
    if !config.exists() {
        eprintln!(
            "coffer: warning: {} does not exist yet; the jobs will fail until it does",
            config.display()
        );
    }
    let files = render(
        args.format,
        &exe,
        &config,
        clock(&args.backup_at)?,
        weekly(&args.restore_test_at)?,
        &args.user,
    )?;
    if !args.install {
        for (name, text) in &files {
            println!("# ---- {name}\n{text}");
        }
        return Ok(exit::OK);
    }
    let dir = args.dir.clone().unwrap_or_else(|| {
        PathBuf::from(match args.format {
            Format::Cron => "/etc/cron.d",
            Format::Systemd => "/etc/systemd/system",
        })
    });
    for (name, text) in &files {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| CliError::new(exit::OUTPUT, format!("{}: {e}", path.display())))?;
        println!("wrote {}", path.display());
    }
    if let Format::Systemd = args.format {
        println!(
            "now: systemctl daemon-reload && systemctl enable --now coffer-backup.timer coffer-restore-test.timer"
        );
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_days_and_quoting() {
        assert_eq!(clock("02:00").unwrap(), (2, 0));
        assert!(clock("24:00").is_err() && clock("2").is_err());
        assert_eq!(weekly("Sun 03:00").unwrap(), (6, 3, 0));
        assert_eq!(weekly("monday 23:59").unwrap(), (0, 23, 59));
        assert!(weekly("Funday 01:00").is_err());
        assert_eq!(sh_word("/a b/it's%"), "'/a b/it'\\''s\\%'");
        assert_eq!(systemd_word("/a \"b\"/50%"), "\"/a \\\"b\\\"/50%%\"");
        assert_eq!(systemd_word("/$HOME"), "\"/$$HOME\"");
        assert!(
            render(
                Format::Cron,
                Path::new("/x"),
                Path::new("/c"),
                (2, 0),
                (6, 3, 0),
                "a b"
            )
            .is_err()
        );
    }
}
