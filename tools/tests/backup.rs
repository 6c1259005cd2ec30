//! The nightly job end to end, against real servers: `coffer backup` of a live PostgreSQL
//! and Redis from a backup.conf, the set verified, `coffer restore-test --latest`, the
//! notifications received by a local HTTP server, `coffer status` for each alert, metrics.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use coffer_testkit::{PgServer, RedisServer};
use common::{coffer_command, s, text, webhook};
use serde_json::Value;

struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    conf: PathBuf,
}

/// A backup.conf for these servers; `extra` lines are appended.
fn setup(pg: &PgServer, redis_port: u16, extra: &str) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("backups");
    let conf = tmp.path().join("backup.conf");
    std::fs::write(
        &conf,
        format!(
            "# as the seed's backup.conf\nBACKUP_DIR={}\nRETENTION_DAYS=30\nDB_HOST={}\nDB_PORT={}\nPOSTGRES_DB=shop\nPOSTGRES_USER={}\nREDIS_HOST=127.0.0.1\nREDIS_PORT={redis_port}\nENVIRONMENT=test\n{extra}",
            s(&dir),
            pg.host(),
            pg.port(),
            pg.user(),
        ),
    )
    .unwrap();
    Setup {
        _tmp: tmp,
        dir,
        conf,
    }
}

fn run(conf: &Path, args: &[&str]) -> std::process::Output {
    coffer_command()
        .args(args)
        .arg("--config")
        .arg(conf)
        .output()
        .unwrap()
}

fn servers() -> (PgServer, RedisServer) {
    let pg = PgServer::start().unwrap();
    pg.create_database("shop").unwrap();
    pg.psql(
        "shop",
        "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric);
         INSERT INTO items SELECT g, 'item ' || g, g * 1.5 FROM generate_series(1, 5000) g;
         CREATE TABLE orders (id bigserial PRIMARY KEY, item int REFERENCES items, at timestamptz DEFAULT now());
         INSERT INTO orders (item) SELECT 1 + g % 5000 FROM generate_series(1, 20000) g;",
    )
    .unwrap();
    let redis = RedisServer::start().unwrap();
    for args in [
        &[&b"SET"[..], b"session:1", b"alice"][..],
        &[b"HSET", b"user:1", b"name", b"alice", b"plan", b"pro"],
        &[b"RPUSH", b"queue", b"a", b"b", b"c"],
        &[b"SADD", b"tags", b"x", b"y"],
        &[b"ZADD", b"board", b"1.5", b"alice", b"-inf", b"bob"],
        &[b"SET", b"cache:ttl", b"v", b"PX", b"86400000"],
        &[b"SELECT", b"1"],
        &[b"SET", b"other-db", b"\x00\xff"],
    ] {
        redis.command(args).unwrap();
    }
    (pg, redis)
}

fn sets(dir: &Path) -> Vec<Value> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir.join("sets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                s(&p).to_string(),
                serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, v)| v).collect()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn backup_verify_restore_test_notify_metrics_status() {
    let (pg, redis) = servers();
    let (url, hook) = webhook(vec![500]);
    let tmp_key = tempfile::tempdir().unwrap();
    let pass = tmp_key.path().join("pass");
    std::fs::write(&pass, "correct horse\n").unwrap();
    let st = setup(
        &pg,
        redis.port(),
        &format!(
            "NOTIFICATION_ENABLED=true\nNOTIFICATION_URL={url}\nENCRYPTION_PASSPHRASE_FILE={}\nMETRICS_FILE={}/coffer.prom\n",
            s(&pass),
            s(tmp_key.path())
        ),
    );

    let o = run(&st.conf, &["backup"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // the layout, private
    let set = &sets(&st.dir)[0];
    let id = set["id"].as_str().unwrap();
    assert_eq!(set["ok"], true, "{set}");
    assert_eq!(set["encrypted"], true);
    let pg_file = st.dir.join(format!("postgres/shop_{id}.coffer"));
    let redis_file = st.dir.join(format!("redis/redis_{id}.coffer"));
    for d in ["", "postgres", "redis", "sets", "logs"] {
        assert_eq!(mode(&st.dir.join(d)), 0o700, "{d}");
    }
    for f in [
        &pg_file,
        &redis_file,
        &st.dir.join(format!("sets/{id}.json")),
    ] {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    let month = &id[..6];
    let log = std::fs::read_to_string(st.dir.join(format!("logs/backup_{month}.log"))).unwrap();
    assert!(log.contains(&format!("backup {id} succeeded")), "{log}");
    assert!(!log.contains("correct horse"));

    // what the record says is what is on disk
    let parts = set["parts"].as_array().unwrap();
    let pg_part = parts.iter().find(|p| p["kind"] == "postgres").unwrap();
    let redis_part = parts.iter().find(|p| p["kind"] == "redis").unwrap();
    assert_eq!(pg_part["rows"], 25000);
    assert_eq!(pg_part["tables"], 2);
    assert_eq!(redis_part["keys"], 7);
    for (part, file) in [(pg_part, &pg_file), (redis_part, &redis_file)] {
        let bytes = std::fs::read(file).unwrap();
        assert_eq!(part["bytes"], bytes.len() as u64);
        assert_eq!(part["blake3"], blake3::hash(&bytes).to_hex().as_str());
        assert_eq!(part["verified"], true);
        // encrypted: unreadable without the key, intact with it
        let o = coffer_command()
            .args(["verify", "--passphrase-file", s(&pass), s(file)])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let o = coffer_command().args(["list", s(file)]).output().unwrap();
        assert_eq!(o.status.code(), Some(4), "no key: {}", text(&o));
    }
    assert!(!st.dir.join(".incoming").join(id).exists());

    // the set verified as a whole: every archive intact and the file the record names
    let record = st.dir.join(format!("sets/{id}.json"));
    let o = coffer_command()
        .args(["verify", "--passphrase-file", s(&pass), s(&record)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("set {id}: intact")),
        "{}",
        text(&o)
    );
    // the key's place may also come from the environment, for every command
    let o = coffer_command()
        .args(["verify", s(&record)])
        .env("COFFER_PASSPHRASE_FILE", &pass)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("payloads authenticated"), "{}", text(&o));
    // a copy that is not the recorded file (replaced by another valid archive) is caught
    let original = std::fs::read(&redis_file).unwrap();
    std::fs::copy(&pg_file, &redis_file).unwrap();
    let o = coffer_command()
        .args(["verify", "--passphrase-file", s(&pass), s(&record)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("BLAKE3 differs"), "{}", text(&o));
    std::fs::write(&redis_file, original).unwrap();

    // a wrong key is a clear error (exit 4), and records nothing
    let wrong = tmp_key.path().join("wrong");
    std::fs::write(&wrong, "battery staple").unwrap();
    let o = run(
        &st.conf,
        &["restore-test", "--latest", "--passphrase-file", s(&wrong)],
    );
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        text(&o).contains("wrong passphrase or key file"),
        "{}",
        text(&o)
    );
    assert!(sets(&st.dir)[0].get("restore_tests").is_none());

    // the notification: first answered 500, retried, then delivered
    let first = hook.recv_timeout(Duration::from_secs(5)).unwrap();
    let second = hook.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(first, second);
    assert_eq!(first["result"], "success");
    assert_eq!(first["set"], id);
    assert_eq!(first["environment"], "test");
    assert!(log.contains("notification sent"), "{log}");

    // restore test of the whole set
    let o = run(&st.conf, &["restore-test", "--latest"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("compared key by key"), "{out}");
    assert_eq!(out.matches("PASSED").count(), 2, "{out}");
    let set = &sets(&st.dir)[0];
    assert_eq!(set["restore_tests"][0]["passed"], true, "{set}");
    let o = pg.psql(
        "postgres",
        "SELECT count(*) FROM pg_database WHERE datname = 'coffer_restore_test'",
    );
    assert_eq!(o.unwrap().trim(), "0", "the test database is dropped");

    // without redis-server on the machine, the Redis part is decoded and checked, and the
    // report says so
    let o = coffer_command()
        .args(["restore-test", "--latest", "--config", s(&st.conf)])
        .env("COFFER_REDIS_SERVER", "/nonexistent/redis-server")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("redis-server not found"), "{}", text(&o));
    assert_eq!(
        sets(&st.dir)[0]["restore_tests"].as_array().unwrap().len(),
        2
    );

    // metrics
    let prom = std::fs::read_to_string(tmp_key.path().join("coffer.prom")).unwrap();
    for line in [
        "coffer_backup_last_run_success{environment=\"test\"} 1",
        "coffer_restore_test_last_success{environment=\"test\"} 1",
        "coffer_backup_rows{environment=\"test\",part=\"postgres\"} 25000",
        "coffer_backup_keys{environment=\"test\",part=\"redis\"} 7",
    ] {
        assert!(prom.contains(line), "{line} in\n{prom}");
    }
    let last_ok = prom
        .lines()
        .find_map(|l| {
            l.strip_prefix("coffer_backup_last_success_timestamp_seconds{environment=\"test\"} ")
        })
        .unwrap();
    let age = chrono::Utc::now().timestamp() as f64 - last_ok.parse::<f64>().unwrap();
    assert!((0.0..600.0).contains(&age), "{age}");

    // all is well (free space judged in another test)
    let o = run(&st.conf, &["status", "--min-free", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // Redis goes away: the set fails, PostgreSQL's archive is still published, the failure
    // is notified, and status turns critical
    drop(redis);
    let o = run(&st.conf, &["backup"]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let all = sets(&st.dir);
    assert_eq!(all.len(), 2);
    let failed = &all[1];
    assert_eq!(failed["ok"], false);
    let fid = failed["id"].as_str().unwrap();
    let fparts = failed["parts"].as_array().unwrap();
    let fredis = fparts.iter().find(|p| p["kind"] == "redis").unwrap();
    assert!(
        fredis["error"].as_str().unwrap().contains("connect"),
        "{fredis}"
    );
    assert!(
        fredis["error"]
            .as_str()
            .unwrap()
            .contains("set BACKUP_REDIS=false"),
        "{fredis}"
    );
    assert!(fredis.get("file").is_none());
    assert!(st.dir.join(format!("postgres/shop_{fid}.coffer")).exists());
    let leftovers: Vec<_> = walk(&st.dir)
        .into_iter()
        .filter(|p| s(p).ends_with(".partial") || s(p).contains(&format!("redis_{fid}")))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let n = hook.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(n["result"], "failure");
    assert_eq!(n["set"], fid);
    let o = run(&st.conf, &["status", "--min-free", "0", "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let last = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "last_backup")
        .unwrap();
    assert_eq!(last["level"], "critical");

    // the newest good set is the first one: --latest tests it, not the failed one
    let o = run(&st.conf, &["restore-test", "--latest", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["set"], id);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_damaged_archive_fails_the_restore_test_and_status_says_so() {
    let (pg, redis) = servers();
    let st = setup(&pg, redis.port(), "BACKUP_REDIS=false\n");
    let o = run(&st.conf, &["backup"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let set = &sets(&st.dir)[0];
    let id = set["id"].as_str().unwrap();
    assert_eq!(set["parts"].as_array().unwrap().len(), 1);
    let file = st.dir.join(format!("postgres/shop_{id}.coffer"));

    // flip a byte inside the first data frame of `orders`
    let a = coffer_format::MappedArchive::open(&file, None).unwrap();
    let stream = a
        .streams()
        .iter()
        .find(|st| st.descriptor.name == "public.orders")
        .unwrap()
        .clone();
    let frame = a.data_entries(&stream)[0];
    drop(a);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[(frame.file_offset + 200) as usize] ^= 0x10;
    std::fs::write(&file, &bytes).unwrap();

    let o = run(&st.conf, &["restore-test", "--latest"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("public.orders"), "{}", text(&o));
    let set = &sets(&st.dir)[0];
    assert_eq!(set["restore_tests"][0]["passed"], false);
    let o = run(&st.conf, &["status", "--min-free", "0", "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "restore_test")
        .unwrap();
    assert_eq!(f["level"], "critical", "{f}");
    assert!(
        f["message"].as_str().unwrap().contains("public.orders"),
        "{f}"
    );
}

/// Makes a directory immutable (`chattr +i`, root only) for as long as it lives.
struct Immutable(PathBuf);

impl Immutable {
    fn set(dir: &Path) -> Option<Immutable> {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Immutable(dir.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

/// The set record cannot be written (here: `sets/` refuses new files, as a full disk
/// would): the backup fails with the output exit code, and its archives go too, rather
/// than stay as orphans that no listing shows and no prune removes.
#[test]
fn a_set_whose_record_cannot_be_written_leaves_no_archives() {
    let (pg, _redis) = servers();
    let st = setup(&pg, 1, "BACKUP_REDIS=false\n");
    let o = run(&st.conf, &["backup"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let before = walk(&st.dir);
    let Some(_guard) = Immutable::set(&st.dir.join("sets")) else {
        eprintln!("chattr +i is not permitted here (not root): skipped");
        return;
    };
    std::thread::sleep(Duration::from_millis(1100)); // a new set id
    let o = run(&st.conf, &["backup"]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(text(&o).contains("were removed with it"), "{}", text(&o));
    let mut after = walk(&st.dir);
    after.retain(|p| !p.starts_with(st.dir.join("logs")));
    let mut expected = before.clone();
    expected.retain(|p| !p.starts_with(st.dir.join("logs")));
    assert_eq!(after, expected, "only the first set's files remain");
    let log = std::fs::read_dir(st.dir.join("logs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(log.contains("FAILED before a set was recorded"), "{log}");
}
