//! What a restore writes of each TOC entry, the same for a native restore and for a
//! rendered SQL script: the entry's SQL inside its tablespace, its columns' TOAST
//! compression, its owner; and which entries pg_restore's `--no-…` options leave out.

use std::collections::HashSet;

use super::toc::TocEntry;

/// The parts of an archive a restore leaves out (pg_restore's options of those names).
#[derive(Clone, Debug, Default)]
pub struct Content {
    /// `--no-owner`: no `ALTER … OWNER TO` (objects belong to the restoring user).
    pub no_owner: bool,
    /// `--no-privileges`: no GRANT, REVOKE or default privileges.
    pub no_privileges: bool,
    /// `--no-comments`.
    pub no_comments: bool,
    /// `--no-publications`: no publications, their tables and schemas, or comments on them.
    pub no_publications: bool,
    /// `--no-security-labels`.
    pub no_security_labels: bool,
    /// `--no-subscriptions`: no subscriptions, nor comments on them.
    pub no_subscriptions: bool,
    /// `--no-statistics`: the planner statistics read at dump time are not replayed.
    pub no_statistics: bool,
    /// `--no-tablespaces`: everything is created in the target's default tablespace.
    pub no_tablespaces: bool,
    /// `--no-toast-compression`: columns get the target's default TOAST compression
    /// (for a server built without lz4).
    pub no_toast_compression: bool,
}

impl Content {
    /// Whether an entry of `kind` is left out.
    fn leaves_out(&self, kind: &str) -> bool {
        match kind {
            "ACL" | "DEFAULT ACL" => self.no_privileges,
            "COMMENT" => self.no_comments,
            "SECURITY LABEL" => self.no_security_labels,
            "STATISTICS DATA" => self.no_statistics,
            "SUBSCRIPTION" => self.no_subscriptions,
            "PUBLICATION" | "PUBLICATION TABLE" | "PUBLICATION TABLES IN SCHEMA" => {
                self.no_publications
            }
            _ => false,
        }
    }

    /// `entries` without those left out, nor what is attached to one left out (the
    /// comment on a publication).
    pub fn omit(&self, entries: Vec<TocEntry>) -> Vec<TocEntry> {
        let out: HashSet<u32> = entries
            .iter()
            .filter(|e| self.leaves_out(&e.kind))
            .map(|e| e.id)
            .collect();
        if out.is_empty() {
            return entries;
        }
        let attached_to_out = |e: &TocEntry| {
            matches!(e.kind.as_str(), "COMMENT" | "SECURITY LABEL" | "ACL")
                && e.deps.iter().any(|d| out.contains(d))
        };
        entries
            .into_iter()
            .filter(|e| !out.contains(&e.id) && !attached_to_out(e))
            .collect()
    }

    /// What restoring `e` runs: its SQL (none for data, which loads by COPY), within its
    /// tablespace and followed by its columns' compression; then, apart, its owner
    /// statement (run on its own so that a missing role can be named as such).
    pub fn statements<'e>(&self, e: &'e TocEntry) -> (Option<String>, Option<&'e str>) {
        if self.leaves_out(&e.kind) {
            return (None, None);
        }
        let mut sql = String::new();
        if !e.sql.is_empty() && e.data.is_none() && e.large_object.is_none() {
            sql.push_str(&e.sql);
            if let Some(c) = e
                .compression_sql
                .as_ref()
                .filter(|_| !self.no_toast_compression)
            {
                sql.push('\n');
                sql.push_str(c);
            }
            if let Some(ts) = e.tablespace.as_ref().filter(|_| !self.no_tablespaces) {
                sql =
                    format!("SET default_tablespace = {ts};\n{sql}\nSET default_tablespace = '';");
            }
        }
        let owner = e.owner_sql.as_deref().filter(|_| !self.no_owner);
        ((!sql.is_empty()).then_some(sql), owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::toc::Section;

    fn entry(id: u32, kind: &str, sql: &str, deps: Vec<u32>) -> TocEntry {
        TocEntry {
            id,
            section: Section::PreData,
            kind: kind.into(),
            schema: None,
            name: format!("e{id}"),
            owner: None,
            sql: sql.into(),
            owner_sql: Some(format!("ALTER x{id} OWNER TO r;")),
            deps,
            data: None,
            large_object: None,
            drop_sql: None,
            drop_if_exists_sql: None,
            tablespace: Some("ts".into()),
            compression_sql: Some("ALTER TABLE t ALTER COLUMN c SET COMPRESSION lz4;".into()),
        }
    }

    #[test]
    fn options_leave_out_entries_and_what_is_attached_to_them() {
        let entries = vec![
            entry(1, "PUBLICATION", "CREATE PUBLICATION p;", vec![]),
            entry(2, "COMMENT", "COMMENT ON PUBLICATION p IS 'x';", vec![1]),
            entry(3, "TABLE", "CREATE TABLE t ();", vec![]),
            entry(4, "COMMENT", "COMMENT ON TABLE t IS 'x';", vec![3]),
        ];
        let ids =
            |c: &Content| -> Vec<u32> { c.omit(entries.clone()).iter().map(|e| e.id).collect() };
        assert_eq!(ids(&Content::default()), [1, 2, 3, 4]);
        let no_pubs = Content {
            no_publications: true,
            ..Default::default()
        };
        assert_eq!(ids(&no_pubs), [3, 4]);
        let no_comments = Content {
            no_comments: true,
            ..Default::default()
        };
        assert_eq!(ids(&no_comments), [1, 3]);
    }

    #[test]
    fn statements_set_the_tablespace_and_compression_unless_told_not_to() {
        let e = entry(3, "TABLE", "CREATE TABLE t (c text);", vec![]);
        let (sql, owner) = Content::default().statements(&e);
        assert_eq!(
            sql.unwrap(),
            "SET default_tablespace = ts;\nCREATE TABLE t (c text);\nALTER TABLE t ALTER COLUMN c SET COMPRESSION lz4;\nSET default_tablespace = '';"
        );
        assert_eq!(owner, Some("ALTER x3 OWNER TO r;"));
        let bare = Content {
            no_tablespaces: true,
            no_toast_compression: true,
            no_owner: true,
            ..Default::default()
        };
        assert_eq!(
            bare.statements(&e),
            (Some("CREATE TABLE t (c text);".into()), None)
        );
    }
}
