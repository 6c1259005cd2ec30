//! Retention, status and schedule against backup directories made for the purpose: a
//! fabricated history of sets (their records and archive files, as `coffer backup` writes
//! them), because years of nightly backups cannot be waited for.

mod common;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::{coffer_command, s, text, webhook};
use serde_json::{Value, json};

struct History {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    conf: PathBuf,
}

fn history(conf_extra: &str) -> History {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    for d in ["sets", "postgres", "redis", "logs"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let conf = tmp.path().join("backup.conf");
    std::fs::write(&conf, format!("BACKUP_DIR={}\n{conf_extra}", s(&dir))).unwrap();
    History {
        _tmp: tmp,
        dir,
        conf,
    }
}

fn id(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d_%H%M%S").to_string()
}

/// Writes a set taken at `t` (finished a minute later), with a PostgreSQL archive of
/// `bytes` bytes, and optionally a restore test.
fn add_set(
    h: &History,
    t: DateTime<Utc>,
    ok: bool,
    bytes: u64,
    test: Option<(DateTime<Utc>, bool)>,
) -> String {
    let id = id(t);
    let file = format!("postgres/app_{id}.coffer");
    std::fs::write(h.dir.join(&file), vec![0u8; bytes as usize]).unwrap();
    let mut record = json!({
        "id": id, "started": t, "finished": t + Duration::minutes(1), "environment": "test",
        "ok": ok, "encrypted": false,
        "parts": [{"kind": "postgres", "source": "app", "file": file, "ok": ok, "seconds": 60.0,
                   "bytes": bytes, "raw_bytes": bytes, "verified": ok}],
    });
    if let Some((at, passed)) = test {
        record["restore_tests"] = json!([{"at": at, "passed": passed, "seconds": 5.0,
            "summary": [if passed { "postgres: passed" } else { "postgres: FAILED: mismatched public.t" }]}]);
    }
    std::fs::write(
        h.dir.join(format!("sets/{id}.json")),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
    id
}

fn coffer_in(h: &History, args: &[&str]) -> std::process::Output {
    coffer_command()
        .args(args)
        .arg("--config")
        .arg(&h.conf)
        .output()
        .unwrap()
}

fn remaining(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir.join("sets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| p.file_stem().unwrap().to_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn prune_keeps_exactly_what_the_policy_says() {
    let h = history("RETENTION_DAYS=7\nKEEP_LAST=3\nKEEP_WEEKLY=3\nKEEP_MONTHLY=3\n");
    // every night at 02:00 from 1 January to 31 March 2020 (2020-03-30 is a Monday);
    // 29 February and 31 March failed
    let mut all = Vec::new();
    let mut day = Utc.with_ymd_and_hms(2020, 1, 1, 2, 0, 0).unwrap();
    while day < Utc.with_ymd_and_hms(2020, 4, 1, 0, 0, 0).unwrap() {
        let failed = id(day).starts_with("20200229") || id(day).starts_with("20200331");
        all.push(add_set(&h, day, !failed, 100, None));
        day += Duration::days(1);
    }
    // and yesterday's backup, which failed: inside RETENTION_DAYS, so kept as evidence,
    // but it is not a good set
    let recent = add_set(&h, Utc::now() - Duration::days(1), false, 100, None);
    assert_eq!(remaining(&h.dir).len(), 92);

    let o = coffer_in(&h, &["pin", "20200115_020000"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // a record saved under another name does not stand for the set it names
    std::fs::copy(
        h.dir.join("sets/20200101_020000.json"),
        h.dir.join("sets/copy of 20200101.json"),
    )
    .unwrap();

    let o = coffer_in(&h, &["prune", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(remaining(&h.dir).len(), 93, "a dry run deletes nothing");
    assert!(
        text(&o).contains("would delete set 20200101_020000"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("not the set its name says"),
        "{}",
        text(&o)
    );
    let o = coffer_in(&h, &["prune", "--dry-run", "--json"]);
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan.as_array().unwrap().len(), 92);
    std::fs::remove_file(h.dir.join("sets/copy of 20200101.json")).unwrap();
    // nor under another set's id: pinning that id refuses it, and the set it names is
    // not written over (unpinned still)
    let named = h.dir.join("sets/20200101_020000.json");
    let before = std::fs::read(&named).unwrap();
    std::fs::copy(&named, h.dir.join("sets/20200102_030000.json")).unwrap();
    let o = coffer_in(&h, &["pin", "20200102_030000"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("records set 20200101_020000"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read(&named).unwrap(), before);
    std::fs::remove_file(h.dir.join("sets/20200102_030000.json")).unwrap();

    let o = coffer_in(&h, &["prune", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut expected = vec![
        "20200115_020000".to_string(), // pinned
        "20200131_020000".into(),      // KEEP_MONTHLY: January's newest good
        "20200228_020000".into(),      // KEEP_MONTHLY: February's (29th failed)
        "20200322_020000".into(),      // KEEP_WEEKLY: week 12's newest good
        "20200328_020000".into(),      // KEEP_LAST
        "20200329_020000".into(),      // KEEP_LAST, KEEP_WEEKLY week 13
        "20200330_020000".into(),      // newest good; KEEP_LAST, weekly 14, monthly March
        recent.clone(),                // within RETENTION_DAYS
    ];
    expected.sort();
    assert_eq!(remaining(&h.dir), expected);
    // their archives stay, the others' are gone
    let archives: Vec<String> = std::fs::read_dir(h.dir.join("postgres"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(archives.len(), expected.len(), "{archives:?}");
    for id in &expected {
        assert!(archives.contains(&format!("app_{id}.coffer")), "{id}");
    }
    let verdicts: Value = serde_json::from_slice(&o.stdout).unwrap();
    let newest = verdicts
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "20200330_020000")
        .unwrap();
    assert!(
        newest["reasons"].to_string().contains("newest good set"),
        "{newest}"
    );
    let log = std::fs::read_dir(h.dir.join("logs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("pruned set 20200101_020000"), "{log}");
    assert!(log.contains("set 20200115_020000 pinned"), "{log}");

    // unpinned, the January set goes at the next prune
    let o = coffer_in(&h, &["pin", "--remove", "20200115_020000"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    coffer_in(&h, &["prune"]);
    assert!(!remaining(&h.dir).contains(&"20200115_020000".to_string()));

    // however strict the policy, the newest good set stays
    let strict = history("RETENTION_DAYS=1\n");
    add_set(
        &strict,
        Utc.with_ymd_and_hms(2021, 5, 1, 2, 0, 0).unwrap(),
        true,
        1,
        None,
    );
    add_set(
        &strict,
        Utc.with_ymd_and_hms(2021, 5, 2, 2, 0, 0).unwrap(),
        false,
        1,
        None,
    );
    coffer_in(&strict, &["prune"]);
    assert_eq!(remaining(&strict.dir), ["20210501_020000"]);

    let o = coffer_in(&h, &["pin", "19990101_000000"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = coffer_in(&h, &["pin", "../../etc/passwd"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn a_missing_key_file_or_an_unwritable_backup_dir_is_a_clear_error() {
    let (url, hook) = webhook(vec![]);
    let h = history(&format!(
        "ENCRYPTION_KEY_FILE=/nonexistent/key\nNOTIFICATION_ENABLED=true\nNOTIFICATION_URL={url}\n"
    ));
    let o = coffer_in(&h, &["backup"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("/nonexistent/key"), "{}", text(&o));
    // stopped before any set: still logged and notified
    let n = hook
        .recv_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    assert_eq!(n["result"], "failure");
    assert!(n["set"].is_null());
    assert!(
        n["message"].as_str().unwrap().contains("/nonexistent/key"),
        "{n}"
    );

    let h = history("ENCRYPTION_KEY_FILE=/a\nENCRYPTION_PASSPHRASE_FILE=/b\n");
    let o = coffer_in(&h, &["backup"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // BACKUP_DIR under a regular file cannot be created
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("file"), "").unwrap();
    let conf = tmp.path().join("backup.conf");
    std::fs::write(
        &conf,
        format!("BACKUP_DIR={}/file/backups\n", s(tmp.path())),
    )
    .unwrap();
    let o = coffer_command()
        .args(["backup", "--config", s(&conf)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(text(&o).contains("file/backups"), "{}", text(&o));
}

#[test]
fn an_undeliverable_notification_is_logged_and_does_not_change_the_exit_code() {
    // nothing listens on either port: the backup fails to connect (exit 6), and the
    // notification of that failure cannot be delivered either
    let db_port = coffer_testkit::free_port().unwrap();
    let hook_port = coffer_testkit::free_port().unwrap();
    let h = history(&format!(
        "BACKUP_REDIS=false\nDB_HOST=127.0.0.1\nDB_PORT={db_port}\nPOSTGRES_DB=app\nPOSTGRES_USER=u\nNOTIFICATION_ENABLED=true\nNOTIFICATION_URL=http://127.0.0.1:{hook_port}/secret-token\nNOTIFICATION_RETRIES=1\nNOTIFICATION_TIMEOUT=2\n"
    ));
    let o = coffer_in(&h, &["backup"]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let log = std::fs::read_dir(h.dir.join("logs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains(&format!(
            "WARNING: notification to 127.0.0.1:{hook_port} failed"
        )),
        "{log}"
    );
    assert!(
        !log.contains("secret-token"),
        "the URL's path is never logged: {log}"
    );
    let set = &std::fs::read_dir(h.dir.join("sets")).unwrap().count();
    assert_eq!(*set, 1, "the failed set is recorded");
}

fn status(h: &History, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["status", "--json"];
    args.extend(extra);
    let o = coffer_in(h, &args);
    let doc: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    (o.status.code().unwrap(), doc)
}

fn level<'a>(doc: &'a Value, check: &str) -> &'a str {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == check)
        .unwrap()["level"]
        .as_str()
        .unwrap()
}

/// The free percentage of the filesystem holding `dir`, as `df` reports it.
fn df_free_percent(dir: &Path) -> f64 {
    let o = std::process::Command::new("df")
        .args(["--output=size,avail", "-B1", s(dir)])
        .output()
        .unwrap();
    let out = String::from_utf8(o.stdout).unwrap();
    let nums: Vec<f64> = out
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    100.0 * nums[1] / nums[0]
}

#[test]
fn status_exit_codes_for_each_alert() {
    let now = Utc::now();
    let day = |n: i64| now - Duration::days(n);
    let free = |h: &History| df_free_percent(&h.dir);

    // all well: nightly sets of steady size, a passed restore test two days ago
    let h = history("");
    for n in (1..=5).rev() {
        add_set(&h, day(n) + Duration::hours(2), true, 1000 + n as u64, None);
    }
    add_set(
        &h,
        now - Duration::hours(3),
        true,
        1000,
        Some((day(2), true)),
    );
    let (code, doc) = status(&h, &["--min-free", "0"]);
    assert_eq!(code, 0, "{doc}");

    // the free-space alert, with the threshold just above and just below what df says
    let f = free(&h);
    let (code, doc) = status(&h, &["--min-free", &format!("{}", (f + 1.0).min(100.0))]);
    assert_eq!((code, level(&doc, "disk_space")), (1, "warning"), "{doc}");
    let (code, doc) = status(&h, &["--min-free", &format!("{}", (f - 1.0).max(0.0))]);
    assert_eq!((code, level(&doc, "disk_space")), (0, "ok"), "{doc}");

    // a BACKUP_DIR that is not there (unmounted): critical, not a failure of status
    let h = history("");
    std::fs::remove_dir_all(&h.dir).unwrap();
    let (code, doc) = status(&h, &[]);
    assert_eq!((code, level(&doc, "disk_space")), (2, "critical"), "{doc}");

    // size: today's set of `today` bytes after `earlier` nightly sets of 1000
    let size_check = |earlier: i64, today: u64| {
        let h = history("");
        for n in (1..=earlier).rev() {
            add_set(&h, day(n), true, 1000, None);
        }
        add_set(&h, now - Duration::hours(1), true, today, Some((now, true)));
        let (code, doc) = status(&h, &["--min-free", "0"]);
        assert_eq!((code, level(&doc, "backup_size")), (1, "warning"), "{doc}");
    };
    size_check(5, 2500); // 2.5 times the average
    size_check(3, 400); // and shrinking by 60 % too

    // age: the last good backup finished 26 hours ago
    let h = history("");
    add_set(&h, now - Duration::hours(27), true, 1000, Some((now, true)));
    let (code, doc) = status(&h, &["--min-free", "0"]);
    assert_eq!((code, level(&doc, "backup_age")), (2, "critical"), "{doc}");
    let (code, _) = status(&h, &["--min-free", "0", "--max-age-hours", "48"]);
    assert_eq!(code, 0);

    // the last backup failed
    let h = history("");
    add_set(&h, day(1), true, 1000, Some((now, true)));
    add_set(&h, now - Duration::hours(1), false, 0, None);
    let (code, doc) = status(&h, &["--min-free", "0"]);
    assert_eq!((code, level(&doc, "last_backup")), (2, "critical"), "{doc}");

    // the last restore test failed; an older one passed
    let h = history("");
    add_set(&h, day(3), true, 1000, Some((day(2), true)));
    add_set(&h, now - Duration::hours(1), true, 1000, Some((now, false)));
    let (code, doc) = status(&h, &["--min-free", "0"]);
    assert_eq!(
        (code, level(&doc, "restore_test")),
        (2, "critical"),
        "{doc}"
    );

    // no restore test for nine days: a warning
    let h = history("");
    add_set(&h, day(9), true, 1000, Some((day(9), true)));
    add_set(&h, now - Duration::hours(1), true, 1000, None);
    let (code, doc) = status(&h, &["--min-free", "0"]);
    assert_eq!((code, level(&doc, "restore_test")), (1, "warning"), "{doc}");

    // nothing at all
    let h = history("");
    let (code, doc) = status(&h, &["--min-free", "0"]);
    assert_eq!((code, level(&doc, "last_backup")), (2, "critical"), "{doc}");
}

#[test]
fn schedule_output_is_valid_cron_and_systemd() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("my conf%.conf");
    std::fs::write(&conf, "BACKUP_DIR=/tmp/x\n").unwrap();

    let o = coffer_command()
        .args([
            "schedule",
            "--format",
            "cron",
            "--backup-at",
            "01:30",
            "--restore-test-at",
            "Sat 04:15",
            "--config",
            s(&conf),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let jobs: Vec<&str> = out
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.contains('='))
        .collect();
    assert_eq!(jobs.len(), 2, "{out}");
    let mut schedules = Vec::new();
    for job in &jobs {
        let fields: Vec<&str> = job.splitn(7, ' ').collect();
        let spec = fields[..5].join(" ");
        let cron: croner::Cron = spec.parse().unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(fields[5], "root");
        // the command, as /bin/sh and cron would see it: `%` escaped, the path one word
        let cmd = fields[6];
        assert!(cmd.contains("\\%"), "{cmd}");
        let sh = cmd.replace("\\%", "%");
        let o = std::process::Command::new("sh")
            .args(["-c", &format!("for a in {sh}; do echo \"[$a]\"; done")])
            .output()
            .unwrap();
        let words = String::from_utf8(o.stdout).unwrap();
        assert!(words.contains(&format!("[{}]", s(&conf))), "{words}");
        schedules.push(cron);
    }
    // the next runs are the ones asked for
    let from = chrono::Local
        .with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
        .unwrap();
    let next = |c: &croner::Cron| c.find_next_occurrence(&from, false).unwrap();
    assert_eq!(
        next(&schedules[0]).format("%a %H:%M").to_string(),
        "Thu 01:30"
    );
    assert_eq!(
        next(&schedules[1]).format("%a %H:%M").to_string(),
        "Sat 04:15"
    );

    // systemd units, checked by systemd itself where it is installed
    let units = tmp.path().join("units");
    std::fs::create_dir(&units).unwrap();
    let o = coffer_command()
        .args([
            "schedule",
            "--install",
            "--dir",
            s(&units),
            "--config",
            s(&conf),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let timer = std::fs::read_to_string(units.join("coffer-restore-test.timer")).unwrap();
    assert!(timer.contains("OnCalendar=Sun *-*-* 03:00:00"), "{timer}");
    let backup = std::fs::read_to_string(units.join("coffer-backup.timer")).unwrap();
    assert!(backup.contains("OnCalendar=*-*-* 02:00:00") && backup.contains("Persistent=true"));
    let service = std::fs::read_to_string(units.join("coffer-backup.service")).unwrap();
    assert!(
        service.contains("%%.conf"),
        "systemd specifiers escaped: {service}"
    );
    if Path::new("/usr/bin/systemd-analyze").exists() {
        let files: Vec<PathBuf> = std::fs::read_dir(&units)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let o = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .args(&files)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    } else {
        eprintln!("systemd-analyze not installed: the units were checked by content only");
    }

    // a reader that goes away (`coffer schedule | head -0`) ends coffer quietly
    let mut child = coffer_command()
        .args(["schedule", "--config", s(&conf)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert!(matches!(o.status.code(), Some(0 | 141)), "{}", text(&o));
    assert!(!text(&o).contains("panicked"), "{}", text(&o));

    let o = coffer_command()
        .args(["schedule", "--backup-at", "25:00"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
