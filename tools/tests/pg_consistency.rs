//! The snapshot invariant under concurrent writes: while pgbench's TPC-B-like transfers
//! run (each transaction adds one delta to an account, its teller and its branch, and
//! records it in pgbench_history), every `coffer dump pg -j 4` must, once loaded, satisfy
//!
//!   sum(abalance) = sum(tbalance) = sum(bbalance) = sum(delta)
//!
//! which holds in every committed state. A dump whose tables (or page ranges of one table)
//! were read at different moments breaks it. pgbench_accounts is split into page ranges
//! (`--split-mib`) so that even one table is read by several workers.

mod common;

use common::{coffer, s, text};

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use coffer_testkit::PgServer;

const SCALE: &str = "5";
const DUMPS: usize = 3;
/// Upper bound of the workload; it is stopped as soon as the dumps are done.
const WORKLOAD_SECONDS: &str = "60";

/// The background workload; killed (it is our own child) when dropped.
struct Workload(Child);

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The four sums and the history row count of database `db`.
fn invariant_sums(pg: &PgServer, db: &str) -> ([i64; 4], i64) {
    let row = pg
        .psql(
            db,
            "SELECT (SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts),
                    (SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers),
                    (SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches),
                    (SELECT coalesce(sum(delta), 0) FROM pgbench_history),
                    (SELECT count(*) FROM pgbench_history)",
        )
        .unwrap();
    let v: Vec<i64> = row.split('|').map(|x| x.parse().unwrap()).collect();
    ([v[0], v[1], v[2], v[3]], v[4])
}

#[test]
fn every_parallel_dump_under_pgbench_keeps_the_transfer_invariant() {
    let started = Instant::now();
    let pg = PgServer::builder()
        .setting("max_connections", "40")
        .start()
        .expect("start postgres");
    pg.create_database("bench").unwrap();
    let o = pg
        .client("pgbench")
        .args(["-i", "-q", "-s", SCALE, "bench"]) // pgbench's -d is --debug
        .output()
        .unwrap();
    assert!(o.status.success(), "pgbench -i: {}", text(&o));
    let initialised = started.elapsed();

    let workload = Workload(
        pg.client("pgbench")
            .args(["-n", "-c", "4", "-j", "2", "-T", WORKLOAD_SECONDS, "bench"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // the workload is committing before the first dump starts
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg
        .psql("bench", "SELECT count(*) FROM pgbench_history")
        .unwrap()
        == "0"
    {
        assert!(Instant::now() < deadline, "pgbench committed nothing");
        std::thread::sleep(Duration::from_millis(50));
    }

    // the control: the same sums read one statement (one snapshot) at a time, while the
    // workload runs, disagree; so a dump that read its tables at different moments would
    // fail the check below
    let torn = (0..20).any(|_| {
        let v: Vec<String> = [
            "SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts",
            "SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers",
            "SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches",
            "SELECT coalesce(sum(delta), 0) FROM pgbench_history",
        ]
        .iter()
        .map(|q| pg.psql("bench", q).unwrap())
        .collect();
        v.iter().any(|x| *x != v[0])
    });
    assert!(
        torn,
        "reading the tables at different moments never broke the invariant: the workload is not running"
    );

    let dir = tempfile::tempdir().unwrap();
    let port = pg.port().to_string();
    let mut archives = Vec::new();
    for i in 0..DUMPS {
        let archive = dir.path().join(format!("bench{i}.coffer"));
        let o = coffer(&[
            "dump",
            "pg",
            "-j",
            "4",
            "--split-mib",
            "8",
            "-f",
            s(&archive),
            "-h",
            pg.host(),
            "-p",
            &port,
            "-U",
            pg.user(),
            "-d",
            "bench",
        ]);
        assert_eq!(o.status.code(), Some(0), "dump {i}: {}", text(&o));
        archives.push(archive);
        // let some transactions commit between the dumps
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(workload);
    let dumped = started.elapsed();

    // pgbench_accounts really was copied in several parts
    let o = coffer(&["list", "--json", s(&archives[0])]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let listing: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let parts = listing["manifest"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["descriptor"]["name"]
                .as_str()
                .unwrap()
                .starts_with("public.pgbench_accounts (part")
        })
        .count();
    assert!(parts >= 4, "pgbench_accounts was not split: {parts} parts");

    let mut histories = Vec::new();
    for (i, archive) in archives.iter().enumerate() {
        let sql = dir.path().join(format!("bench{i}.sql"));
        let o = coffer(&["restore", "pg", s(archive), "-f", s(&sql)]);
        assert_eq!(o.status.code(), Some(0), "restore {i}: {}", text(&o));
        let db = format!("copy{i}");
        pg.create_database(&db).unwrap();
        let o = pg
            .client("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &db, "-f"])
            .arg(&sql)
            .output()
            .unwrap();
        assert!(o.status.success(), "loading dump {i}: {}", text(&o));
        let (sums, history) = invariant_sums(&pg, &db);
        eprintln!("dump {i}: sums {sums:?}, {history} history rows");
        assert!(
            sums.iter().all(|&x| x == sums[0]),
            "dump {i} breaks the invariant: sum(abalance), sum(tbalance), sum(bbalance), sum(delta) = {sums:?}"
        );
        histories.push(history);
        let _ = std::fs::remove_file(&sql);
    }
    // the workload committed during the test: each dump saw more history than the last,
    // so a dump that mixed moments would have shown
    assert!(histories[0] > 0, "the first dump saw no transaction");
    for w in histories.windows(2) {
        assert!(
            w[1] > w[0],
            "no transaction committed between two dumps: {histories:?}"
        );
    }
    eprintln!(
        "pgbench -i {:.1?}, dumps {:.1?}, total {:.1?}",
        initialised,
        dumped - initialised,
        started.elapsed()
    );
}
