//! The `coffer` binary end to end: output, exit codes, and the golden archives.

mod common;

use common::{coffer, s, text};

use std::path::{Path, PathBuf};
use std::process::Command;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden/v1")
        .join(name)
}

#[test]
fn verify_reports_an_intact_golden_archive() {
    let o = coffer(&["verify", s(&golden("plain.coffer"))]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("intact") && text(&o).contains("5 (5 complete)"),
        "{}",
        text(&o)
    );
}

#[test]
fn verify_names_the_frame_of_a_flipped_byte_in_a_golden_copy() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.coffer");
    let mut bytes = std::fs::read(golden("plain.coffer")).unwrap();
    // the first frame after the header is stream 0's STREAM_BEGIN; its successor is
    // DATA seq 1 of "public.rows": flip a byte inside that frame's payload
    let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let first_stored =
        u32::from_le_bytes(bytes[header_len + 32..header_len + 36].try_into().unwrap()) as usize;
    let second = header_len + 128 + first_stored;
    assert_eq!(bytes[second + 4], 0x02, "a DATA frame");
    bytes[second + 128 + 10] ^= 0x01;
    std::fs::write(&copy, &bytes).unwrap();
    let o = coffer(&["verify", s(&copy)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("DAMAGED (1 problem)"), "{out}");
    assert!(
        out.contains(&format!(
            "offset {second}, stream 0 (public.rows) frame seq 1: stored-bytes BLAKE3 mismatch"
        )),
        "{out}"
    );

    let o = coffer(&["verify", "--json", s(&copy)]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["problems"][0]["seq"], 1);
    assert_eq!(v["problems"][0]["offset"], second);
}

#[test]
fn keys_come_from_files_or_the_environment_and_wrong_ones_exit_4() {
    let enc = golden("encrypted-passphrase.coffer");
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "coffer golden passphrase\n").unwrap();
    let o = coffer(&["verify", "--passphrase-file", s(&pass), s(&enc)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("payloads authenticated"));

    let o = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["list", s(&enc)])
        .env("COFFER_PASSPHRASE", "not it")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        text(&o).contains("wrong passphrase or key file"),
        "{}",
        text(&o)
    );

    let o = coffer(&["list", s(&enc)]);
    assert_eq!(o.status.code(), Some(4));
    assert!(text(&o).contains("--passphrase-file"), "{}", text(&o));

    // a key-less verify scrubs, and says so
    let o = coffer(&["verify", s(&enc)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("no key given"));

    let o = coffer(&[
        "verify",
        "--key-file",
        s(&golden("golden.key")),
        s(&golden("encrypted-keyfile.coffer")),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn list_shows_streams_and_json_carries_the_manifest() {
    let o = coffer(&["list", s(&golden("plain.coffer"))]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o).contains("public.rows") && text(&o).contains("golden.bytes"),
        "{}",
        text(&o)
    );
    let o = coffer(&["list", "--json", s(&golden("plain.coffer"))]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["manifest"]["streams"].as_array().unwrap().len(), 5);
    assert_eq!(v["manifest"]["app"]["golden"], 1);
    assert_eq!(v["encrypted"], false);
}

#[test]
fn salvage_of_a_truncated_copy_writes_an_archive_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.coffer");
    let out = dir.path().join("out.coffer");
    let bytes = std::fs::read(golden("plain.coffer")).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let o = coffer(&["verify", s(&cut)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("sealed      NO"), "{}", text(&o));
    let o = coffer(&["list", s(&cut)]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).contains("coffer salvage"), "{}", text(&o));
    let o = coffer(&["salvage", s(&cut), "-o", s(&out)]);
    // every stream frame survived; only the index and trailer were cut
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("5 streams recovered, 5 complete"),
        "{}",
        text(&o)
    );
    assert_eq!(coffer(&["verify", s(&out)]).status.code(), Some(0));
    assert_eq!(
        std::fs::read(&cut).unwrap(),
        &bytes[..bytes.len() - 100],
        "input untouched"
    );

    let o = coffer(&["salvage", s(&cut), "-o", s(&cut)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = coffer(&["salvage", s(&cut), "-o", s(&out)]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "refuses to replace without --force: {}",
        text(&o)
    );
}

#[test]
fn bad_inputs_get_exit_3_and_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"PGDMP this is a pg_dump file, not ours").unwrap();
    let o = coffer(&["verify", s(&junk)]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).contains("not a coffer archive"), "{}", text(&o));
    let o = coffer(&["list", s(&dir.path().join("missing"))]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).contains("No such file"), "{}", text(&o));
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(coffer(&["verify", s(&empty)]).status.code(), Some(3));
    assert_eq!(coffer(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn help_documents_exit_codes() {
    let o = coffer(&["--help"]);
    assert!(
        text(&o).contains("Exit codes:") && text(&o).contains("4  archive encrypted"),
        "{}",
        text(&o)
    );
    let o = coffer(&["verify", "--help"]);
    assert!(text(&o).contains("Exit codes:"));
}

#[test]
fn demo_runs_every_step_ok() {
    let o = coffer(&["demo"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!text(&o).contains("FAILED"), "{}", text(&o));
}

#[test]
fn config_shows_each_value_with_its_source_and_hides_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("backup.conf");
    std::fs::write(
        &conf,
        "# the seed's file\nBACKUP_DIR=/var/backups/usdx-wexel\nRETENTION_DAYS=30\nPOSTGRES_PASSWORD=secure_password_here\nNOTIFICATION_URL=https://hooks.slack.com/services/SECRET\nSURPRISE=1\n",
    )
    .unwrap();
    let o = common::coffer_command()
        .args(["config", "--config", s(&conf), "--set", "RETENTION_DAYS=45"])
        .env("DB_HOST", "db.example.com")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(
        !out.contains("secure_password_here") && !out.contains("SECRET"),
        "secrets must not be shown: {out}"
    );
    assert!(out.contains("POSTGRES_PASSWORD=********"), "{out}");
    assert!(
        out.contains("BACKUP_DIR=/var/backups/usdx-wexel") && out.contains("backup.conf:2"),
        "{out}"
    );
    assert!(
        out.contains("RETENTION_DAYS=45") && out.contains("command line"),
        "{out}"
    );
    assert!(
        out.contains("DB_HOST=db.example.com") && out.contains("environment DB_HOST"),
        "{out}"
    );
    assert!(out.contains("unknown key SURPRISE"), "{out}");

    std::fs::write(&conf, "RETENTION_DAYS=30\nREDIS_PORT=six\n").unwrap();
    let o = coffer(&["config", "--config", s(&conf)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("backup.conf:2: REDIS_PORT: invalid value \"six\""),
        "{}",
        text(&o)
    );
}
