//! `-t/-T/-n/-N`: which schemas and tables a dump holds, with pg_dump's pattern syntax.
//!
//! A pattern is `name` or `schema.name`; unquoted letters fold to lower case, `*` matches
//! any text and `?` one character, double quotes keep case and make everything literal,
//! and other regular-expression characters keep their meaning (psql's `\d` rules). As in
//! pg_dump, patterns become anchored regular expressions matched by the server, and an
//! unqualified table pattern matches tables visible in the default search_path.

use std::collections::HashSet;

use tokio_postgres::Client;

use crate::error::{Error, ErrorKind, Result};
use crate::pg::session::sql_error;

/// One parsed pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    /// Anchored regex for the schema, when the pattern names one.
    pub schema: Option<String>,
    /// Anchored regex for the object name.
    pub name: String,
}

impl Pattern {
    /// Parses `[schema.]name`. A database part (`db.schema.name`) is refused.
    pub fn parse(s: &str) -> Result<Self> {
        let mut parts: Vec<String> = vec![String::new()];
        let mut quoted = false;
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            let cur = parts.last_mut().expect("non-empty");
            match c {
                '"' if quoted && chars.peek() == Some(&'"') => {
                    chars.next();
                    cur.push('"');
                }
                '"' => quoted = !quoted,
                '.' if !quoted => parts.push(String::new()),
                c if quoted => {
                    if "\\^$.|?*+()[]{}".contains(c) {
                        cur.push('\\');
                    }
                    cur.push(c);
                }
                '*' => cur.push_str(".*"),
                '?' => cur.push('.'),
                '$' => cur.push_str("\\$"),
                c => cur.extend(c.to_lowercase()),
            }
        }
        if quoted {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("unterminated quote in pattern {s:?}"),
            ));
        }
        let anchor = |p: &str| format!("^({p})$");
        match parts.len() {
            1 => Ok(Pattern {
                schema: None,
                name: anchor(&parts[0]),
            }),
            2 => Ok(Pattern {
                schema: Some(anchor(&parts[0])),
                name: anchor(&parts[1]),
            }),
            _ => Err(Error::new(
                ErrorKind::Usage,
                format!("improper qualified name (too many dotted names): {s}"),
            )),
        }
    }

    /// The pattern as a schema pattern (`-n`): the whole text names the schema.
    fn as_schema(&self) -> Result<&str> {
        match self.schema {
            None => Ok(&self.name),
            Some(_) => Err(Error::new(
                ErrorKind::Usage,
                "a schema pattern cannot contain a dot",
            )),
        }
    }
}

/// The user's selection.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// `-t`: only these tables (and views, sequences, foreign tables, materialized views).
    pub tables: Vec<Pattern>,
    /// `-T`: not these.
    pub exclude_tables: Vec<Pattern>,
    /// `-n`: only these schemas.
    pub schemas: Vec<Pattern>,
    /// `-N`: not these schemas.
    pub exclude_schemas: Vec<Pattern>,
    /// `--exclude-table-data`: these tables' definitions are dumped, their rows not.
    pub exclude_table_data: Vec<Pattern>,
    /// `-s`: the schema only: no rows, no sequence values, no large objects (pg_dump
    /// leaves large objects out of a schema-only dump too).
    pub schema_only: bool,
}

/// What the filters select in this database.
pub(crate) struct Selection {
    pub namespaces: HashSet<u32>,
    pub relations: HashSet<u32>,
    pub whole_schemas: bool,
    /// Tables whose rows are left out (`--exclude-table-data`).
    pub no_data: HashSet<u32>,
    /// Tables to lock, quoted and qualified.
    pub lock_list: Vec<String>,
}

const USER_NAMESPACES: &str = "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')";
const RELKINDS: &str = "c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')";

pub(crate) async fn select(client: &Client, f: &Filters) -> Result<Selection> {
    let q = |e| sql_error(e, "applying the schema and table filters");
    let mut namespaces: HashSet<u32> = HashSet::new();
    for r in client
        .query(
            &format!("SELECT n.oid, n.nspname FROM pg_namespace n WHERE {USER_NAMESPACES}"),
            &[],
        )
        .await
        .map_err(q)?
    {
        namespaces.insert(r.get(0));
    }
    if !f.schemas.is_empty() {
        let res: Vec<&str> = f
            .schemas
            .iter()
            .map(Pattern::as_schema)
            .collect::<Result<_>>()?;
        let rows = client
            .query(
                "SELECT oid FROM pg_namespace WHERE nspname ~ ANY($1::text[])",
                &[&res],
            )
            .await
            .map_err(q)?;
        let wanted: HashSet<u32> = rows.iter().map(|r| r.get(0)).collect();
        if wanted.is_empty() {
            return Err(Error::new(
                ErrorKind::Usage,
                "no matching schemas were found",
            ));
        }
        namespaces.retain(|n| wanted.contains(n));
    }
    if !f.exclude_schemas.is_empty() {
        let res: Vec<&str> = f
            .exclude_schemas
            .iter()
            .map(Pattern::as_schema)
            .collect::<Result<_>>()?;
        for r in client
            .query(
                "SELECT oid FROM pg_namespace WHERE nspname ~ ANY($1::text[])",
                &[&res],
            )
            .await
            .map_err(q)?
        {
            namespaces.remove(&r.get::<_, u32>(0));
        }
    }
    let ns: Vec<u32> = namespaces.iter().copied().collect();
    let mut relations: HashSet<u32> = HashSet::new();
    let whole_schemas = f.tables.is_empty();
    if whole_schemas {
        let sql = format!(
            "SELECT c.oid FROM pg_class c WHERE {RELKINDS} AND c.relnamespace = ANY($1)
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')"
        );
        for r in client.query(&sql, &[&ns]).await.map_err(q)? {
            relations.insert(r.get(0));
        }
    } else {
        relations = match_tables(client, &f.tables).await?;
        if relations.is_empty() {
            return Err(Error::new(
                ErrorKind::Usage,
                "no matching tables were found",
            ));
        }
        // -t tables may live in any schema: their schemas must exist in the restore, but
        // are not dumped (as pg_dump does)
    }
    if !f.exclude_tables.is_empty() {
        for oid in match_tables(client, &f.exclude_tables).await? {
            relations.remove(&oid);
        }
    }
    let rel: Vec<u32> = relations.iter().copied().collect();
    let rows = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid = ANY($1) AND c.relkind IN ('r', 'p') ORDER BY 1",
            &[&rel],
        )
        .await
        .map_err(q)?;
    let lock_list = rows.iter().map(|r| r.get(0)).collect();
    let no_data = if f.exclude_table_data.is_empty() {
        HashSet::new()
    } else {
        match_tables(client, &f.exclude_table_data).await?
    };
    Ok(Selection {
        namespaces,
        relations,
        whole_schemas,
        no_data,
        lock_list,
    })
}

/// Relations matching any of `patterns`. Unqualified patterns match what is visible in the
/// default search_path, which is set for this lookup only.
async fn match_tables(client: &Client, patterns: &[Pattern]) -> Result<HashSet<u32>> {
    let q = |e| sql_error(e, "matching table patterns");
    client
        .batch_execute("SET LOCAL search_path TO DEFAULT")
        .await
        .map_err(q)?;
    let mut out = HashSet::new();
    for p in patterns {
        let sql = format!(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE {RELKINDS} AND c.relname ~ $1
               AND CASE WHEN $2::text IS NULL THEN pg_catalog.pg_table_is_visible(c.oid) ELSE n.nspname ~ $2 END"
        );
        for r in client.query(&sql, &[&p.name, &p.schema]).await.map_err(q)? {
            out.insert(r.get(0));
        }
    }
    client
        .batch_execute("SELECT pg_catalog.set_config('search_path', '', true)")
        .await
        .map_err(q)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_follow_psql_rules() {
        let p = Pattern::parse("Public.Acc*").unwrap();
        assert_eq!(
            p,
            Pattern {
                schema: Some("^(public)$".into()),
                name: "^(acc.*)$".into()
            }
        );
        let p = Pattern::parse(r#""My.Schema"."T?b""#).unwrap();
        assert_eq!(p.schema.as_deref(), Some(r"^(My\.Schema)$"));
        assert_eq!(p.name, r"^(T\?b)$");
        assert_eq!(Pattern::parse(r#""a""b""#).unwrap().name, r#"^(a"b)$"#);
        assert_eq!(Pattern::parse("t$x").unwrap().name, r"^(t\$x)$");
        assert_eq!(Pattern::parse("t[12]").unwrap().name, "^(t[12])$");
        assert!(Pattern::parse("a.b.c").is_err());
        assert!(Pattern::parse("\"open").is_err());
    }
}
