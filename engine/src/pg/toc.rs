//! The table of contents: every object of a dump, with its DDL, section and dependencies,
//! in the order a restore must follow (pg_dump's TOC, built by coffer from the catalogs).

use std::collections::{BTreeMap, BinaryHeap, HashMap};

use serde::{Deserialize, Serialize};

/// Where an entry runs in a restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Section {
    /// Schemas, types, functions, tables… before the data.
    PreData,
    /// Table data and sequence values.
    Data,
    /// Indexes, constraints, triggers, rules, policies… after the data.
    PostData,
    /// Privileges, after every object exists.
    Acl,
    /// Event triggers and materialized view refreshes, last of all.
    PostAcl,
}

/// An object's identity in the source catalogs: (catalog oid, object oid). Used for
/// dependencies; meaningless in another database.
pub type CatalogKey = (u32, u32);

/// One restorable item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TocEntry {
    /// Position in the TOC, from 1.
    pub id: u32,
    /// Restore section.
    pub section: Section,
    /// pg_dump-style kind: `TABLE`, `INDEX`, `FK CONSTRAINT`, `TABLE DATA`, `ACL`…
    pub kind: String,
    /// Schema, unquoted (`None` for schema-less objects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Object name as pg_dump lists it (unquoted; `table column` for column-level items).
    pub name: String,
    /// Owning role, unquoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The SQL that creates it (several statements, each ending with `;`).
    pub sql: String,
    /// `ALTER … OWNER TO …`, kept apart so restore can honour `--no-owner`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_sql: Option<String>,
    /// TOC ids this entry needs first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deps: Vec<u32>,
    /// For `TABLE DATA`: the qualified table, its column list and where its data is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<TableData>,
    /// For `LARGE OBJECT DATA`: the large object's oid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_object: Option<u32>,
    /// For `--clean`: the statement that drops the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_sql: Option<String>,
    /// The same with IF EXISTS, for `--clean --if-exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_if_exists_sql: Option<String>,
    /// The tablespace the object is created in, quoted (`None`: the database's
    /// default); the restore sets `default_tablespace` around the entry's SQL, unless
    /// `--no-tablespaces`. Absent from archives written before tablespaces were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tablespace: Option<String>,
    /// `ALTER TABLE … SET COMPRESSION …` for the columns whose TOAST compression was
    /// set, run after `sql` unless `--no-toast-compression` (a target built without
    /// lz4). Older archives hold these statements in `sql`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_sql: Option<String>,
}

/// What a `TABLE DATA` entry loads. Where its rows are in the archive, how many and their
/// checksum are known only once they are written: they are in the manifest
/// ([`super::dump::TableStats`]); each data stream's descriptor names its TOC entry too.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableData {
    /// `schema.table`, quoted for SQL.
    pub qualified: String,
    /// Column list, quoted for SQL, in COPY order.
    pub columns: Vec<String>,
    /// Table size when dumped (heap + TOAST), for largest-first scheduling.
    pub bytes: u64,
    /// For a partition under a table hash-partitioned on an enum (whose hashes come from
    /// the enum values' oids, which a restore changes): the partition tree's root, quoted;
    /// the rows are loaded into it, so that each goes where the new hashes send it (as
    /// pg_dump's load via partition root). Absent from older archives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_via_root: Option<String>,
}

impl TableData {
    /// `COPY schema.table (cols) TO STDOUT`: the rows as the dump reads them; the column
    /// list is left out for a table without columns, as COPY requires.
    pub fn copy_sql(&self, direction: &str) -> String {
        copy_into(&self.qualified, &self.columns, direction)
    }

    /// `COPY … FROM STDIN` into the table, or into its partition tree's root when its
    /// rows must be routed again ([`TableData::load_via_root`]).
    pub fn load_sql(&self, from: &str) -> String {
        let target = self.load_via_root.as_deref().unwrap_or(&self.qualified);
        copy_into(target, &self.columns, from)
    }
}

fn copy_into(table: &str, columns: &[String], direction: &str) -> String {
    if columns.is_empty() {
        format!("COPY {table} {direction}")
    } else {
        format!("COPY {table} ({}) {direction}", columns.join(", "))
    }
}

/// An object as read from the catalogs, before it has a TOC id.
#[derive(Clone, Debug)]
pub struct Object {
    pub key: CatalogKey,
    pub section: Section,
    pub kind: &'static str,
    pub schema: Option<String>,
    pub name: String,
    pub owner: Option<String>,
    pub sql: String,
    pub owner_sql: Option<String>,
    /// Catalog keys this object depends on (from pg_depend, mapped onto dumped objects).
    pub deps: Vec<CatalogKey>,
    pub data: Option<TableData>,
    pub large_object: Option<u32>,
    /// For `--clean`: the DROP statement, plain and with IF EXISTS.
    pub drop: Option<(String, String)>,
    /// See [`TocEntry::tablespace`].
    pub tablespace: Option<String>,
    /// See [`TocEntry::compression_sql`].
    pub compression_sql: Option<String>,
}

impl Object {
    pub fn new(
        key: CatalogKey,
        section: Section,
        kind: &'static str,
        name: impl Into<String>,
        sql: String,
    ) -> Self {
        Object {
            key,
            section,
            kind,
            schema: None,
            name: name.into(),
            owner: None,
            sql,
            owner_sql: None,
            deps: Vec::new(),
            data: None,
            large_object: None,
            drop: None,
            tablespace: None,
            compression_sql: None,
        }
    }

    /// Sets the tablespace the object is created in (quoted; `None` for the default).
    pub fn in_tablespace(mut self, tablespace: Option<String>) -> Self {
        self.tablespace = tablespace;
        self
    }

    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Sets the owner and the statement that gives it (`ALTER <keyword> <target> OWNER TO
    /// <role>`), and the statements that drop the object for `--clean` (`DROP <keyword>
    /// [IF EXISTS] <target>`): both name the object the same way.
    pub fn owned(mut self, owner: &str, keyword: &str, target: &str, quoted_owner: &str) -> Self {
        self.owner = Some(owner.to_string());
        self.owner_sql = Some(format!("ALTER {keyword} {target} OWNER TO {quoted_owner};"));
        self.drop = Some(if keyword == "LARGE OBJECT" {
            // there is no DROP LARGE OBJECT
            (
                format!("SELECT pg_catalog.lo_unlink('{target}');"),
                format!(
                    "SELECT pg_catalog.lo_unlink('{target}') WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_largeobject_metadata WHERE oid = '{target}');"
                ),
            )
        } else {
            (
                format!("DROP {keyword} {target};"),
                format!("DROP {keyword} IF EXISTS {target};"),
            )
        });
        self
    }

    /// Sets how `--clean` drops the object: the plain and the `IF EXISTS` statement.
    pub fn dropped_by(mut self, plain: String, if_exists: String) -> Self {
        self.drop = Some((plain, if_exists));
        self
    }

    pub fn dep(mut self, key: CatalogKey) -> Self {
        self.deps.push(key);
        self
    }
}

/// Whether an object of `kind` defines its catalog key. The others are attached to the
/// object that does (its comment, privileges, data, sequence value, ownership link,
/// partition or index attachment) and share its key, so that they follow it.
pub(crate) fn defines(kind: &str) -> bool {
    !matches!(
        kind,
        "COMMENT"
            | "SECURITY LABEL"
            | "ACL"
            | "TABLE DATA"
            | "SEQUENCE SET"
            | "SEQUENCE OWNED BY"
            | "TABLE ATTACH"
            | "INDEX ATTACH"
            | "INDEX SETTINGS"
            | "LARGE OBJECT DATA"
            | "STATISTICS DATA"
            | "ROW SECURITY"
            | "DEPENDS ON EXTENSION"
            | "DEFAULT"
    )
}

/// Kind priority inside a section, as pg_dump orders object types (pg_dump_sort.c): the
/// tie-breaker of the dependency sort, so unrelated objects come out in a familiar order.
fn priority(kind: &str) -> u32 {
    const ORDER: &[&str] = &[
        "SCHEMA",
        "PROCEDURAL LANGUAGE",
        "COLLATION",
        "TRANSFORM",
        "EXTENSION",
        "SHELL TYPE",
        "TYPE",
        "DOMAIN",
        "CAST",
        "FUNCTION",
        "PROCEDURE",
        "AGGREGATE",
        "ACCESS METHOD",
        "OPERATOR",
        "OPERATOR FAMILY",
        "OPERATOR CLASS",
        "CONVERSION",
        "TEXT SEARCH PARSER",
        "TEXT SEARCH TEMPLATE",
        "TEXT SEARCH DICTIONARY",
        "TEXT SEARCH CONFIGURATION",
        "FOREIGN DATA WRAPPER",
        "SERVER",
        "USER MAPPING",
        "SEQUENCE",
        "TABLE",
        "FOREIGN TABLE",
        "VIEW",
        "MATERIALIZED VIEW",
        "TABLE ATTACH",
        "DEFAULT",
        "SEQUENCE OWNED BY",
        "TABLE DATA",
        "SEQUENCE SET",
        "LARGE OBJECT",
        "LARGE OBJECT DATA",
        "CONSTRAINT",
        "INDEX",
        "INDEX ATTACH",
        "STATISTICS",
        "RULE",
        "TRIGGER",
        "FK CONSTRAINT",
        "POLICY",
        "ROW SECURITY",
        "PUBLICATION",
        "PUBLICATION TABLE",
        "PUBLICATION TABLES IN SCHEMA",
        "SUBSCRIPTION",
        "COMMENT",
        "ACL",
        "DEFAULT ACL",
        "EVENT TRIGGER",
        "MATERIALIZED VIEW DATA",
    ];
    ORDER.iter().position(|k| *k == kind).unwrap_or(ORDER.len()) as u32
}

/// Orders objects into TOC entries: by section, then a topological sort over their
/// dependencies with kind priority and name as tie-breakers. A dependency loop (rare:
/// pg_dump breaks them by splitting objects) is broken by taking the lowest-priority
/// remaining object, and reported.
pub fn build(objects: Vec<Object>) -> (Vec<TocEntry>, Vec<String>) {
    let mut warnings = Vec::new();
    // several objects share a catalog key (a table and its data, an object and its
    // comment): a dependency on a key means on the object that defines it, never on
    // what is attached to it, wherever either lands
    let mut by_key: HashMap<CatalogKey, usize> = HashMap::new();
    for (i, o) in objects.iter().enumerate() {
        if defines(o.kind) {
            by_key.entry(o.key).or_insert(i);
        }
    }
    let n = objects.len();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut needs: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, o) in objects.iter().enumerate() {
        for d in &o.deps {
            if let Some(&j) = by_key.get(d) {
                if j != i && !needs[i].contains(&j) && objects[j].section <= o.section {
                    needs[i].push(j);
                    edges[j].push(i);
                }
            }
        }
    }
    let mut indegree: Vec<usize> = needs.iter().map(Vec::len).collect();
    let sort_key = |i: usize| {
        let o = &objects[i];
        std::cmp::Reverse((
            o.section,
            priority(o.kind),
            o.schema.clone().unwrap_or_default(),
            o.name.clone(),
            i,
        ))
    };
    let mut ready: BinaryHeap<_> = (0..n).filter(|&i| indegree[i] == 0).map(sort_key).collect();
    let mut order = Vec::with_capacity(n);
    let mut done = vec![false; n];
    while order.len() < n {
        let next = match ready.pop() {
            Some(std::cmp::Reverse((_, _, _, _, i))) => i,
            None => {
                let i = on_a_cycle(&needs, &done, &sort_key);
                warnings.push(format!(
                    "dependency loop broken at {} {}",
                    objects[i].kind, objects[i].name
                ));
                i
            }
        };
        if done[next] {
            continue;
        }
        done[next] = true;
        order.push(next);
        for &m in &edges[next] {
            indegree[m] = indegree[m].saturating_sub(1);
            if indegree[m] == 0 && !done[m] {
                ready.push(sort_key(m));
            }
        }
    }
    // sections must stay in order even where dependencies say nothing
    order.sort_by_key(|&i| objects[i].section);
    let ids: BTreeMap<usize, u32> = order
        .iter()
        .enumerate()
        .map(|(pos, &i)| (i, pos as u32 + 1))
        .collect();
    let entries = order
        .iter()
        .map(|&i| {
            let o = &objects[i];
            let mut deps: Vec<u32> = o
                .deps
                .iter()
                .filter_map(|d| by_key.get(d))
                .filter(|&&j| j != i)
                .map(|j| ids[j])
                .collect();
            deps.sort_unstable();
            deps.dedup();
            TocEntry {
                id: ids[&i],
                section: o.section,
                kind: o.kind.to_string(),
                schema: o.schema.clone(),
                name: o.name.clone(),
                owner: o.owner.clone(),
                sql: o.sql.clone(),
                owner_sql: o.owner_sql.clone(),
                deps,
                data: o.data.clone(),
                large_object: o.large_object,
                drop_sql: o.drop.as_ref().map(|d| d.0.clone()),
                drop_if_exists_sql: o.drop.as_ref().map(|d| d.1.clone()),
                tablespace: o.tablespace.clone(),
                compression_sql: o.compression_sql.clone(),
            }
        })
        .collect();
    (entries, warnings)
}

/// When nothing is ready, every remaining object waits, directly or not, on a cycle:
/// follow unmet dependencies from the first remaining object until one repeats, and break
/// the cycle at its member that sorts first.
fn on_a_cycle<K: Ord>(
    needs: &[Vec<usize>],
    done: &[bool],
    sort_key: &impl Fn(usize) -> K,
) -> usize {
    let start = (0..needs.len())
        .filter(|&i| !done[i])
        .max_by_key(|&i| sort_key(i))
        .expect("objects remain");
    let mut path = vec![start];
    let mut cur = start;
    loop {
        let next = needs[cur]
            .iter()
            .copied()
            .find(|&j| !done[j])
            .expect("a waiting object has an unmet dependency");
        if let Some(pos) = path.iter().position(|&p| p == next) {
            // sort keys are Reverse(...): the greatest is the one that sorts first
            return path[pos..]
                .iter()
                .copied()
                .max_by_key(|&i| sort_key(i))
                .expect("non-empty cycle");
        }
        path.push(next);
        cur = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_order_objects_within_a_section_and_sections_stay_in_order() {
        let view = Object::new(
            (1, 3),
            Section::PreData,
            "VIEW",
            "v",
            "CREATE VIEW v;".into(),
        )
        .dep((1, 2));
        let table = Object::new(
            (1, 2),
            Section::PreData,
            "TABLE",
            "t",
            "CREATE TABLE t;".into(),
        )
        .dep((9, 1));
        let schema = Object::new(
            (9, 1),
            Section::PreData,
            "SCHEMA",
            "s",
            "CREATE SCHEMA s;".into(),
        );
        let index = Object::new(
            (4, 4),
            Section::PostData,
            "INDEX",
            "i",
            "CREATE INDEX i;".into(),
        )
        .dep((1, 2));
        let func = Object::new(
            (5, 5),
            Section::PreData,
            "FUNCTION",
            "f",
            "CREATE FUNCTION f;".into(),
        )
        .dep((1, 3));
        let (toc, warnings) = build(vec![index, view, func, table, schema]);
        let names: Vec<_> = toc.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["s", "t", "v", "f", "i"]);
        assert!(warnings.is_empty());
        assert_eq!(toc[4].deps, vec![2]);
    }

    #[test]
    fn a_loop_is_broken_and_reported() {
        let a = Object::new((1, 1), Section::PreData, "VIEW", "a", String::new()).dep((1, 2));
        let b = Object::new((1, 2), Section::PreData, "VIEW", "b", String::new()).dep((1, 1));
        let (toc, warnings) = build(vec![a, b]);
        assert_eq!(toc.len(), 2);
        assert_eq!(warnings.len(), 1);
    }
}
