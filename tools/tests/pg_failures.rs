//! `coffer dump pg` failures against real servers: each gets a clear message, the
//! documented exit code, and no archive left behind (neither FILE nor FILE.partial).
//! Passwords never appear in what coffer prints, nor in the archive. Also: the `-t -T -n
//! -N` filters select what pg_dump selects.
//!
//! Exit codes (tools/src/exit.rs): 2 bad command line, 5 writing the output failed, 6
//! cannot connect, 7 the database refused or broke off the work.

mod common;

use common::{s, text};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use coffer_testkit::PgServer;

// ---------------------------------------------------------------------------------------
// helpers

/// A `coffer` command with no `PG*` variable of the test environment, and `HOME` set to
/// `home` (so that no real `~/.pgpass` is read).
fn coffer_cmd(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coffer"));
    for (name, _) in std::env::vars_os() {
        if name.as_encoded_bytes().starts_with(b"PG") {
            cmd.env_remove(name);
        }
    }
    cmd.env_remove("COFFER_PASSPHRASE")
        .env("HOME", home)
        .env("PGCONNECT_TIMEOUT", "10")
        .args(args)
        .stdin(Stdio::null());
    cmd
}

fn run(mut cmd: Command) -> Output {
    cmd.output().expect("run coffer")
}

/// `-h 127.0.0.1 -p PORT -U user -d db`.
fn conn(port: u16, user: &str, db: &str) -> Vec<String> {
    vec![
        "-h".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
        "-U".into(),
        user.into(),
        "-d".into(),
        db.into(),
    ]
}

/// `dump pg -f FILE` plus `extra`.
fn dump_args(file: &Path, extra: &[String]) -> Vec<String> {
    let mut v = vec!["dump".to_string(), "pg".into(), "-f".into(), s(file).into()];
    v.extend(extra.iter().cloned());
    v
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn partial_of(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

/// What is left of a failed dump at FILE: FILE and FILE.partial should both be absent.
fn leftovers(file: &Path) -> Vec<String> {
    [file.to_path_buf(), partial_of(file)]
        .into_iter()
        .filter(|p| p.exists())
        .map(|p| format!("a failed dump left {} behind", p.display()))
        .collect()
}

/// Asserts the exit code, that `needles` (any of each group) appear in the output, and
/// that no archive is left (neither FILE nor FILE.partial); reports every problem at once.
fn assert_failure(o: &Output, code: i32, needles: &[&[&str]], file: &Path, context: &str) {
    let problems = failure_problems(o, code, needles, file, context);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// What [`assert_failure`] would complain about, as one message (empty when all is well).
fn failure_problems(
    o: &Output,
    code: i32,
    needles: &[&[&str]],
    file: &Path,
    context: &str,
) -> Vec<String> {
    let out = text(o);
    eprintln!("{context}: exit {:?}: {}", o.status.code(), out.trim_end());
    let mut problems = Vec::new();
    if o.status.code() != Some(code) {
        problems.push(format!("exit {:?}, expected {code}", o.status.code()));
    }
    let lower = out.to_lowercase();
    for group in needles {
        if !group.iter().any(|n| lower.contains(&n.to_lowercase())) {
            problems.push(format!("the message should mention one of {group:?}"));
        }
    }
    if !lower.contains("coffer: ") && !lower.contains("error:") {
        problems.push("no error line".into());
    }
    problems.extend(leftovers(file));
    if problems.is_empty() {
        return problems;
    }
    vec![format!(
        "{context}:\n- {}\noutput:\n{out}",
        problems.join("\n- ")
    )]
}

fn sh(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

fn signal(pid: u32, sig: &str) {
    let o = sh(Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]));
    assert!(o.status.success(), "kill -{sig} {pid}: {}", text(&o));
}

/// Polls `f` every 50 ms until it returns `Some`, panicking after `timeout`.
fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A program running in the background (coffer, psql): our own child, killed should the
/// test end before it does (SIGKILL also ends a process stopped with SIGSTOP).
struct Spawned {
    child: Option<Child>,
    what: String,
}

impl Spawned {
    fn start(mut cmd: Command, what: &str) -> Spawned {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
        Spawned {
            child: Some(child),
            what: what.into(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn exited(&mut self) -> bool {
        let child = self.child.as_mut().expect("running");
        child.try_wait().expect("try_wait").is_some()
    }

    /// Waits for the end, at most `timeout`; past it, kills the program and panics.
    fn finish(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        while !self.exited() {
            if Instant::now() >= deadline {
                let mut child = self.child.take().expect("running");
                let _ = child.kill();
                let o = child.wait_with_output().expect("collect output");
                panic!(
                    "{} did not finish within {timeout:?}:\n{}",
                    self.what,
                    text(&o)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let child = self.child.take().expect("running");
        child.wait_with_output().expect("collect output")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until coffer runs a COPY in `db`; returns that backend's pid. Panics with
/// coffer's output should it end first.
fn wait_for_copy(pg: &PgServer, db: &str, coffer: &mut Spawned) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(&pid) = coffer_copy_pids(pg, db).first() {
            return pid;
        }
        if coffer.exited() {
            let o = coffer.child.take().unwrap().wait_with_output().unwrap();
            panic!("coffer ended before its COPY was seen:\n{}", text(&o));
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for coffer's COPY"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn server() -> PgServer {
    PgServer::builder()
        .setting("max_connections", "40")
        .start()
        .expect("start postgres")
}

/// Adds `lines` at the top of pg_hba.conf (first match wins) and reloads the server.
/// The file belongs to the server user; writing to the existing file as root keeps its
/// owner and mode.
fn prepend_hba(pg: &PgServer, lines: &str) {
    let path = pg.data_dir().join("pg_hba.conf");
    let old = std::fs::read_to_string(&path).expect("read pg_hba.conf");
    std::fs::write(&path, format!("{lines}\n{old}")).expect("write pg_hba.conf");
    pg.psql("postgres", "SELECT pg_reload_conf()").unwrap();
    let errors = pg
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL",
        )
        .unwrap();
    assert_eq!(errors, "0", "pg_hba.conf has errors");
}

/// A table of `rows` rows of incompressible-ish text (md5 of random numbers): about 60
/// raw bytes a row.
fn fill_big(pg: &PgServer, db: &str, table: &str, rows: u64) {
    pg.psql(
        db,
        &format!(
            "CREATE TABLE {table} (id bigint, label text, noise text);
             INSERT INTO {table} SELECT g, 'row ' || g, md5(random()::text)
               FROM generate_series(1, {rows}) g;
             ANALYZE {table};"
        ),
    )
    .unwrap();
}

/// Backends of coffer (application_name `coffer`) that are running a COPY right now.
fn coffer_copy_pids(pg: &PgServer, db: &str) -> Vec<u32> {
    pg.psql(
        "postgres",
        &format!(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'coffer' AND datname = '{db}'
               AND state = 'active' AND query LIKE 'COPY%' ORDER BY pid"
        ),
    )
    .unwrap_or_default()
    .lines()
    .filter_map(|l| l.trim().parse().ok())
    .collect()
}

// ---------------------------------------------------------------------------------------
// connecting

#[test]
fn unreachable_server_exits_6_naming_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.coffer");
    let port = coffer_testkit::free_port().unwrap();
    let args = dump_args(&file, &conn(port, "postgres", "postgres"));
    let started = Instant::now();
    let o = run(coffer_cmd(dir.path(), &strs(&args)));
    assert_failure(
        &o,
        6,
        &[
            &[&format!("postgres@127.0.0.1:{port}/postgres")],
            &["cannot connect"],
        ],
        &file,
        "unreachable",
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a refused connection should fail at once, took {:?}",
        started.elapsed()
    );
}

#[test]
fn no_such_database_exits_6() {
    let pg = server();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.coffer");
    let args = dump_args(&file, &conn(pg.port(), pg.user(), "no_such_db"));
    let o = run(coffer_cmd(dir.path(), &strs(&args)));
    assert_failure(
        &o,
        6,
        &[
            &["no such database"],
            &[&format!("postgres@127.0.0.1:{}/no_such_db", pg.port())],
        ],
        &file,
        "no such database",
    );
}

const PASSWORD: &str = "S3cret-Pw-7f3a9c";
const WRONG: &str = "Wr0ng-Pw-b4e1d2";

/// A server where role `alice` (owner of database `pwdb`) must give her password over
/// TCP (scram-sha-256), everyone else being trusted.
fn password_server() -> PgServer {
    let pg = server();
    pg.psql(
        "postgres",
        &format!(
            "SET password_encryption = 'scram-sha-256';
             CREATE ROLE alice LOGIN PASSWORD '{PASSWORD}';
             CREATE DATABASE pwdb OWNER alice;"
        ),
    )
    .unwrap();
    pg.psql(
        "pwdb",
        "CREATE TABLE public.t (id int PRIMARY KEY, v text);
         INSERT INTO public.t SELECT g, 'v' || g FROM generate_series(1, 100) g;
         ALTER TABLE public.t OWNER TO alice;",
    )
    .unwrap();
    prepend_hba(&pg, "host all alice 127.0.0.1/32 scram-sha-256");
    // the reload is asynchronous: wait until alice really needs a password
    poll("pg_hba.conf reload", Duration::from_secs(10), || {
        let o = sh(pg
            .client("psql")
            .args(["-X", "-w", "-U", "alice", "-d", "pwdb", "-c", "SELECT 1"]));
        (!o.status.success()).then_some(())
    });

    pg
}

/// Asserts that neither password appears in `o`'s output.
fn no_secret(o: &Output, context: &str) {
    let out = text(o);
    for secret in [PASSWORD, WRONG] {
        assert!(
            !out.contains(secret),
            "{context}: a password appears in the output:\n{out}"
        );
    }
}

#[test]
fn passwords_wrong_right_pgpassfile_and_never_printed() {
    let pg = password_server();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let c = conn(pg.port(), "alice", "pwdb");
    let target = format!("alice@127.0.0.1:{}/pwdb", pg.port());

    // wrong password
    let file = dir.path().join("wrong.coffer");
    let mut cmd = coffer_cmd(home, &strs(&dump_args(&file, &c)));
    cmd.env("PGPASSWORD", WRONG);
    let o = run(cmd);
    assert_failure(
        &o,
        6,
        &[&["authentication failed"], &[&target]],
        &file,
        "wrong password",
    );
    no_secret(&o, "wrong password");

    // no password at all (the message is checked in missing_password_says_so)
    let file = dir.path().join("none.coffer");
    let o = run(coffer_cmd(home, &strs(&dump_args(&file, &c))));
    assert_failure(&o, 6, &[&[&target]], &file, "no password");

    // the right password through PGPASSWORD
    let file = dir.path().join("right.coffer");
    let mut cmd = coffer_cmd(home, &strs(&dump_args(&file, &c)));
    cmd.env("PGPASSWORD", PASSWORD);
    let o = run(cmd);
    assert_eq!(o.status.code(), Some(0), "PGPASSWORD: {}", text(&o));
    no_secret(&o, "PGPASSWORD");
    assert!(!partial_of(&file).exists());
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        !bytes
            .windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes()),
        "the password is in the archive"
    );
    for args in [
        vec!["list", "--json", s(&file)],
        vec!["restore", "pg", s(&file), "-f", "-"],
    ] {
        let o = run(coffer_cmd(home, &args));
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        no_secret(&o, &format!("{args:?}"));
    }
    let sql = run(coffer_cmd(home, &["restore", "pg", s(&file), "-f", "-"]));
    assert!(
        String::from_utf8_lossy(&sql.stdout).contains("CREATE TABLE public.t"),
        "the dump with a password holds the table"
    );

    // the right password through a PGPASSFILE of mode 0600
    use std::os::unix::fs::PermissionsExt;
    let passfile = dir.path().join("pgpass");
    std::fs::write(
        &passfile,
        format!(
            "# host:port:db:user:password\n127.0.0.1:{}:pwdb:alice:{PASSWORD}\n",
            pg.port()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file = dir.path().join("passfile.coffer");
    let mut cmd = coffer_cmd(home, &strs(&dump_args(&file, &c)));
    cmd.env("PGPASSFILE", &passfile);
    let o = run(cmd);
    assert_eq!(o.status.code(), Some(0), "PGPASSFILE 0600: {}", text(&o));
    no_secret(&o, "PGPASSFILE 0600");
    assert!(file.exists());

    // ~/.pgpass (HOME) works the same way
    std::fs::copy(&passfile, home.join(".pgpass")).unwrap();
    std::fs::set_permissions(home.join(".pgpass"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let file = dir.path().join("homepass.coffer");
    let o = run(coffer_cmd(home, &strs(&dump_args(&file, &c))));
    assert_eq!(o.status.code(), Some(0), "~/.pgpass 0600: {}", text(&o));
    std::fs::remove_file(home.join(".pgpass")).unwrap();

    // a PGPASSFILE readable by others is ignored, as libpq does: no password, so 6 (the
    // message is checked in missing_password_says_so)
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file = dir.path().join("open-passfile.coffer");
    let mut cmd = coffer_cmd(home, &strs(&dump_args(&file, &c)));
    cmd.env("PGPASSFILE", &passfile);
    let o = run(cmd);
    assert_failure(&o, 6, &[&[&target]], &file, "PGPASSFILE 0644");
    no_secret(&o, "PGPASSFILE 0644");

    // a password inside a URL given as -d is not printed when it is wrong
    let file = dir.path().join("url.coffer");
    let url = format!("postgres://alice:{WRONG}@127.0.0.1:{}/pwdb", pg.port());
    let o = run(coffer_cmd(
        home,
        &["dump", "pg", "-f", s(&file), "-d", &url],
    ));
    assert_failure(
        &o,
        6,
        &[&["authentication failed"]],
        &file,
        "wrong password in a URL",
    );
    no_secret(&o, "wrong password in a URL");
}

/// When the server asks for a password and none is given (no PGPASSWORD, no usable
/// password file), the message says so, as libpq's "fe_sendauth: no password supplied".
#[test]
fn missing_password_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let pg = password_server();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let c = conn(pg.port(), "alice", "pwdb");
    let target = format!("alice@127.0.0.1:{}/pwdb", pg.port());

    let file = dir.path().join("none.coffer");
    let o = run(coffer_cmd(home, &strs(&dump_args(&file, &c))));
    assert_failure(&o, 6, &[&["password"], &[&target]], &file, "no password");

    // a password file readable by others is ignored: the same message
    let passfile = dir.path().join("pgpass");
    std::fs::write(
        &passfile,
        format!("127.0.0.1:{}:pwdb:alice:{PASSWORD}\n", pg.port()),
    )
    .unwrap();
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file = dir.path().join("open-passfile.coffer");
    let mut cmd = coffer_cmd(home, &strs(&dump_args(&file, &c)));
    cmd.env("PGPASSFILE", &passfile);
    let o = run(cmd);
    assert_failure(&o, 6, &[&["password"]], &file, "PGPASSFILE 0644");
    no_secret(&o, "PGPASSFILE 0644");
}

// ---------------------------------------------------------------------------------------
// the database refuses or breaks off the work

#[test]
fn permission_denied_on_a_table_exits_7_naming_it() {
    let pg = server();
    pg.create_database("perm").unwrap();
    pg.psql(
        "perm",
        "CREATE ROLE bob LOGIN;
         CREATE TABLE public.open_t (id int);
         INSERT INTO public.open_t VALUES (1);
         CREATE TABLE public.secret_t (id int, card text);
         INSERT INTO public.secret_t VALUES (1, '4111');
         REVOKE ALL ON public.secret_t FROM PUBLIC;
         GRANT SELECT ON public.open_t TO bob;",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("perm.coffer");
    let o = run(coffer_cmd(
        dir.path(),
        &strs(&dump_args(&file, &conn(pg.port(), "bob", "perm"))),
    ));
    assert_failure(
        &o,
        7,
        &[&["permission denied"], &["secret_t"]],
        &file,
        "permission denied",
    );
    // and the table bob may read is dumped when the other is left out
    let mut extra = conn(pg.port(), "bob", "perm");
    extra.extend(["-T".into(), "secret_t".into()]);
    let o = run(coffer_cmd(dir.path(), &strs(&dump_args(&file, &extra))));
    assert_eq!(o.status.code(), Some(0), "-T secret_t: {}", text(&o));
    // --role: bob may become a role that reads both, and the whole dump then goes through
    pg.psql(
        "perm",
        "CREATE ROLE auditor; GRANT SELECT ON ALL TABLES IN SCHEMA public TO auditor;
         GRANT auditor TO bob;",
    )
    .unwrap();
    let mut as_auditor = conn(pg.port(), "bob", "perm");
    as_auditor.extend(["--role".into(), "auditor".into()]);
    let o = run(coffer_cmd(
        dir.path(),
        &strs(&dump_args(&file, &as_auditor)),
    ));
    assert_eq!(o.status.code(), Some(0), "--role auditor: {}", text(&o));
    let o = run(coffer_cmd(
        dir.path(),
        &strs(&[
            "list".to_string(),
            "--json".into(),
            file.display().to_string(),
        ]),
    ));
    assert!(text(&o).contains("secret_t"), "{}", text(&o));
}

/// DDL on a table queued while the dump runs: the leader's ACCESS SHARE makes the DDL
/// wait, and the worker's NOWAIT re-lock of that table then fails. Made deterministic by
/// freezing coffer (SIGSTOP) while its COPY of the big table is under way, queueing the
/// DDL, and only then letting coffer go on.
#[test]
fn ddl_during_the_dump_exits_7_and_leaves_no_archive() {
    let pg = server();
    pg.create_database("ddl").unwrap();
    fill_big(&pg, "ddl", "public.a_big", 1_000_000);
    pg.psql(
        "ddl",
        "CREATE TABLE public.z_alter (id int); INSERT INTO public.z_alter VALUES (1);
         CREATE TABLE public.z_drop (id int); INSERT INTO public.z_drop VALUES (2);",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();

    let rounds: [(&str, &str); 2] = [
        (
            "public.z_alter",
            "ALTER TABLE public.z_alter ADD COLUMN extra int",
        ),
        ("public.z_drop", "DROP TABLE public.z_drop"),
    ];
    for (round, (table, ddl)) in rounds.iter().enumerate() {
        let context = format!("round {round} ({ddl})");
        let file = dir.path().join(format!("ddl{round}.coffer"));
        let mut extra = conn(pg.port(), pg.user(), "ddl");
        // the big table in page ranges so that both workers are busy with it first
        extra.extend(["-j".into(), "2".into(), "--split-mib".into(), "8".into()]);
        let mut coffer = Spawned::start(
            coffer_cmd(dir.path(), &strs(&dump_args(&file, &extra))),
            "coffer",
        );
        let coffer_pid = coffer.pid();
        // a COPY of the big table is running: freeze coffer
        wait_for_copy(&pg, "ddl", &mut coffer);
        signal(coffer_pid, "STOP");
        // only the leader holds a lock on the table (no worker has reached it)
        let holders = pg
            .psql(
                "ddl",
                &format!(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                     WHERE a.application_name = 'coffer' AND l.relation = '{table}'::regclass"
                ),
            )
            .unwrap();
        if holders != "1" {
            signal(coffer_pid, "CONT");
            let o = coffer.finish(Duration::from_secs(60));
            panic!(
                "{context}: expected only the leader to hold a lock on {table}, found {holders}: {}",
                text(&o)
            );
        }
        // queue the DDL behind the leader's lock
        let mut psql = pg.client("psql");
        psql.args([
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            "ddl",
            "-c",
            "SET lock_timeout = '60s'",
            "-c",
            ddl,
        ]);
        let ddl_run = Spawned::start(psql, "the DDL");
        poll("the DDL to queue", Duration::from_secs(10), || {
            let waiting = pg
                .psql(
                    "ddl",
                    &format!(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = '{table}'::regclass"
                    ),
                )
                .unwrap();
            (waiting == "1").then_some(())
        });
        signal(coffer_pid, "CONT");
        let o = coffer.finish(Duration::from_secs(120));
        problems.extend(failure_problems(
            &o,
            7,
            &[&[table.trim_start_matches("public.")], &["lock", "ddl"]],
            &file,
            &context,
        ));
        // the DDL went through once the dump let go of its locks
        let d = ddl_run.finish(Duration::from_secs(60));
        assert!(
            d.status.success(),
            "{context}: the DDL failed: {}",
            text(&d)
        );
    }
    // and with nothing in the way, the same dump succeeds
    let file = dir.path().join("ok.coffer");
    let mut extra = conn(pg.port(), pg.user(), "ddl");
    extra.extend(["-j".into(), "2".into(), "--split-mib".into(), "8".into()]);
    let o = run(coffer_cmd(dir.path(), &strs(&dump_args(&file, &extra))));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The server goes away while COPY runs: first the COPY backend is killed (a crash: the
/// postmaster ends every other backend and restarts), then the whole server is shut down
/// immediately (SIGQUIT to the postmaster, as `pg_ctl stop -m immediate`).
#[test]
fn server_killed_mid_dump_exits_with_a_clear_message_and_no_archive() {
    let pg = server();
    pg.create_database("crash").unwrap();
    fill_big(&pg, "crash", "public.big", 1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();

    for round in ["backend killed", "immediate shutdown"] {
        let file = dir
            .path()
            .join(format!("{}.coffer", round.replace(' ', "-")));
        let mut extra = conn(pg.port(), pg.user(), "crash");
        extra.extend(["-j".into(), "1".into()]);
        let mut coffer = Spawned::start(
            coffer_cmd(dir.path(), &strs(&dump_args(&file, &extra))),
            "coffer",
        );
        let coffer_pid = coffer.pid();
        let backend = wait_for_copy(&pg, "crash", &mut coffer);
        // freeze coffer so that the COPY cannot finish before the kill
        signal(coffer_pid, "STOP");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            coffer_copy_pids(&pg, "crash"),
            vec![backend],
            "{round}: the COPY should still be running"
        );
        if round == "backend killed" {
            signal(backend, "KILL");
        } else {
            signal(pg.pid(), "QUIT");
        }
        // let the server notice before coffer reads again
        std::thread::sleep(Duration::from_millis(300));
        signal(coffer_pid, "CONT");
        let o = coffer.finish(Duration::from_secs(60));
        let code = o.status.code();
        // exit.rs: 7 for "the server going away mid-way"; 6 (cannot connect) tolerated
        assert!(
            matches!(code, Some(6 | 7)),
            "{round}: expected exit 7 (or 6), got {code:?}:\n{}",
            text(&o)
        );
        problems.extend(failure_problems(
            &o,
            code.unwrap(),
            &[&[
                "closed the connection",
                "terminating connection",
                "shutdown",
                "communicating with the server",
                "crash",
                "connection reset",
            ]],
            &file,
            round,
        ));
        if round == "backend killed" {
            // the server recovers from the crash before the next round
            poll("crash recovery", Duration::from_secs(60), || {
                pg.psql("crash", "SELECT 1").ok()
            });
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------
// writing fails

/// A small tmpfs mounted for the test, unmounted on drop.
struct TinyFs(PathBuf);

impl TinyFs {
    fn mount(dir: &Path, size: &str) -> Option<TinyFs> {
        std::fs::create_dir_all(dir).ok()?;
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .ok()?;
        o.status.success().then(|| TinyFs(dir.to_path_buf()))
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn disk_full_exits_5_with_the_cause_and_no_archive() {
    let pg = server();
    pg.create_database("full").unwrap();
    // about 12 MB of rows that compress to a few MB
    fill_big(&pg, "full", "public.noise", 200_000);
    let dir = tempfile::tempdir().unwrap();
    let c = conn(pg.port(), pg.user(), "full");

    let mut problems = Vec::new();

    // a file on a 1 MiB filesystem
    let mnt = dir.path().join("tiny");
    match TinyFs::mount(&mnt, "1m") {
        Some(_fs) => {
            let file = mnt.join("full.coffer");
            let o = run(coffer_cmd(dir.path(), &strs(&dump_args(&file, &c))));
            problems.extend(failure_problems(
                &o,
                5,
                &[&["no space left on device", "os error 28"]],
                &file,
                "tmpfs full",
            ));
            let left: Vec<_> = std::fs::read_dir(&mnt)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            if !left.is_empty() {
                problems.push(format!("files left on the full filesystem: {left:?}"));
            }
        }
        None => eprintln!("mount -t tmpfs is not permitted here: only /dev/full is tested"),
    }

    // standard output on /dev/full
    let mut args = vec!["dump".to_string(), "pg".into()];
    args.extend(c.iter().cloned());
    let mut cmd = coffer_cmd(dir.path(), &strs(&args));
    cmd.stdout(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap(),
    )
    .stderr(Stdio::piped());
    let o = cmd.output().unwrap();
    // nothing is created on a pipe: the file checked for leftovers does not exist
    problems.extend(failure_problems(
        &o,
        5,
        &[&["no space left on device", "os error 28"]],
        &dir.path().join("no-such-file"),
        "stdout on /dev/full",
    ));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------
// the command line

#[test]
fn bad_usage_exits_2_without_touching_the_server_or_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.coffer");
    // nothing listens here: usage errors must be found before connecting
    let port = coffer_testkit::free_port().unwrap();
    let c = conn(port, "postgres", "postgres");

    let mut extra = c.clone();
    extra.extend(["-j".into(), "0".into()]);
    let o = run(coffer_cmd(dir.path(), &strs(&dump_args(&file, &extra))));
    assert_failure(&o, 2, &[&["-j", "jobs"]], &file, "-j 0");

    for (flag, pattern, needle) in [
        ("-t", "a.b.c", "improper qualified name"),
        ("-T", "a.b.c", "improper qualified name"),
        ("-t", "\"open", "unterminated quote"),
    ] {
        let mut extra = c.clone();
        extra.extend([flag.into(), pattern.into()]);
        let o = run(coffer_cmd(dir.path(), &strs(&dump_args(&file, &extra))));
        assert_failure(&o, 2, &[&[needle]], &file, &format!("{flag} {pattern}"));
    }
}

// ---------------------------------------------------------------------------------------
// filters

/// Names of the tables whose DDL a SQL script creates (`CREATE TABLE x.y (`), quotes
/// removed.
fn created_tables(sql: &str) -> BTreeSet<String> {
    sql.lines()
        .filter_map(|l| l.strip_prefix("CREATE TABLE "))
        .filter_map(|rest| rest.split(" (").next())
        .map(|name| name.trim().replace('"', ""))
        .collect()
}

#[test]
fn filters_select_what_pg_dump_selects() {
    let pg = server();
    pg.create_database("filt").unwrap();
    pg.psql(
        "filt",
        r#"CREATE SCHEMA s1; CREATE SCHEMA s2; CREATE SCHEMA "MixedCase"; CREATE SCHEMA mixedcase;
           CREATE TABLE public.pub (id int);
           CREATE TABLE s1.keep_a (id int);
           CREATE TABLE s1.keep_b (id int);
           CREATE TABLE s1.skip_me (id int);
           CREATE TABLE s2.other (id int);
           CREATE TABLE "MixedCase"."Upper" (id int);
           CREATE TABLE "MixedCase".lower (id int);
           CREATE TABLE mixedcase.folded (id int);
           INSERT INTO public.pub VALUES (1); INSERT INTO s1.keep_a VALUES (1);
           INSERT INTO s1.keep_b VALUES (1); INSERT INTO s1.skip_me VALUES (1);
           INSERT INTO s2.other VALUES (1); INSERT INTO "MixedCase"."Upper" VALUES (1);
           INSERT INTO "MixedCase".lower VALUES (1); INSERT INTO mixedcase.folded VALUES (1);"#,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let all = [
        "MixedCase.Upper",
        "MixedCase.lower",
        "mixedcase.folded",
        "public.pub",
        "s1.keep_a",
        "s1.keep_b",
        "s1.skip_me",
        "s2.other",
    ];
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let cases: Vec<(Vec<&str>, BTreeSet<String>)> = vec![
        (vec![], set(&all)),
        (
            vec!["-t", r#""MixedCase".*"#],
            set(&["MixedCase.Upper", "MixedCase.lower"]),
        ),
        (vec!["-t", "MixedCase.*"], set(&["mixedcase.folded"])),
        (
            vec!["-t", r#""MixedCase"."Upper""#],
            set(&["MixedCase.Upper"]),
        ),
        (vec!["-t", "pub"], set(&["public.pub"])),
        (vec!["-t", "s1.keep_?"], set(&["s1.keep_a", "s1.keep_b"])),
        (
            vec!["-n", "s1"],
            set(&["s1.keep_a", "s1.keep_b", "s1.skip_me"]),
        ),
        (
            vec!["-N", "s2"],
            set(&[
                "MixedCase.Upper",
                "MixedCase.lower",
                "mixedcase.folded",
                "public.pub",
                "s1.keep_a",
                "s1.keep_b",
                "s1.skip_me",
            ]),
        ),
        (
            vec!["-n", "s1", "-T", "s1.skip_me"],
            set(&["s1.keep_a", "s1.keep_b"]),
        ),
        (
            vec!["-t", "s*.*", "-T", "s1.skip_me"],
            set(&["s1.keep_a", "s1.keep_b", "s2.other"]),
        ),
        (
            vec!["-n", "s*", "-N", "s2", "-T", "s1.keep_b"],
            set(&["s1.keep_a", "s1.skip_me"]),
        ),
        (
            vec!["-n", r#""MixedCase""#],
            set(&["MixedCase.Upper", "MixedCase.lower"]),
        ),
    ];
    for (i, (filters, want)) in cases.iter().enumerate() {
        let context = format!("filters {filters:?}");
        let file = dir.path().join(format!("f{i}.coffer"));
        let mut extra = conn(pg.port(), pg.user(), "filt");
        extra.extend(filters.iter().map(|s| s.to_string()));
        let o = run(coffer_cmd(dir.path(), &strs(&dump_args(&file, &extra))));
        assert_eq!(o.status.code(), Some(0), "{context}: {}", text(&o));

        // the data streams
        let o = run(coffer_cmd(dir.path(), &["list", "--json", s(&file)]));
        assert_eq!(o.status.code(), Some(0), "{context}: {}", text(&o));
        let listing: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let streams: BTreeSet<String> = listing["manifest"]["streams"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["descriptor"]["kind"] == "pg.table_data")
            .map(|s| s["descriptor"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(&streams, want, "{context}: data streams");

        // the DDL
        let o = run(coffer_cmd(
            dir.path(),
            &["restore", "pg", s(&file), "-f", "-"],
        ));
        assert_eq!(o.status.code(), Some(0), "{context}: {}", text(&o));
        let ours = created_tables(&String::from_utf8_lossy(&o.stdout));
        assert_eq!(&ours, want, "{context}: CREATE TABLE statements");

        // the oracle: pg_dump with the same filters
        let out = pg
            .client("pg_dump")
            .args(["--schema-only", "-d", "filt"])
            .args(filters)
            .output()
            .unwrap();
        assert!(out.status.success(), "{context}: pg_dump: {}", text(&out));
        let theirs = created_tables(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(ours, theirs, "{context}: coffer and pg_dump disagree");
    }

    // a -t that matches nothing fails, as pg_dump does
    for filters in [vec!["-t", "nothing_here"], vec!["-n", "no_schema"]] {
        let file = dir.path().join("none.coffer");
        let mut extra = conn(pg.port(), pg.user(), "filt");
        extra.extend(filters.iter().map(|s| s.to_string()));
        let o = run(coffer_cmd(dir.path(), &strs(&dump_args(&file, &extra))));
        assert_ne!(o.status.code(), Some(0), "{filters:?}: {}", text(&o));
        assert_failure(
            &o,
            o.status.code().unwrap(),
            &[&["no matching"]],
            &file,
            &format!("{filters:?}"),
        );
    }
}
