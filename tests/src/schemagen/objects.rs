//! What hangs off tables: indexes, views on views, materialized views, triggers, rules,
//! policies, extended statistics, publications, and functions whose bodies use tables.

use std::fmt::Write as _;

use super::names::{qi, ql};
use super::tables::{ColKind, Kind};
use super::types::{B, Ty};
use super::{G, GrantTarget};

#[derive(Clone, Debug)]
pub(crate) struct View {
    pub(crate) q: String,
    pub(crate) cols: Vec<(String, Ty)>,
    /// Columns with unique values (for a unique index on a materialized view of it).
    pub(crate) unique: Option<usize>,
    /// Simple enough to be updatable (WITH CHECK OPTION).
    pub(crate) updatable: bool,
    pub(crate) materialized: bool,
    /// Materialized WITH NO DATA: nothing can read it yet.
    pub(crate) empty: bool,
    pub(crate) check_option: bool,
    /// A materialized view reads through it: its owner stays the superuser, whose
    /// privileges REFRESH checks the view's tables with.
    pub(crate) pinned: bool,
    /// The views it reads.
    pub(crate) reads: Vec<usize>,
}

/// A relation a view can read: a table or an earlier view.
#[derive(Clone)]
struct Source {
    q: String,
    cols: Vec<(String, Ty)>,
    unique: Option<usize>,
    updatable: bool,
    view: Option<usize>,
}

impl G {
    fn index_name(&mut self, table_q: &str) -> (String, String) {
        let raw = self.names.fresh(&mut self.rng, "ix");
        let q = G::sibling(table_q, &raw, &self.schemas);
        (raw, q)
    }

    pub(crate) fn indexes_(&mut self) {
        for t in 0..self.tables.len() {
            let n = self.rng.below(3);
            for _ in 0..n {
                self.index(t);
            }
        }
        // ON ONLY on a partitioned table with leaves only, each leaf's index attached
        for t in 0..self.tables.len() {
            let tab = self.tables[t].clone();
            let Some(part) = &tab.part else { continue };
            if tab.kind != Kind::Root
                || part
                    .children
                    .iter()
                    .any(|(c, _)| self.tables[*c].part.is_some())
                || !self.maybe("index_on_only_attach", 30)
            {
                continue;
            }
            let col = qi(&tab.cols[3].name);
            if !self.has_btree(&tab.cols[3].ty) {
                continue;
            }
            let (raw, q) = self.index_name(&tab.q);
            let _ = writeln!(
                self.ddl,
                "CREATE INDEX {} ON ONLY {} ({col});",
                qi(&raw),
                tab.q
            );
            self.comments.push(format!("INDEX {q}"));
            for (c, _) in &part.children {
                let leaf = self.tables[*c].q.clone();
                let (lraw, lq) = self.index_name(&leaf);
                let _ = writeln!(self.ddl, "CREATE INDEX {} ON {leaf} ({col});", qi(&lraw));
                let _ = writeln!(self.ddl, "ALTER INDEX {q} ATTACH PARTITION {lq};");
            }
        }
    }

    fn index(&mut self, t: usize) {
        let tab = self.tables[t].clone();
        let cols = tab.indexable_cols();
        if cols.is_empty() {
            return;
        }
        let partitioned = tab.part.is_some();
        let c = *self.rng.pick(&cols);
        let col = &tab.cols[c];
        let name = qi(&col.name);
        let base = self.base_of(&col.ty);
        let stripped = self.strip(&col.ty);
        let mut method = "btree";
        let mut items = name.clone();
        let mut unique = false;
        let mut with = String::new();
        let choice = self.rng.below(9);
        match choice {
            0 if self.has_btree(&col.ty) && col.key && !partitioned && cols.len() > 1 => {
                unique = true;
                let other = *self.rng.pick(&cols);
                if other != c && self.has_btree(&tab.cols[other].ty) && self.rng.pct(50) {
                    let _ = write!(items, ", {}", qi(&tab.cols[other].name));
                }
            }
            1 if base.is_some_and(B::is_int) => {
                self.on("index_expression");
                items = if self.rng.pct(50) {
                    let f = self.int_fn(base.unwrap_or(B::I4));
                    format!("{}({name})", self.int_fns[f].q)
                } else {
                    format!("({name} % 7)")
                };
                if !self.int_fns.is_empty() && items.contains('(') {
                    items = format!("({items})");
                }
            }
            2 if base.is_some_and(B::is_text) => {
                self.on("index_expression");
                items = match self.rng.below(3) {
                    0 => format!("(lower({name}))"),
                    1 => format!("{name} COLLATE \"C\" DESC NULLS LAST"),
                    _ => format!("{name} text_pattern_ops"),
                };
            }
            3 if matches!(stripped, Ty::Range(_) | Ty::Multi(_)) => {
                method = "gist";
            }
            3 if matches!(base, Some(B::I4 | B::I8 | B::Text)) => {
                method = "gist";
                self.on("btree_gist");
            }
            4 if matches!(base, Some(B::Jsonb)) => {
                method = "gin";
                if self.rng.pct(50) {
                    items = format!("{name} jsonb_path_ops");
                }
            }
            4 if matches!(&stripped, Ty::Arr(inner) if matches!(**inner, Ty::Base(b) if b.is_int() || b.is_text())) =>
            {
                method = "gin";
            }
            5 if matches!(
                base,
                Some(B::I4 | B::I8 | B::Date | B::Tstz | B::Num | B::Uuid | B::Text)
            ) =>
            {
                method = "brin";
                with = " WITH (pages_per_range = 16)".into();
            }
            6 if matches!(base, Some(B::Text)) || matches!(stripped, Ty::Range(_)) => {
                method = "spgist";
            }
            7 if matches!(
                base,
                Some(B::I4 | B::I8 | B::Text | B::Uuid | B::Date | B::Num | B::Bytea)
            ) =>
            {
                method = "hash";
            }
            _ if self.has_btree(&col.ty) => {
                if self.rng.pct(30) {
                    items.push_str(" DESC NULLS FIRST");
                }
                if self.rng.pct(30) {
                    with = " WITH (fillfactor = 50)".into();
                }
            }
            _ => return,
        }
        self.on(match method {
            "gist" => "index_gist",
            "gin" => "index_gin",
            "brin" => "index_brin",
            "spgist" => "index_spgist",
            "hash" => "index_hash",
            _ => "index_btree",
        });
        let mut include = String::new();
        if (method == "btree" || method == "gist") && self.maybe("index_include", 20) {
            let other = *self.rng.pick(&cols);
            if other != c {
                include = format!(" INCLUDE ({})", qi(&tab.cols[other].name));
            }
        }
        let mut pred = String::new();
        if !unique && self.maybe("index_partial", 20) {
            let p = self.rng.pick(&cols).to_owned();
            let pc = tab.cols[p].clone();
            if let Some(pr) = self.pred_for(&pc.ty, true) {
                pred = format!(" WHERE {}", pr.sql(&qi(&pc.name)));
            }
        }
        let (raw, q) = self.index_name(&tab.q);
        let _ = writeln!(
            self.ddl,
            "CREATE {}INDEX {} ON {} USING {method} ({items}){include}{with}{pred};",
            if unique { "UNIQUE " } else { "" },
            qi(&raw),
            tab.q
        );
        self.comments.push(format!("INDEX {q}"));
        if method == "btree"
            && !unique
            && pred.is_empty()
            && !partitioned
            && tab.kind != Kind::Partition
            && self.maybe("cluster_on", 10)
        {
            let _ = writeln!(self.ddl, "ALTER TABLE {} CLUSTER ON {};", tab.q, qi(&raw));
        }
        if items.starts_with('(') && self.maybe("index_statistics", 20) {
            let _ = writeln!(
                self.ddl,
                "ALTER INDEX {q} ALTER COLUMN 1 SET STATISTICS 300;"
            );
        }
    }

    /// Whether view `v` is or reads (through other views) a materialized view.
    fn reaches_matview(&self, v: usize) -> bool {
        self.views[v].materialized || self.views[v].reads.iter().any(|&r| self.reaches_matview(r))
    }

    fn sources(&self, for_matview: bool) -> Vec<Source> {
        let mut v = Vec::new();
        for tab in &self.tables {
            let cols: Vec<(String, Ty)> = tab
                .cols
                .iter()
                .filter(|c| c.usable())
                .map(|c| (c.name.clone(), c.ty.clone()))
                .collect();
            let unique = tab
                .cols
                .iter()
                .filter(|c| c.usable())
                .position(|c| c.key && tab.kind != Kind::Root && tab.kind != Kind::Child)
                .filter(|_| !tab.has_children);
            v.push(Source {
                q: tab.q.clone(),
                cols,
                unique,
                updatable: true,
                view: None,
            });
        }
        let matview_on_matview = !super::KNOWN_COFFER_GAPS.contains(&"matview_on_matview");
        for (i, view) in self.views.iter().enumerate() {
            if view.empty || (for_matview && !matview_on_matview && self.reaches_matview(i)) {
                continue;
            }
            v.push(Source {
                q: view.q.clone(),
                cols: view.cols.clone(),
                unique: view.unique,
                updatable: view.updatable && !view.materialized,
                view: Some(i),
            });
        }
        v
    }

    pub(crate) fn views_(&mut self) {
        for _ in 0..self.rng.below(4) {
            if self.on("view") {
                self.view(false);
            }
        }
    }

    /// A view (or materialized view) of a table or an earlier view.
    fn view(&mut self, materialized: bool) {
        let sources = self.sources(materialized);
        if sources.is_empty() {
            return;
        }
        let src = sources[self.rng.below(sources.len())].clone();
        if src.cols.is_empty() {
            return;
        }
        let (_, q) = self.qname(if materialized { "mv" } else { "view" });
        let mut cols: Vec<(String, Ty)> = Vec::new();
        let mut exprs: Vec<String> = Vec::new();
        let mut unique = None;
        let mut updatable = src.updatable;
        let mut reads = src.view.into_iter().collect::<Vec<_>>();
        if materialized && reads.iter().any(|&v| self.reaches_matview(v)) {
            self.on("matview_on_matview");
        }
        let shape = self.rng.below(10);
        // an updatable view needs a column that is a column of its source
        let mut plain_col = false;
        let from;
        match shape {
            // an aggregate
            0 => {
                updatable = false;
                let c = self.rng.below(src.cols.len());
                if !self.has_btree(&src.cols[c].1) {
                    return;
                }
                exprs.push(qi(&src.cols[c].0));
                cols.push(src.cols[c].clone());
                let n = self.names.column(&mut self.rng, &[src.cols[c].0.clone()]);
                exprs.push(format!("count(*) AS {}", qi(&n)));
                cols.push((n, Ty::Base(B::I8)));
                unique = Some(0);
                from = format!("FROM {} GROUP BY {}", src.q, qi(&src.cols[c].0));
            }
            // a join of two sources
            1 => {
                updatable = false;
                let other = sources[self.rng.below(sources.len())].clone();
                reads.extend(other.view);
                let a = self.rng.below(src.cols.len());
                exprs.push(format!("a.{}", qi(&src.cols[a].0)));
                cols.push(src.cols[a].clone());
                if let Some((n, t)) = other.cols.first() {
                    let alias = self.names.column(&mut self.rng, &[src.cols[a].0.clone()]);
                    exprs.push(format!("b.{} AS {}", qi(n), qi(&alias)));
                    cols.push((alias, t.clone()));
                }
                from = format!("FROM {} a CROSS JOIN {} b", src.q, other.q);
            }
            // VALUES
            2 if !materialized => {
                updatable = false;
                reads.clear();
                let n = self.names.column(&mut self.rng, &[]);
                let text = self.comment_text();
                exprs.push(format!("v.{}", qi(&n)));
                cols.push((n.clone(), Ty::Base(B::Text)));
                from = format!(
                    "FROM (VALUES ({}), (NULL), ('second')) v({})",
                    ql(&text),
                    qi(&n)
                );
            }
            _ => {
                // some columns, maybe renamed or computed, maybe a WHERE
                let mut picked: Vec<usize> = (0..src.cols.len()).collect();
                self.rng.shuffle(&mut picked);
                picked.truncate(1 + self.rng.below(src.cols.len().min(4)));
                let mut taken: Vec<String> = Vec::new();
                for &i in &picked {
                    let (n, t) = src.cols[i].clone();
                    let b = self.base_of(&t);
                    match self.rng.below(6) {
                        0 => {
                            let alias = self.names.column(&mut self.rng, &taken);
                            exprs.push(format!("{} AS {}", qi(&n), qi(&alias)));
                            plain_col = true;
                            taken.push(alias.clone());
                            if src.unique == Some(i) {
                                unique = Some(cols.len());
                            }
                            cols.push((alias, t));
                        }
                        1 if b.is_some_and(B::is_int) && !materialized => {
                            let alias = self.names.column(&mut self.rng, &taken);
                            let f = self.int_fn(b.unwrap_or(B::I4));
                            exprs.push(format!(
                                "{}({}) AS {}",
                                self.int_fns[f].q,
                                qi(&n),
                                qi(&alias)
                            ));
                            taken.push(alias.clone());
                            cols.push((alias, Ty::Base(b.unwrap_or(B::I4))));
                        }
                        2 if matches!(self.strip(&t), Ty::Comp(_)) => {
                            let Ty::Comp(ci) = self.strip(&t) else {
                                continue;
                            };
                            let attrs = self.comps[ci].attrs.clone();
                            let (an, at) = attrs[0].clone();
                            let alias = self.names.column(&mut self.rng, &taken);
                            exprs.push(format!("({}).{} AS {}", qi(&n), qi(&an), qi(&alias)));
                            taken.push(alias.clone());
                            cols.push((alias, at));
                        }
                        3 => {
                            let alias = self.names.column(&mut self.rng, &taken);
                            exprs.push(format!("{}::text AS {}", qi(&n), qi(&alias)));
                            taken.push(alias.clone());
                            cols.push((alias, Ty::Base(B::Text)));
                        }
                        _ => {
                            if taken.contains(&n) {
                                continue;
                            }
                            exprs.push(qi(&n));
                            plain_col = true;
                            taken.push(n.clone());
                            if src.unique == Some(i) {
                                unique = Some(cols.len());
                            }
                            cols.push((n, t));
                        }
                    }
                }
                if exprs.is_empty() {
                    return;
                }
                updatable &= plain_col;
                let mut w = String::new();
                if self.rng.pct(40) {
                    let i = self.rng.below(src.cols.len());
                    let (n, t) = src.cols[i].clone();
                    if let Some(p) = self.pred_for(&t, true) {
                        w = format!(" WHERE {}", p.sql(&qi(&n)));
                    }
                }
                from = format!("FROM {}{w}", src.q);
            }
        }
        // a column list for the view itself
        let mut head = String::new();
        if self.rng.pct(20) {
            let mut names = Vec::new();
            for _ in &cols {
                let n = self.names.column(&mut self.rng, &names);
                names.push(n);
            }
            head = format!(
                " ({})",
                names.iter().map(|n| qi(n)).collect::<Vec<_>>().join(", ")
            );
            for (c, n) in cols.iter_mut().zip(names) {
                c.0 = n;
            }
        }
        let body = format!("SELECT {} {from}", exprs.join(", "));
        let mut has_check = false;
        let mut no_data = false;
        if materialized {
            no_data = self.maybe("matview_no_data", 30);
            let _ = writeln!(
                self.late,
                "CREATE MATERIALIZED VIEW {q}{head}{} AS {body}{};",
                if self.rng.pct(20) {
                    " WITH (fillfactor = 60)"
                } else {
                    ""
                },
                if no_data { " WITH NO DATA" } else { "" }
            );
            if let (Some(u), true) = (unique, self.maybe("matview_unique_index", 50)) {
                let (raw, iq) = self.index_name(&q);
                let _ = writeln!(
                    self.late,
                    "CREATE UNIQUE INDEX {} ON {q} ({});",
                    qi(&raw),
                    qi(&cols[u].0)
                );
                self.comments.push(format!("INDEX {iq}"));
            }
            self.comments.push(format!("MATERIALIZED VIEW {q}"));
            for (n, _) in &cols {
                if self.rng.pct(40) {
                    self.comments.push(format!("COLUMN {q}.{}", qi(n)));
                }
            }
            self.grants.push(GrantTarget {
                kind: "TABLE",
                obj: q.clone(),
                privs: vec!["SELECT"],
                cols: vec![],
            });
            // REFRESH checks what the views read with their owners' privileges
            let mut stack = reads.clone();
            while let Some(v) = stack.pop() {
                if !self.views[v].pinned {
                    self.views[v].pinned = true;
                    stack.extend(self.views[v].reads.clone());
                }
            }
        } else {
            let mut opts = Vec::new();
            if self.maybe("view_security_barrier", 20) {
                opts.push("security_barrier = true");
            }
            if self.major >= 15 && self.maybe("view_security_invoker", 20) {
                opts.push("security_invoker = true");
            }
            let with = if opts.is_empty() {
                String::new()
            } else {
                format!(" WITH ({})", opts.join(", "))
            };
            let check = if updatable && self.maybe("view_check_option", 30) {
                *self.rng.pick(&[
                    " WITH CHECK OPTION",
                    " WITH LOCAL CHECK OPTION",
                    " WITH CASCADED CHECK OPTION",
                ])
            } else {
                ""
            };
            has_check = !check.is_empty();
            let _ = writeln!(self.ddl, "CREATE VIEW {q}{head}{with} AS {body}{check};");
            self.comments.push(format!("VIEW {q}"));
            for (n, _) in &cols {
                if self.rng.pct(40) {
                    self.comments.push(format!("COLUMN {q}.{}", qi(n)));
                }
            }
            self.grants.push(GrantTarget {
                kind: "TABLE",
                obj: q.clone(),
                privs: vec!["SELECT", "INSERT", "UPDATE", "DELETE"],
                cols: cols.iter().map(|c| c.0.clone()).collect(),
            });
        }
        self.views.push(View {
            q,
            cols,
            unique,
            updatable,
            materialized,
            empty: no_data,
            check_option: has_check,
            pinned: false,
            reads,
        });
    }

    pub(crate) fn late_(&mut self) {
        self.constraints_after_data();
        for _ in 0..self.rng.below(3) {
            if self.on("materialized_view") {
                self.view(true);
            }
        }
        for v in 0..self.views.len() {
            let view = &self.views[v];
            if !view.materialized && !view.pinned {
                self.owners.push(format!("VIEW {}", view.q));
            }
        }
        for t in 0..self.tables.len() {
            if self.rng.pct(30) {
                self.triggers(t);
            }
            if self.rng.pct(15) {
                self.rules(t);
            }
            if self.rng.pct(15) {
                self.policies(t);
            }
            if self.rng.pct(20) {
                self.statistics(t);
            }
        }
        for v in 0..self.views.len() {
            if !self.views[v].materialized
                && !self.views[v].check_option
                && self.maybe("trigger_instead_of", 15)
            {
                let f = self.trigger_function();
                let q = self.views[v].q.clone();
                let n = self.names.fresh(&mut self.rng, "tg");
                let _ = writeln!(
                    self.late,
                    "CREATE TRIGGER {} INSTEAD OF INSERT OR UPDATE ON {q} FOR EACH ROW EXECUTE FUNCTION {f}();",
                    qi(&n)
                );
                self.comments.push(format!("TRIGGER {} ON {q}", qi(&n)));
            }
        }
        if self.maybe("publication", 25) {
            self.publication();
        }
    }

    /// A trigger function: a tripwire that fails when it fires, one that drops the row,
    /// or one that lets it through.
    fn trigger_function(&mut self) -> String {
        let (_, q) = self.qname("trg");
        let body = match self.rng.below(3) {
            0 => {
                "BEGIN\n  RAISE EXCEPTION 'schemagen tripwire % fired on %', TG_NAME, TG_TABLE_NAME;\nEND"
            }
            1 => "BEGIN\n  RETURN NULL;\nEND",
            _ => "BEGIN\n  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;\n  RETURN NEW;\nEND",
        };
        let _ = writeln!(
            self.late,
            "CREATE FUNCTION {q}() RETURNS trigger LANGUAGE plpgsql AS $gen$\n{body}\n$gen$;"
        );
        self.comments.push(format!("FUNCTION {q}()"));
        self.owners.push(format!("FUNCTION {q}()"));
        q
    }

    fn triggers(&mut self, t: usize) {
        let tab = self.tables[t].clone();
        if !self.on("trigger") {
            return;
        }
        let f = self.trigger_function();
        let n = self.names.fresh(&mut self.rng, "tg");
        let cols = tab.usable_cols();
        let row = self.rng.pct(70);
        let partitioned = tab.part.is_some();
        let timing = if row && self.rng.pct(50) {
            "BEFORE"
        } else {
            "AFTER"
        };
        let constraint =
            row && timing == "AFTER" && !partitioned && self.maybe("constraint_trigger", 20);
        let mut events = vec!["INSERT"];
        if self.rng.pct(50) {
            if self.rng.pct(40) && !cols.is_empty() && !constraint {
                let c = *self.rng.pick(&cols);
                events.push("UPDATE OF");
                let _ = c;
            } else {
                events.push("UPDATE");
            }
        }
        if self.rng.pct(30) {
            events.push("DELETE");
        }
        if !row && self.rng.pct(30) {
            events.push("TRUNCATE");
        }
        let ev = events
            .iter()
            .map(|e| {
                if *e == "UPDATE OF" {
                    format!("UPDATE OF {}", qi(&tab.cols[cols[0]].name))
                } else {
                    (*e).to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        let mut when = String::new();
        let plain: Vec<usize> = cols
            .iter()
            .copied()
            .filter(|&c| !matches!(tab.cols[c].kind, ColKind::Generated { .. }))
            .collect();
        if row && !events.contains(&"DELETE") && !plain.is_empty() && self.maybe("trigger_when", 30)
        {
            let c = *self.rng.pick(&plain);
            when = format!(" WHEN (NEW.{} IS NOT NULL)", qi(&tab.cols[c].name));
        }
        let mut referencing = String::new();
        if !row
            && timing == "AFTER"
            && events.len() == 1
            && tab.kind == Kind::Plain
            && self.maybe("trigger_transition_table", 30)
        {
            referencing = format!(
                " REFERENCING NEW TABLE AS {}",
                qi(&self.names.column(&mut self.rng, &[]))
            );
        }
        let args = if self.rng.pct(30) {
            format!("{}, '42'", ql(&self.comment_text()))
        } else {
            String::new()
        };
        let _ = writeln!(
            self.late,
            "CREATE {}TRIGGER {} {timing} {ev} ON {}{}{referencing} FOR EACH {}{when} EXECUTE FUNCTION {f}({args});",
            if constraint { "CONSTRAINT " } else { "" },
            qi(&n),
            tab.q,
            if constraint {
                " DEFERRABLE INITIALLY DEFERRED"
            } else {
                ""
            },
            if row { "ROW" } else { "STATEMENT" }
        );
        self.comments
            .push(format!("TRIGGER {} ON {}", qi(&n), tab.q));
        match self.rng.below(5) {
            0 => {
                let _ = writeln!(
                    self.late,
                    "ALTER TABLE {} DISABLE TRIGGER {};",
                    tab.q,
                    qi(&n)
                );
                self.on("trigger_disabled");
            }
            1 => {
                let _ = writeln!(
                    self.late,
                    "ALTER TABLE {} ENABLE REPLICA TRIGGER {};",
                    tab.q,
                    qi(&n)
                );
                self.on("trigger_replica");
            }
            2 => {
                let _ = writeln!(
                    self.late,
                    "ALTER TABLE {} ENABLE ALWAYS TRIGGER {};",
                    tab.q,
                    qi(&n)
                );
                self.on("trigger_always");
            }
            _ => {}
        }
    }

    fn rules(&mut self, t: usize) {
        let tab = self.tables[t].clone();
        if tab.kind == Kind::Partition || tab.part.is_some() || !self.on("rule") {
            return;
        }
        let n = self.names.fresh(&mut self.rng, "rl");
        let cols = tab.usable_cols();
        let (event, cond) = match self.rng.below(3) {
            0 => ("DELETE", String::new()),
            1 if !cols.is_empty() => (
                "UPDATE",
                format!(" WHERE OLD.{} IS NULL", qi(&tab.cols[cols[0]].name)),
            ),
            _ => ("INSERT", String::new()),
        };
        let actions: &[&str] = if cond.is_empty() {
            &[
                "INSTEAD NOTHING",
                "ALSO NOTHING",
                "ALSO NOTIFY schemagen",
                "ALSO SELECT 1",
            ]
        } else {
            &["INSTEAD NOTHING", "ALSO SELECT 1"]
        };
        let action = *self.rng.pick(actions);
        let _ = writeln!(
            self.late,
            "CREATE RULE {} AS ON {event} TO {}{cond} DO {action};",
            qi(&n),
            tab.q
        );
        self.comments.push(format!("RULE {} ON {}", qi(&n), tab.q));
        if self.maybe("rule_disabled", 15) {
            let _ = writeln!(self.late, "ALTER TABLE {} DISABLE RULE {};", tab.q, qi(&n));
        }
    }

    fn policies(&mut self, t: usize) {
        let tab = self.tables[t].clone();
        if !self.on("row_level_security") {
            return;
        }
        let _ = writeln!(
            self.late,
            "ALTER TABLE {} ENABLE ROW LEVEL SECURITY;",
            tab.q
        );
        if self.rng.pct(40) {
            let _ = writeln!(self.late, "ALTER TABLE {} FORCE ROW LEVEL SECURITY;", tab.q);
        }
        let cols = tab.usable_cols();
        for _ in 0..self.rng.below(3) {
            let n = self.names.fresh(&mut self.rng, "pol");
            let cmd = *self
                .rng
                .pick(&["ALL", "SELECT", "INSERT", "UPDATE", "DELETE"]);
            let mut s = format!("CREATE POLICY {} ON {}", qi(&n), tab.q);
            if self.rng.pct(30) {
                s.push_str(" AS RESTRICTIVE");
            }
            let _ = write!(s, " FOR {cmd}");
            if self.rng.pct(60) {
                let (a, b) = (self.role(), self.role());
                if a == b {
                    let _ = write!(s, " TO {a}");
                } else {
                    let _ = write!(s, " TO {a}, {b}");
                }
            }
            let mut cond = "true".to_string();
            if !cols.is_empty() {
                let c = *self.rng.pick(&cols);
                let col = tab.cols[c].clone();
                if let Some(p) = self.pred_for(&col.ty, true) {
                    cond = p.sql(&qi(&col.name));
                }
            }
            if cmd != "INSERT" {
                let _ = write!(s, " USING ({cond})");
            }
            if matches!(cmd, "ALL" | "INSERT" | "UPDATE") && self.rng.pct(50) {
                let _ = write!(s, " WITH CHECK ({cond})");
            }
            let _ = writeln!(self.late, "{s};");
            self.comments
                .push(format!("POLICY {} ON {}", qi(&n), tab.q));
        }
    }

    fn statistics(&mut self, t: usize) {
        let tab = self.tables[t].clone();
        if !matches!(tab.kind, Kind::Plain | Kind::Child) {
            return;
        }
        let cols: Vec<usize> = tab
            .indexable_cols()
            .into_iter()
            .filter(|&c| self.has_btree(&tab.cols[c].ty))
            .collect();
        let text: Vec<usize> = cols
            .iter()
            .copied()
            .filter(|&c| self.base_of(&tab.cols[c].ty).is_some_and(B::is_text))
            .collect();
        let mut items = Vec::new();
        if cols.len() >= 2 {
            items.push(qi(&tab.cols[cols[0]].name));
            items.push(qi(&tab.cols[cols[1]].name));
        }
        if self.major >= 14 && !text.is_empty() && self.maybe("statistics_expression", 40) {
            items.push(format!("(lower({}))", qi(&tab.cols[text[0]].name)));
        }
        if items.len() < 2 && !(self.major >= 14 && items.len() == 1 && items[0].starts_with('(')) {
            return;
        }
        if !self.on("extended_statistics") {
            return;
        }
        let (_, q) = self.qname("st");
        let kinds = if items.iter().all(|i| !i.starts_with('(')) || items.len() >= 2 {
            *self.rng.pick(&[
                "",
                " (ndistinct)",
                " (dependencies, mcv)",
                " (ndistinct, dependencies, mcv)",
            ])
        } else {
            ""
        };
        let _ = writeln!(
            self.late,
            "CREATE STATISTICS {q}{kinds} ON {} FROM {};",
            items.join(", "),
            tab.q
        );
        if self.rng.pct(30) {
            let _ = writeln!(
                self.late,
                "ALTER STATISTICS {q} SET STATISTICS {};",
                self.rng.range(0, 500)
            );
        }
        self.comments.push(format!("STATISTICS {q}"));
        self.owners.push(format!("STATISTICS {q}"));
    }

    fn publication(&mut self) {
        let raw = super::names::truncate(
            &format!("pub{}_{}", self.seed, self.names.fresh(&mut self.rng, "p")),
            super::names::MAX_IDENT,
        )
        .to_string();
        let q = qi(&raw);
        let tables: Vec<usize> = (0..self.tables.len())
            .filter(|&t| !self.tables[t].unlogged && self.tables[t].kind != Kind::Partition)
            .collect();
        let via_root = self.rng.pct(40);
        let mut items = Vec::new();
        let mut in_schema = false;
        if self.major >= 15 && self.maybe("publication_schema", 25) {
            items.push(format!("TABLES IN SCHEMA {}", self.schemas[0].q));
            in_schema = true;
        }
        for &t in &tables {
            if !self.rng.pct(50) {
                continue;
            }
            let tab = self.tables[t].clone();
            if in_schema && tab.q.starts_with(&format!("{}.", self.schemas[0].q)) {
                continue;
            }
            // each item says TABLE from 15 on; before, only the first
            // ONLY: a table also publishes its inheritance children, which may be listed
            // with a filter of their own
            let only = if matches!(tab.kind, Kind::Plain | Kind::Child) {
                "ONLY "
            } else {
                ""
            };
            let mut item = if self.major >= 15 || items.is_empty() {
                format!("TABLE {only}{}", tab.q)
            } else {
                format!("{only}{}", tab.q)
            };
            let filters = tab.kind != Kind::Root || via_root;
            if self.major >= 15
                && !in_schema
                && filters
                && self.maybe("publication_column_list", 30)
            {
                let cols = tab.usable_cols();
                let keep: Vec<String> = cols
                    .iter()
                    .filter(|&&c| !matches!(tab.cols[c].kind, ColKind::Generated { .. }))
                    .take(2)
                    .map(|&c| qi(&tab.cols[c].name))
                    .collect();
                if !keep.is_empty() {
                    let _ = write!(item, " ({})", keep.join(", "));
                }
            }
            if self.major >= 15 && filters && self.maybe("publication_row_filter", 30) {
                let c = tab.usable_cols().into_iter().find(|&c| {
                    matches!(tab.cols[c].ty, Ty::Base(b) if b.is_int())
                        && tab.cols[c].kind == ColKind::Plain
                });
                if let Some(c) = c {
                    let _ = write!(item, " WHERE ({} > 0)", qi(&tab.cols[c].name));
                }
            }
            items.push(item);
        }
        if items.is_empty() {
            return;
        }
        let mut opts = Vec::new();
        if self.rng.pct(40) {
            opts.push(format!(
                "publish = {}",
                ql(self
                    .rng
                    .pick::<&str>(&["insert", "insert, update", "delete, truncate"]))
            ));
        }
        if via_root {
            opts.push("publish_via_partition_root = true".into());
        }
        if self.major >= 18 && self.rng.pct(30) {
            opts.push("publish_generated_columns = stored".into());
        }
        let with = if opts.is_empty() {
            String::new()
        } else {
            format!(" WITH ({})", opts.join(", "))
        };
        // publications are per database, not per schema: the name carries the seed
        let _ = writeln!(
            self.late,
            "CREATE PUBLICATION {q} FOR {}{with};",
            items.join(", ")
        );
        self.comments.push(format!("PUBLICATION {q}"));
        self.owners.push(format!("PUBLICATION {q}"));
    }

    /// Functions whose bodies or signatures use the case's tables and types, and
    /// routines of other kinds: overloads, procedures, aggregates, RETURNS TABLE.
    pub(crate) fn functions_on_tables_(&mut self) {
        for _ in 0..self.rng.below(4) {
            let (_, q) = self.qname("fn");
            let tables: Vec<usize> = (0..self.tables.len()).collect();
            let kind = self.rng.below(8);
            let (sql, sig, what) = match kind {
                0 if !tables.is_empty() => {
                    let t = self.tables[*self.rng.pick(&tables)].q.clone();
                    (
                        format!(
                            "CREATE FUNCTION {q}() RETURNS SETOF {t} LANGUAGE sql STABLE AS $gen$ SELECT * FROM {t} $gen$;"
                        ),
                        format!("{q}()"),
                        "FUNCTION",
                    )
                }
                1 if self.major >= 14 && !tables.is_empty() => {
                    self.on("sql_standard_body");
                    let t = self.tables[*self.rng.pick(&tables)].q.clone();
                    (
                        format!(
                            "CREATE FUNCTION {q}(a integer DEFAULT 3) RETURNS bigint LANGUAGE sql STABLE\nBEGIN ATOMIC\n  SELECT count(*) + a FROM {t};\nEND;"
                        ),
                        format!("{q}(integer)"),
                        "FUNCTION",
                    )
                }
                2 => {
                    self.on("procedure");
                    (
                        format!(
                            "CREATE PROCEDURE {q}(INOUT n integer) LANGUAGE plpgsql AS $gen$ BEGIN n := n + 1; END $gen$;"
                        ),
                        format!("{q}(integer)"),
                        "PROCEDURE",
                    )
                }
                3 => {
                    self.on("overloaded_function");
                    (
                        format!(
                            "CREATE FUNCTION {q}(x integer) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $gen$ SELECT 'int' $gen$;\nCREATE FUNCTION {q}(x text, VARIADIC rest text[] DEFAULT '{{}}') RETURNS text LANGUAGE sql IMMUTABLE AS $gen$ SELECT x || cardinality(rest) $gen$;"
                        ),
                        format!("{q}(integer)"),
                        "FUNCTION",
                    )
                }
                4 => {
                    self.on("aggregate");
                    (
                        format!(
                            "CREATE AGGREGATE {q}(integer) (SFUNC = int4pl, STYPE = integer, INITCOND = '0');"
                        ),
                        format!("{q}(integer)"),
                        "AGGREGATE",
                    )
                }
                5 => {
                    let n = self.names.column(&mut self.rng, &[]);
                    (
                        format!(
                            "CREATE FUNCTION {q}(lim integer) RETURNS TABLE ({} integer, t text) LANGUAGE sql STABLE ROWS 3 AS $gen$ SELECT g, g::text FROM generate_series(1, lim) g $gen$;",
                            qi(&n)
                        ),
                        format!("{q}(integer)"),
                        "FUNCTION",
                    )
                }
                6 if !self.comps.is_empty() || !self.enums.is_empty() => {
                    let t = if !self.comps.is_empty() {
                        self.comps[0].q.clone()
                    } else {
                        self.enums[0].q.clone()
                    };
                    (
                        format!(
                            "CREATE FUNCTION {q}(v {t} DEFAULT NULL) RETURNS text LANGUAGE sql IMMUTABLE AS $gen$ SELECT v::text $gen$;"
                        ),
                        format!("{q}({t})"),
                        "FUNCTION",
                    )
                }
                _ => {
                    self.on("function_options");
                    (
                        format!(
                            "CREATE FUNCTION {q}(a bigint, b bigint) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER LEAKPROOF PARALLEL RESTRICTED COST 7 SET search_path = pg_catalog, pg_temp SET work_mem = '1MB' AS $gen$\nBEGIN\n  RETURN a + b;\nEND\n$gen$;"
                        ),
                        format!("{q}(bigint, bigint)"),
                        "FUNCTION",
                    )
                }
            };
            let _ = writeln!(self.late, "{sql}");
            self.comments.push(format!("{what} {sig}"));
            self.owners.push(format!("{what} {sig}"));
            if what != "AGGREGATE" {
                self.free_fns.push(format!("{what} {sig}"));
            }
        }
    }
}
