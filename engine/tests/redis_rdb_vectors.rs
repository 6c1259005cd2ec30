//! The RDB parser and decoders against redis/librdb's test vectors (RDB 2–12, with
//! librdb's expected contents), vendored in `tests/vectors/rdb-librdb/` (MIT), and a
//! dump.rdb of Valkey 9.1 (`data/`, RDB 80).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use coffer_engine::ErrorKind;
use coffer_engine::redis::rdb::{self, Rdb, Value};
use serde_json::Value as Json;

fn vectors_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/rdb-librdb");
    assert!(
        dir.join("PAIRS.tsv").is_file(),
        "the librdb test vectors are missing: expected {} (tests/vectors/rdb-librdb in the repository)",
        dir.display()
    );
    dir
}

fn read(name: &str) -> Vec<u8> {
    let path = vectors_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

const NEGATIVE: [&str; 2] = ["invalid_chksum_v8.rdb", "future_v19.rdb"];

fn rdb_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rdb"))
        .collect();
    names.sort();
    names
}

fn parse(name: &str) -> Rdb {
    let data = read(name);
    let whole = rdb::parse_bytes(&data, 1 << 20).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    // The incremental parser gives the same answer however the input is cut.
    for piece in [1, 7, 64] {
        let cut =
            rdb::parse_bytes(&data, piece).unwrap_or_else(|e| panic!("{name}/{piece}: {e:?}"));
        assert_eq!(cut, whole, "{name}: fed {piece} bytes at a time");
    }
    // Tiny value chunks too.
    let mut p = rdb::RdbParser::with_chunk_size(3);
    p.feed(&data);
    let mut raw_total = 0;
    while let Some(ev) = p.next_event().unwrap() {
        if let rdb::Event::ValueChunk(c) = ev {
            assert!(c.len() <= 19 && !c.is_empty(), "chunk of {} bytes", c.len());
            raw_total += c.len();
        }
    }
    assert!(p.is_done(), "{name}");
    assert_eq!(
        raw_total,
        whole.keys.iter().map(|k| k.raw.len()).sum::<usize>(),
        "{name}"
    );
    whole
}

#[test]
fn every_rdb_file_parses_and_every_key_decodes() {
    let mut parsed = 0;
    for name in rdb_files() {
        if NEGATIVE.contains(&name.as_str()) {
            continue;
        }
        let rdb = parse(&name);
        for k in &rdb.keys {
            k.value(rdb.version)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
        parsed += 1;
    }
    assert!(parsed >= 40, "only {parsed} RDB files found");
}

#[test]
fn bad_checksum_is_rejected() {
    let err = rdb::parse_bytes(&read("invalid_chksum_v8.rdb"), 4096).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
}

#[test]
fn future_version_is_unsupported() {
    let err = rdb::parse_bytes(&read("future_v19.rdb"), 4096).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    // The file's magic is REDIS0099, whatever its name says.
    assert!(
        err.to_string()
            .contains("RDB version 99 is newer than this build supports"),
        "{err}"
    );
}

#[test]
fn truncation_and_damage_give_clear_errors() {
    let data = read("misc_with_stream.rdb");
    for cut in [0, 5, 9, 100, data.len() / 2, data.len() - 9, data.len() - 1] {
        let err = rdb::parse_bytes(&data[..cut], 64).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "cut {cut}: {err}");
    }
    let mut extra = data.clone();
    extra.push(0);
    assert!(rdb::parse_bytes(&extra, 64).is_err());
    // Flipping any byte is caught (mostly by the CRC), and never panics.
    for i in (9..data.len() - 8).step_by(13) {
        let mut bad = data.clone();
        bad[i] ^= 0x5a;
        assert!(rdb::parse_bytes(&bad, 512).is_err(), "byte {i} flipped");
    }
}

/// librdb's expected-output files are JSON object members without the braces, or an
/// array of objects (one per database).
fn expected(name: &str) -> Vec<BTreeMap<String, Json>> {
    let text = String::from_utf8(read(name)).unwrap();
    let trimmed = text.trim();
    let json: Json = if trimmed.starts_with('[') {
        serde_json::from_str(trimmed)
    } else {
        serde_json::from_str(&format!("{{{trimmed}}}"))
    }
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    match json {
        Json::Array(dbs) => dbs
            .into_iter()
            .map(|d| match d {
                Json::Object(m) => m.into_iter().collect(),
                _ => panic!("{name}: not an object"),
            })
            .collect(),
        Json::Object(m) => vec![m.into_iter().collect()],
        _ => panic!("{name}: unexpected JSON"),
    }
}

fn s(j: &Json) -> Vec<u8> {
    j.as_str()
        .unwrap_or_else(|| panic!("not a string: {j}"))
        .as_bytes()
        .to_vec()
}

fn score(j: &Json) -> f64 {
    j.as_str().unwrap().parse().unwrap()
}

fn check_value(ctx: &str, got: &Value, want: &Json) {
    match (got, want) {
        (Value::String(v), Json::String(w)) => assert_eq!(v, w.as_bytes(), "{ctx}"),
        (Value::List(v), Json::Array(w)) => {
            assert_eq!(v, &w.iter().map(s).collect::<Vec<_>>(), "{ctx}")
        }
        (Value::Set(v), Json::Array(w)) => {
            assert_eq!(v, &w.iter().map(s).collect::<BTreeSet<_>>(), "{ctx}");
            assert_eq!(v.len(), w.len(), "{ctx}: duplicates expected?");
        }
        (Value::Hash(v), Json::Object(w)) => {
            let got: BTreeMap<Vec<u8>, Vec<u8>> = v
                .iter()
                .map(|f| (f.field.clone(), f.value.clone()))
                .collect();
            assert_eq!(got.len(), v.len(), "{ctx}: duplicate fields");
            let want: BTreeMap<Vec<u8>, Vec<u8>> = w
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), s(v)))
                .collect();
            assert_eq!(got, want, "{ctx}");
        }
        (Value::ZSet(v), Json::Object(w)) => {
            assert_eq!(v.len(), w.len(), "{ctx}");
            for (m, sc) in v {
                let key = String::from_utf8(m.clone()).unwrap();
                let want = score(w.get(&key).unwrap_or_else(|| panic!("{ctx}: member {key}")));
                assert_eq!(*sc, want, "{ctx}: score of {key}");
            }
        }
        (Value::Stream(st), Json::Object(w)) => check_stream(ctx, st, w),
        (Value::Module { name, raw, .. }, Json::String(w)) => {
            let type_name = name.split('/').next().unwrap();
            let text = format!(
                "<Content of Module '{type_name}'. Occupies a serialized size of {} bytes>",
                raw.len()
            );
            assert_eq!(&text, w, "{ctx}");
        }
        (got, want) => panic!("{ctx}: decoded {got:?}, expected {want}"),
    }
}

fn id(j: &Json) -> String {
    j.as_str().unwrap().to_string()
}

fn check_stream(ctx: &str, st: &rdb::Stream, w: &serde_json::Map<String, Json>) {
    let entries = w["entries"].as_array().unwrap();
    assert_eq!(st.entries.len(), entries.len(), "{ctx}");
    for (e, want) in st.entries.iter().zip(entries) {
        assert_eq!(e.id.to_string(), id(&want["id"]), "{ctx}");
        let items: Vec<(Vec<u8>, Vec<u8>)> = want["items"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), s(v)))
            .collect();
        let mut got = e.fields.clone();
        got.sort();
        let mut items = items;
        items.sort();
        assert_eq!(got, items, "{ctx}: entry {}", e.id);
    }
    let Some(groups) = w.get("groups") else {
        return;
    };
    assert_eq!(st.length, w["length"].as_u64().unwrap(), "{ctx}");
    assert_eq!(st.entries_added, w["entriesAdded"].as_u64(), "{ctx}");
    assert_eq!(st.first_id.unwrap().to_string(), id(&w["firstID"]), "{ctx}");
    assert_eq!(st.last_id.to_string(), id(&w["lastID"]), "{ctx}");
    assert_eq!(
        st.max_deleted_id.unwrap().to_string(),
        id(&w["maxDelEntryID"]),
        "{ctx}"
    );
    let groups = groups.as_array().unwrap();
    assert_eq!(st.groups.len(), groups.len(), "{ctx}");
    for (g, want) in st.groups.iter().zip(groups) {
        assert_eq!(g.name, s(&want["name"]), "{ctx}");
        assert_eq!(g.last_id.to_string(), id(&want["lastid"]), "{ctx}");
        assert_eq!(g.entries_read, want["entriesRead"].as_u64(), "{ctx}");
        let pending = want["pending"].as_array().unwrap();
        assert_eq!(g.pel.len(), pending.len(), "{ctx}");
        for (p, wp) in g.pel.iter().zip(pending) {
            assert_eq!(p.id.to_string(), id(&wp["id"]), "{ctx}");
            assert_eq!(p.delivery_time_ms, wp["sent"].as_i64().unwrap(), "{ctx}");
            assert_eq!(p.delivery_count, wp["count"].as_u64().unwrap(), "{ctx}");
        }
        let consumers = want["consumers"].as_array().unwrap();
        assert_eq!(g.consumers.len(), consumers.len(), "{ctx}");
        for (c, wc) in g.consumers.iter().zip(consumers) {
            assert_eq!(c.name, s(&wc["name"]), "{ctx}");
            assert_eq!(c.seen_time_ms, wc["seenTime"].as_i64().unwrap(), "{ctx}");
            assert_eq!(c.active_time_ms, wc["activeTime"].as_i64(), "{ctx}");
            let want_pending: Vec<String> = wc
                .get("pending")
                .and_then(Json::as_array)
                .map(|a| a.iter().map(|p| id(&p["id"])).collect())
                .unwrap_or_default();
            let got: Vec<String> = c.pending.iter().map(ToString::to_string).collect();
            assert_eq!(got, want_pending, "{ctx}");
        }
    }
}

fn check_pair(rdb_name: &str, json_name: &str) {
    let rdb = parse(rdb_name);
    let dbs = expected(json_name);
    let mut db_ids: Vec<u64> = Vec::new();
    for k in &rdb.keys {
        if !db_ids.contains(&k.header.db) {
            db_ids.push(k.header.db);
        }
    }
    if dbs.len() > 1 {
        assert_eq!(db_ids.len(), dbs.len(), "{rdb_name}: databases");
    }
    let mut checked = 0;
    for (i, want) in dbs.iter().enumerate() {
        let ctx = format!("{rdb_name} vs {json_name}");
        let keys: Vec<_> = rdb
            .keys
            .iter()
            .filter(|k| dbs.len() == 1 || Some(&k.header.db) == db_ids.get(i))
            .collect();
        let plain: BTreeMap<&String, &Json> =
            want.iter().filter(|(k, _)| !k.starts_with("__")).collect();
        assert_eq!(keys.len(), plain.len(), "{ctx}: key count");
        for k in keys {
            let name = String::from_utf8(k.header.key.clone()).unwrap();
            let w = plain
                .get(&name)
                .unwrap_or_else(|| panic!("{ctx}: unexpected key {name}"));
            let v = k.value(rdb.version).unwrap();
            check_value(&format!("{ctx}: key {name}"), &v, w);
            checked += 1;
        }
        if let Some(Json::Object(aux)) = want.get("__aux__") {
            for (key, value) in aux {
                assert_eq!(rdb.aux(key), Some(s(value).as_slice()), "{ctx}: aux {key}");
            }
        }
        if let Some(Json::Object(funcs)) = want.get("__func__") {
            let want: BTreeSet<Vec<u8>> = funcs.values().map(s).collect();
            let got: BTreeSet<Vec<u8>> = rdb.functions.iter().cloned().collect();
            assert_eq!(got, want, "{ctx}: functions");
            checked += 1;
        }
        if let Some(size) = want.get("__dbsize__") {
            let (_, n, e) = rdb.resize[0];
            assert_eq!(n, size["size"].as_u64().unwrap(), "{ctx}");
            assert_eq!(e, size["expires"].as_u64().unwrap(), "{ctx}");
        }
        if let Some(slot) = want.get("__slotinfo__") {
            let (id, n, e) = rdb.slots[0];
            assert_eq!(id, slot["slotId"].as_u64().unwrap(), "{ctx}");
            assert_eq!(n, slot["slotSize"].as_u64().unwrap(), "{ctx}");
            assert_eq!(e, slot["slotSExpiresSize"].as_u64().unwrap(), "{ctx}");
        }
    }
    assert!(checked > 0, "{rdb_name}: nothing compared");
}

#[test]
fn every_pair_matches_librdb() {
    let pairs = String::from_utf8(read("PAIRS.tsv")).unwrap();
    let mut n = 0;
    let mut failures = Vec::new();
    for line in pairs.lines().filter(|l| !l.trim().is_empty()) {
        let (rdb_name, json_name) = line.split_once('\t').expect("two columns");
        let r = std::panic::catch_unwind(|| check_pair(rdb_name, json_name.trim()));
        if let Err(e) = r {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{rdb_name}: {msg}"));
        }
        n += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {n} pairs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(n >= 25, "only {n} pairs");
}

#[test]
fn hash_field_ttls_are_absolute_times_after_the_rdb_was_written() {
    // Both files use the 7.4 release-candidate types 22 and 23 (not 24 and 25), and
    // their TTLs sit just below 2^46 ms: far-future absolute times.
    for name in ["hash_with_expire_v12.rdb", "hash_lp_with_hexpire_v12.rdb"] {
        let rdb = parse(name);
        let ctime: i64 = std::str::from_utf8(rdb.aux("ctime").unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert!([22, 23].contains(&rdb.keys[0].header.type_byte));
        let Value::Hash(fields) = rdb.keys[0].value(rdb.version).unwrap() else {
            panic!("{name}: not a hash");
        };
        let ttls: Vec<i64> = fields.iter().filter_map(|f| f.expire_ms).collect();
        assert!(!ttls.is_empty(), "{name}: no field TTLs");
        for t in ttls {
            assert!(t > ctime * 1000 && t < 1 << 48, "{name}: {t}");
        }
    }
}

/// A dump.rdb Valkey 9.1 wrote (`VALKEY080`), of every type: its own hash with field TTLs
/// (type 22) among them.
#[test]
fn valkey_9_rdb_parses_and_every_key_decodes() {
    let data = include_bytes!("data/valkey-9.1-all-types.rdb");
    let rdb = rdb::parse_bytes(data, 1 << 20).unwrap();
    for piece in [1, 7] {
        assert_eq!(rdb::parse_bytes(data, piece).unwrap(), rdb);
    }
    assert_eq!(rdb.version, 80);
    assert_eq!(rdb.aux("valkey-ver"), Some(&b"9.1.2"[..]));
    let mut keys: BTreeMap<String, (u8, Value)> = BTreeMap::new();
    for k in &rdb.keys {
        let name = String::from_utf8(k.header.key.clone()).unwrap();
        keys.insert(name, (k.header.type_byte, k.value(rdb.version).unwrap()));
    }
    let names: Vec<&str> = keys.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["e", "h", "hx", "l", "n", "s", "si", "sl", "st", "z"]
    );
    let (t, Value::Hash(hx)) = &keys["hx"] else {
        panic!("hx")
    };
    assert_eq!(*t, rdb::types::VALKEY_HASH_2);
    let ttls: BTreeMap<&[u8], Option<i64>> = hx
        .iter()
        .map(|f| (f.field.as_slice(), f.expire_ms))
        .collect();
    assert_eq!(
        ttls,
        BTreeMap::from([(&b"a"[..], Some(4_102_444_800_123)), (&b"b"[..], None)])
    );
    assert_eq!(keys["sl"].0, rdb::types::SET_LISTPACK);
    let (_, Value::Stream(st)) = &keys["st"] else {
        panic!("st")
    };
    assert_eq!(st.entries.len(), 2);
    assert_eq!(st.groups[0].consumers[0].pending.len(), 1);
    let e = rdb.keys.iter().find(|k| k.header.key == b"e").unwrap();
    assert!(e.header.meta.expire_ms.is_some());
}

#[test]
fn key_metadata_functions_and_module_aux() {
    let lfu = parse("mem_policy_lfu.rdb");
    assert!(!lfu.keys.is_empty() && lfu.keys.iter().all(|k| k.header.meta.freq.is_some()));
    let lru = parse("mem_policy_lru.rdb");
    assert!(!lru.keys.is_empty() && lru.keys.iter().all(|k| k.header.meta.idle_s.is_some()));
    let expired = parse("set_expired_v11.rdb");
    assert!(
        expired
            .keys
            .iter()
            .all(|k| k.header.meta.expire_ms.is_some())
    );
    let f = parse("function.rdb");
    assert_eq!(f.functions.len(), 1);
    assert!(f.functions[0].starts_with(b"#!lua name=mylib"));
    let m = parse("module_aux.rdb");
    let whens: Vec<u64> = m.module_aux.iter().map(|(_, when, _)| *when).collect();
    assert_eq!(whens, [1, 2]);
    assert_eq!(rdb::module_name(m.module_aux[0].0), "test__rdb/1");
    // Redis Enterprise's RAM-LRU opcode (107) before each key is skipped.
    let ent = parse("redis_ent_opcode_ram_lru.rdb");
    let names: Vec<&[u8]> = ent.keys.iter().map(|k| k.header.key.as_slice()).collect();
    assert_eq!(names, [&b"a"[..], b"e", b"c"]);
    // Old "lua" AUX fields (script cache of pre-7.0 replication RDBs) are plain AUX.
    let script = parse("script.rdb");
    assert!(script.aux("lua").unwrap().starts_with(b"return"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// Damaged RDBs (bytes changed, then cut anywhere, fed in random pieces) give an
    /// error or a result, never a panic or a hang.
    #[test]
    fn damaged_rdbs_never_panic(
        file in proptest::sample::select(vec![
            "misc_with_stream.rdb", "stream_v11.rdb", "module_aux.rdb", "function2.rdb",
            "hash_zm_v2.rdb", "zset_zl_v6.rdb", "quicklist2_v11.rdb", "plain_zset_v6.rdb",
        ]),
        edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 1..6),
        cut in proptest::num::usize::ANY,
        piece in 1usize..300,
    ) {
        let mut data = read(file);
        for (at, b) in edits {
            let i = 9 + at % (data.len() - 9);
            data[i] = b;
        }
        data.truncate(cut % (data.len() + 1));
        let _ = rdb::parse_bytes(&data, piece);
    }

    #[test]
    fn random_bytes_after_a_header_never_panic(
        body in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        piece in 1usize..50,
    ) {
        let mut data = b"REDIS0011".to_vec();
        data.extend_from_slice(&body);
        let _ = rdb::parse_bytes(&data, piece);
    }
}

/// A 24 MiB string passes through in bounded chunks: the parser never holds it.
#[test]
fn big_values_stream_in_bounded_memory() {
    let size = 24usize << 20;
    let mut rdb = b"REDIS0011\xfe\x00\xfb\x01\x00".to_vec();
    rdb.push(0); // type string
    rdb.extend_from_slice(b"\x03big");
    rdb.push(0x80);
    rdb.extend_from_slice(&[
        (size >> 24) as u8,
        (size >> 16) as u8,
        (size >> 8) as u8,
        size as u8,
    ]);
    let body_at = rdb.len();
    rdb.extend((0..size).map(|i| (i % 251) as u8));
    rdb.push(0xff);
    let crc = coffer_engine::redis::crc64::crc64(&rdb);
    rdb.extend_from_slice(&crc.to_le_bytes());

    let mut p = rdb::RdbParser::with_chunk_size(64 << 10);
    let mut total = 0usize;
    let mut hasher = blake3::Hasher::new();
    let mut max_buffered = 0;
    for piece in rdb.chunks(100_000) {
        p.feed(piece);
        max_buffered = max_buffered.max(p.buffered());
        while let Some(ev) = p.next_event().unwrap() {
            if let rdb::Event::ValueChunk(c) = ev {
                assert!(c.len() <= 64 << 10);
                total += c.len();
                hasher.update(c);
            }
        }
    }
    assert!(p.is_done());
    assert_eq!(total, rdb.len() - body_at + 5 - 9); // header + body
    assert!(
        max_buffered <= 100_000 + 64,
        "buffered {max_buffered} bytes"
    );
    let mut want = blake3::Hasher::new();
    want.update(&rdb[body_at - 5..rdb.len() - 9]);
    assert_eq!(hasher.finalize(), want.finalize());
}
