//! Tables: plain ones with every kind of column and constraint, foreign keys between
//! them (inline, after the data, cycles, NOT VALID over rows that break them),
//! inheritance children, partition trees whose partitions are often created with their
//! columns shuffled and attached; sequences; and the rows of all of them.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::names::{qi, ql};
use super::types::{B, Cmp, Pred, RowCheck, Ty, Val};
use super::{G, GrantTarget, plain_literal};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ColKind {
    Plain,
    /// Values `start + k * step` for the `k`th row, as every insert leaves it out.
    Identity {
        always: bool,
        start: i64,
        step: i64,
    },
    Serial,
    Generated {
        virt: bool,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Col {
    pub(crate) name: String,
    pub(crate) ty: Ty,
    pub(crate) not_null: bool,
    pub(crate) kind: ColKind,
    /// The DEFAULT clause's expression.
    pub(crate) default: Option<String>,
    /// Whether an INSERT may leave the column to its default.
    pub(crate) default_ok: bool,
    /// The default's value, where the generator knows it.
    pub(crate) default_val: Option<Val>,
    /// CHECKs written on the column (table constraints in the catalog).
    pub(crate) checks: Vec<(Option<String>, Pred)>,
    pub(crate) collate: Option<String>,
    /// Dropped after creation: nothing may refer to it.
    pub(crate) drop: bool,
    /// Dropped before the data (else after it).
    pub(crate) drop_early: bool,
    /// Its values are unique (a key, UNIQUE or EXCLUDE with =).
    pub(crate) key: bool,
    /// Part of a foreign key (its values are chosen after every table has rows).
    pub(crate) fk: bool,
    /// A partition key of the table or of one of its partitions.
    pub(crate) part_key: bool,
}

impl Col {
    fn new(name: String, ty: Ty) -> Self {
        Col {
            name,
            ty,
            not_null: false,
            kind: ColKind::Plain,
            default: None,
            default_ok: false,
            default_val: None,
            checks: Vec::new(),
            collate: None,
            drop: false,
            drop_early: false,
            key: false,
            fk: false,
            part_key: false,
        }
    }

    /// Whether other objects (indexes, views, checks…) may refer to the column.
    pub(crate) fn usable(&self) -> bool {
        !self.drop
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Bound {
    /// `FROM (lo) TO (hi)`, `None` for MINVALUE / MAXVALUE.
    Range(Option<i64>, Option<i64>),
    List(Vec<Val>),
    Hash(i64, i64),
    Default,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Strategy {
    Range,
    List,
    Hash,
}

#[derive(Clone, Debug)]
pub(crate) struct Part {
    pub(crate) strategy: Strategy,
    /// The key column, by index into the root's columns.
    pub(crate) key: usize,
    pub(crate) children: Vec<(usize, Bound)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Plain,
    Child,
    Root,
    Partition,
}

#[derive(Clone, Debug)]
pub(crate) struct Fk {
    pub(crate) name: String,
    pub(crate) cols: Vec<usize>,
    pub(crate) target: usize,
    pub(crate) tcols: Vec<usize>,
    /// Written in CREATE TABLE (else added after the data).
    pub(crate) inline: bool,
    pub(crate) not_valid: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Table {
    pub(crate) q: String,
    pub(crate) kind: Kind,
    pub(crate) cols: Vec<Col>,
    /// Table CHECK constraints rows must pass.
    pub(crate) checks: Vec<(Option<String>, RowCheck, bool)>,
    /// Column sets with unique values (PRIMARY KEY, UNIQUE): foreign key targets.
    pub(crate) keys: Vec<Vec<usize>>,
    pub(crate) pk_name: Option<String>,
    pub(crate) fks: Vec<Fk>,
    /// Rows by column (`None`: the server chooses the value).
    pub(crate) rows: Vec<Vec<Option<Val>>>,
    pub(crate) part: Option<Part>,
    pub(crate) unlogged: bool,
    /// An inheritance child reads as part of it: its key values are not unique there.
    pub(crate) has_children: bool,
    pub(crate) taken: Vec<HashSet<String>>,
}

impl Table {
    pub(crate) fn usable_cols(&self) -> Vec<usize> {
        (0..self.cols.len())
            .filter(|&i| self.cols[i].usable())
            .collect()
    }

    /// Columns an index or statistics may use (not virtual generated ones).
    pub(crate) fn indexable_cols(&self) -> Vec<usize> {
        (0..self.cols.len())
            .filter(|&i| {
                self.cols[i].usable()
                    && !matches!(self.cols[i].kind, ColKind::Generated { virt: true })
            })
            .collect()
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.cols.iter().map(|c| c.name.clone()).collect()
    }

    /// Whether rows go in through this table.
    pub(crate) fn takes_rows(&self) -> bool {
        matches!(self.kind, Kind::Plain | Kind::Child | Kind::Root)
    }
}

impl G {
    pub(crate) fn sequences_(&mut self) {
        for _ in 0..self.rng.below(3) {
            if !self.on("sequence") {
                continue;
            }
            let (_, q) = self.qname("seq");
            let inc = *self.rng.pick(&[1, 1, 3, -1, -5]);
            let (min, max) = if inc > 0 {
                (*self.rng.pick(&[1, -50]), *self.rng.pick(&[100, 30000]))
            } else {
                (*self.rng.pick(&[-30000, -100]), *self.rng.pick(&[-1, 50]))
            };
            let start = if inc > 0 { min + 2 } else { max - 2 };
            let unlogged = self.major >= 15 && self.maybe("unlogged_sequence", 20);
            let mut sql = format!(
                "CREATE {}SEQUENCE {q}",
                if unlogged { "UNLOGGED " } else { "" }
            );
            if self.rng.pct(50) {
                let _ = write!(
                    sql,
                    " AS {}",
                    self.rng.pick(&["smallint", "integer", "bigint"])
                );
            }
            let _ = write!(
                sql,
                " INCREMENT BY {inc} MINVALUE {min} MAXVALUE {max} START WITH {start}"
            );
            if self.rng.pct(40) {
                let _ = write!(sql, " CACHE {}", self.rng.range(2, 20));
            }
            if self.rng.pct(30) {
                sql.push_str(" CYCLE");
            }
            let _ = writeln!(self.ddl, "{sql};");
            let lit = ql(&q);
            match self.rng.below(3) {
                0 => {}
                1 => {
                    for _ in 0..self.rng.range(1, 4) {
                        let _ =
                            writeln!(self.ddl, "SELECT nextval({lit}) IS NOT NULL AS advanced;");
                    }
                }
                _ => {
                    let v = if inc > 0 { min + 7 } else { max - 7 };
                    let called = if self.rng.pct(50) { "true" } else { "false" };
                    let _ = writeln!(
                        self.ddl,
                        "SELECT setval({lit}, {v}, {called}) IS NOT NULL AS set;"
                    );
                }
            }
            self.comments.push(format!("SEQUENCE {q}"));
            self.owners.push(format!("SEQUENCE {q}"));
            self.grants.push(GrantTarget {
                kind: "SEQUENCE",
                obj: q.clone(),
                privs: vec!["USAGE", "SELECT", "UPDATE"],
                cols: vec![],
            });
            self.seqs.push(q);
        }
    }

    pub(crate) fn tables_(&mut self) {
        // the key each plain table will have, planned first so that foreign keys can
        // point forwards (added after the data) and make cycles
        let n = 1 + self.rng.below(4);
        let mut plans: Vec<Option<Vec<Ty>>> = Vec::new();
        for _ in 0..n {
            plans.push(if self.rng.pct(75) {
                let k = if self.rng.pct(25) { 2 } else { 1 };
                Some((0..k).map(|_| self.key_type()).collect())
            } else {
                None
            });
        }
        let first = self.tables.len();
        for i in 0..n {
            self.plain_table(first, i, &plans);
        }
        if self.maybe("inheritance", 30) {
            self.child_table();
        }
        for _ in 0..self.rng.below(3) {
            if self.on("partitioned") {
                self.partition_tree();
            }
        }
    }

    /// The type of a column referring to a key of type `t`: the same, unless a domain
    /// of it is NOT NULL (a foreign key column holds NULLs).
    fn fk_type(&self, t: &Ty) -> Ty {
        if self.not_null_domain(t) {
            Ty::Base(self.base_of(t).unwrap_or(B::I4))
        } else {
            t.clone()
        }
    }

    /// A type for a unique key column.
    fn key_type(&mut self) -> Ty {
        let doms: Vec<usize> = (0..self.domains.len())
            .filter(|&d| self.keyable(&Ty::Dom(d)))
            .collect();
        if !doms.is_empty() && self.rng.pct(35) {
            return Ty::Dom(*self.rng.pick(&doms));
        }
        Ty::Base(
            *self
                .rng
                .pick(&[B::I4, B::I8, B::Text, B::Uuid, B::I2, B::I4]),
        )
    }

    /// A payload column: any type, maybe NOT NULL, a DEFAULT, a CHECK.
    fn payload_col(&mut self, taken: &[String]) -> Col {
        let name = self.names.column(&mut self.rng, taken);
        let ty = self.any_type(0);
        let mut c = Col::new(name, ty);
        if self.base_of(&c.ty).is_some_and(B::is_text) && self.rng.pct(20) {
            c.collate = Some(if !self.collations.is_empty() && self.rng.pct(50) {
                self.collations[0].clone()
            } else {
                "\"C\"".into()
            });
        }
        c.not_null = self.rng.pct(20);
        if self.rng.pct(30) {
            if let Some(p) = self.pred_for(&c.ty.clone(), true) {
                let name = if self.rng.pct(50) {
                    Some(self.names.fresh(&mut self.rng, "ck"))
                } else {
                    None
                };
                c.checks.push((name, p));
            }
        }
        if self.rng.pct(30) {
            self.set_default(&mut c);
        }
        c
    }

    fn set_default(&mut self, c: &mut Col) {
        let base = self.base_of(&c.ty);
        let plain_int = matches!(c.ty, Ty::Base(b) if b.is_int()) && c.checks.is_empty();
        match self.rng.below(4) {
            0 if plain_int && !self.seqs.is_empty() => {
                let s = self.seqs[self.rng.below(self.seqs.len())].clone();
                c.default = Some(format!("nextval({}::regclass)", ql(&s)));
                c.default_ok = false;
            }
            1 if base.is_some_and(B::is_int) && matches!(c.ty, Ty::Base(_)) => {
                let b = base.unwrap_or(B::I4);
                let f = self.int_fn(b);
                let mut x = self.rng.range(-20, 20);
                if x < 0 && !self.on("negative_cast_argument") {
                    x = -x;
                }
                let v = Val::Int(self.int_fn_apply(f, x));
                c.default = Some(format!("{}({x}::{})", self.int_fns[f].q, b.sql()));
                c.default_ok = c.checks.iter().all(|(_, p)| p.passes(&v));
                c.default_val = Some(v);
                self.on("function_in_default");
            }
            2 if base == Some(B::Tstz) && matches!(c.ty, Ty::Base(_)) => {
                c.default = Some("now()".into());
                c.default_ok = false;
            }
            _ => {
                let v = self.value(&c.ty.clone(), false);
                if !v.is_null() && c.checks.iter().all(|(_, p)| p.passes(&v)) {
                    c.default = Some(self.render(&c.ty, &v));
                    c.default_ok = true;
                    c.default_val = Some(v);
                }
            }
        }
    }

    fn col_sql(&self, c: &Col) -> String {
        let mut s = format!("{} ", qi(&c.name));
        match &c.kind {
            ColKind::Serial => {
                let t = match self.base_of(&c.ty) {
                    Some(B::I2) => "smallserial",
                    Some(B::I8) => "bigserial",
                    _ => "serial",
                };
                s.push_str(t);
            }
            _ => s.push_str(&self.type_name(&c.ty)),
        }
        if let Some(coll) = &c.collate {
            let _ = write!(s, " COLLATE {coll}");
        }
        if let Some(d) = &c.default {
            if let ColKind::Generated { virt } = c.kind {
                let how = if virt { "VIRTUAL" } else { "STORED" };
                let _ = write!(s, " GENERATED ALWAYS AS ({d}) {how}");
            } else {
                let _ = write!(s, " DEFAULT {d}");
            }
        }
        if let ColKind::Identity {
            always,
            start,
            step,
        } = c.kind
        {
            let _ = write!(
                s,
                " GENERATED {} AS IDENTITY (START WITH {start} INCREMENT BY {step}{})",
                if always { "ALWAYS" } else { "BY DEFAULT" },
                if step < 0 {
                    " MINVALUE -30000 MAXVALUE 30000"
                } else {
                    ""
                }
            );
        }
        if c.not_null && !matches!(c.kind, ColKind::Identity { .. }) {
            s.push_str(" NOT NULL");
        }
        for (name, p) in &c.checks {
            if let Some(n) = name {
                let _ = write!(s, " CONSTRAINT {}", qi(n));
            }
            let _ = write!(s, " CHECK ({})", p.sql(&qi(&c.name)));
        }
        s
    }

    fn plain_table(&mut self, first: usize, i: usize, plans: &[Option<Vec<Ty>>]) {
        let me = first + i;
        let (_, q) = self.qname("tab");
        let mut cols: Vec<Col> = Vec::new();
        let names = |cols: &Vec<Col>| cols.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        let mut keys = Vec::new();
        let mut pk = None;
        // the key
        if let Some(plan) = &plans[i] {
            let mut idx = Vec::new();
            for t in plan {
                let name = self.names.column(&mut self.rng, &names(&cols));
                let mut c = Col::new(name, t.clone());
                c.key = true;
                c.not_null = true;
                if plan.len() == 1 && matches!(t, Ty::Base(b) if b.is_int()) {
                    match self.rng.below(5) {
                        0 if self.on("identity") => {
                            c.kind = ColKind::Identity {
                                always: self.rng.pct(50),
                                start: *self.rng.pick(&[1, 7, 1000]),
                                step: *self.rng.pick(&[1, 3, -2]),
                            };
                        }
                        1 if self.on("serial") => c.kind = ColKind::Serial,
                        _ => {}
                    }
                }
                idx.push(cols.len());
                cols.push(c);
            }
            pk = Some(idx.clone());
            keys.push(idx);
        }
        // more columns
        for _ in 0..1 + self.rng.below(5) {
            let c = self.payload_col(&names(&cols));
            cols.push(c);
        }
        // an identity or serial column that is no key
        if self.rng.pct(20) {
            let name = self.names.column(&mut self.rng, &names(&cols));
            let mut c = Col::new(name, Ty::Base(*self.rng.pick(&[B::I4, B::I8, B::I2])));
            if self.rng.pct(50) && self.on("identity") {
                c.kind = ColKind::Identity {
                    always: self.rng.pct(50),
                    start: 10,
                    step: 10,
                };
                c.not_null = true;
            } else if self.on("serial") {
                c.kind = ColKind::Serial;
                c.not_null = true;
            }
            cols.push(c);
        }
        // a UNIQUE column
        if self.rng.pct(30) {
            let name = self.names.column(&mut self.rng, &names(&cols));
            let t = self.key_type();
            let mut c = Col::new(name, t);
            c.key = true;
            keys.push(vec![cols.len()]);
            cols.push(c);
        }
        // a generated column
        let sources: Vec<usize> = (0..cols.len())
            .filter(|&c| {
                cols[c].kind == ColKind::Plain
                    && matches!(cols[c].ty, Ty::Base(b) if b.is_int() || b.is_text())
            })
            .collect();
        if !sources.is_empty() && self.maybe("generated", 35) {
            let src = *self.rng.pick(&sources);
            let b = self.base_of(&cols[src].ty).unwrap_or(B::I4);
            let virt = self.major >= 18 && self.maybe("generated_virtual", 40);
            let sname = qi(&cols[src].name);
            let expr = if b.is_int() {
                if virt || self.rng.pct(40) {
                    format!("{sname} % 100")
                } else {
                    let f = self.int_fn(b);
                    format!("{}({sname})", self.int_fns[f].q)
                }
            } else if self.rng.pct(50) {
                format!("upper({sname})")
            } else {
                format!("{sname} || ' gen'")
            };
            let name = self.names.column(&mut self.rng, &names(&cols));
            let mut c = Col::new(name, Ty::Base(if b.is_int() { b } else { B::Text }));
            c.kind = ColKind::Generated { virt };
            c.default = Some(expr);
            cols.push(c);
        }
        // a column dropped after creation (before or after the data)
        if self.maybe("dropped_column", 30) {
            let name = self.names.column(&mut self.rng, &names(&cols));
            let ty = self.any_type(0);
            let mut c = Col::new(name, ty);
            c.drop = true;
            c.drop_early = self.rng.pct(50);
            let at = self.rng.below(cols.len() + 1);
            // keys stay where they are: shift key indexes past the insertion point
            for k in keys.iter_mut() {
                for x in k.iter_mut() {
                    if *x >= at {
                        *x += 1;
                    }
                }
            }
            if let Some(p) = pk.as_mut() {
                for x in p.iter_mut() {
                    if *x >= at {
                        *x += 1;
                    }
                }
            }
            cols.insert(at, c);
        }
        // foreign keys: to tables with a planned key (earlier ones inline, this one
        // inline, later ones after the data)
        let mut fks = Vec::new();
        for _ in 0..self.rng.below(3) {
            let targets: Vec<usize> = (0..plans.len()).filter(|&t| plans[t].is_some()).collect();
            if targets.is_empty() || !self.on("foreign_key") {
                break;
            }
            let t = *self.rng.pick(&targets);
            let tys = plans[t].clone().unwrap_or_default();
            let mut fcols = Vec::new();
            for ty in &tys {
                let name = self.names.column(&mut self.rng, &names(&cols));
                let ty = self.fk_type(ty);
                let mut c = Col::new(name, ty);
                c.fk = true;
                fcols.push(cols.len());
                cols.push(c);
            }
            let late = t > i || self.rng.pct(30);
            let not_valid = late && self.maybe("foreign_key_not_valid", 25);
            if t == i {
                self.on("foreign_key_self");
            } else if t > i {
                self.on("foreign_key_forward");
            }
            let name = self.names.fresh(&mut self.rng, "fk");
            fks.push(Fk {
                name,
                cols: fcols,
                target: first + t,
                tcols: Vec::new(),
                inline: !late,
                not_valid,
            });
        }
        // table checks over payload columns
        let mut checks = Vec::new();
        for _ in 0..self.rng.below(3) {
            let cands: Vec<usize> = (0..cols.len())
                .filter(|&c| cols[c].kind == ColKind::Plain && !cols[c].drop && !cols[c].fk)
                .collect();
            if cands.is_empty() {
                break;
            }
            let mut parts = Vec::new();
            for _ in 0..1 + self.rng.below(2) {
                let c = *self.rng.pick(&cands);
                let t = cols[c].ty.clone();
                if self.rng.pct(15) {
                    parts.push((c, Pred::NotNull));
                } else if let Some(p) = self.pred_for(&t, true) {
                    parts.push((c, p));
                }
            }
            if parts.is_empty() {
                continue;
            }
            let name = if self.rng.pct(70) {
                Some(self.names.fresh(&mut self.rng, "ck"))
            } else {
                None
            };
            let no_inherit = self.maybe("check_no_inherit", 10);
            checks.push((
                name,
                RowCheck {
                    parts,
                    any: self.rng.pct(40),
                },
                no_inherit,
            ));
        }
        let unlogged = plans[i].is_none() && self.maybe("unlogged_table", 8);
        let taken = vec![HashSet::new(); cols.len()];
        let pk_name = if pk.is_some() && self.rng.pct(70) {
            Some(self.names.fresh(&mut self.rng, "pk"))
        } else {
            None
        };
        self.tables.push(Table {
            q,
            kind: Kind::Plain,
            cols,
            checks,
            keys,
            pk_name,
            fks,
            rows: Vec::new(),
            part: None,
            unlogged,
            has_children: false,
            taken,
        });
        // the key's target columns are now known for a foreign key to this table
        self.resolve_fks(first);
        self.emit_table(me, pk);
    }

    /// Fills in the target columns of foreign keys whose target table exists.
    fn resolve_fks(&mut self, first: usize) {
        for t in first..self.tables.len() {
            for f in 0..self.tables[t].fks.len() {
                let target = self.tables[t].fks[f].target;
                if target < self.tables.len() && self.tables[t].fks[f].tcols.is_empty() {
                    if let Some(k) = self.tables[target].keys.first().cloned() {
                        self.tables[t].fks[f].tcols = k;
                    }
                }
            }
        }
    }

    fn fk_clause(&mut self, t: usize, f: usize) -> String {
        let fk = self.tables[t].fks[f].clone();
        let target = &self.tables[fk.target];
        let cols = fk
            .cols
            .iter()
            .map(|&c| qi(&self.tables[t].cols[c].name))
            .collect::<Vec<_>>()
            .join(", ");
        let tcols = fk
            .tcols
            .iter()
            .map(|&c| qi(&target.cols[c].name))
            .collect::<Vec<_>>()
            .join(", ");
        let mut s = format!(
            "CONSTRAINT {} FOREIGN KEY ({cols}) REFERENCES {} ({tcols})",
            qi(&fk.name),
            target.q
        );
        if fk.cols.len() > 1 && self.rng.pct(30) {
            s.push_str(" MATCH FULL");
        }
        let actions = [
            "NO ACTION",
            "RESTRICT",
            "CASCADE",
            "SET NULL",
            "SET DEFAULT",
        ];
        if self.rng.pct(60) {
            let a = *self.rng.pick(&actions);
            // On a partitioned table the column list is a PostgreSQL limit (see
            // POSTGRES_HISTORY_LIMITS): each partition's copy keeps the parent's numbers.
            let on_partitions = matches!(self.tables[t].kind, Kind::Root | Kind::Partition);
            if a == "SET NULL"
                && fk.cols.len() > 1
                && self.major >= 15
                && self.rng.pct(50)
                && (!on_partitions || self.on("fk_set_columns_on_partitioned"))
            {
                let c = qi(&self.tables[t].cols[fk.cols[0]].name);
                let _ = write!(s, " ON DELETE SET NULL ({c})");
            } else {
                let _ = write!(s, " ON DELETE {a}");
            }
        }
        if self.rng.pct(30) {
            let _ = write!(s, " ON UPDATE {}", self.rng.pick(&actions));
        }
        if self.maybe("foreign_key_deferrable", 30) {
            s.push_str(if self.rng.pct(50) {
                " DEFERRABLE INITIALLY DEFERRED"
            } else {
                " DEFERRABLE"
            });
        }
        s
    }

    fn emit_table(&mut self, t: usize, pk: Option<Vec<usize>>) {
        let tab = self.tables[t].clone();
        let mut defs: Vec<String> = tab.cols.iter().map(|c| self.col_sql(c)).collect();
        if let Some(pk) = &pk {
            let cols = pk
                .iter()
                .map(|&c| qi(&tab.cols[c].name))
                .collect::<Vec<_>>()
                .join(", ");
            let mut s = String::new();
            if let Some(n) = &tab.pk_name {
                let _ = write!(s, "CONSTRAINT {} ", qi(n));
                self.comments
                    .push(format!("CONSTRAINT {} ON {}", qi(n), tab.q));
            }
            let _ = write!(s, "PRIMARY KEY ({cols})");
            if self.rng.pct(20) {
                let inc: Vec<usize> = tab
                    .indexable_cols()
                    .into_iter()
                    .filter(|c| !pk.contains(c))
                    .collect();
                if !inc.is_empty() {
                    let _ = write!(s, " INCLUDE ({})", qi(&tab.cols[inc[0]].name));
                }
            }
            defs.push(s);
        }
        for k in tab.keys.iter().skip(usize::from(pk.is_some())) {
            let cols = k
                .iter()
                .map(|&c| qi(&tab.cols[c].name))
                .collect::<Vec<_>>()
                .join(", ");
            let n = self.names.fresh(&mut self.rng, "uq");
            self.comments
                .push(format!("CONSTRAINT {} ON {}", qi(&n), tab.q));
            let nnd = if self.major >= 15 && self.maybe("unique_nulls_not_distinct", 25) {
                " NULLS NOT DISTINCT"
            } else {
                ""
            };
            defs.push(format!("CONSTRAINT {} UNIQUE{nnd} ({cols})", qi(&n)));
        }
        for (name, check, no_inherit) in &tab.checks {
            let mut s = String::new();
            if let Some(n) = name {
                let _ = write!(s, "CONSTRAINT {} ", qi(n));
                self.comments
                    .push(format!("CONSTRAINT {} ON {}", qi(n), tab.q));
            }
            let _ = write!(
                s,
                "CHECK ({}){}",
                check.sql(&tab.names()),
                if *no_inherit { " NO INHERIT" } else { "" }
            );
            defs.push(s);
        }
        for c in &tab.cols {
            for (n, _) in &c.checks {
                if let Some(n) = n {
                    self.comments
                        .push(format!("CONSTRAINT {} ON {}", qi(n), tab.q));
                }
            }
        }
        // an EXCLUDE constraint over a unique integer or text column
        let excl: Vec<usize> = tab
            .cols
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.key
                    && !c.fk
                    && self
                        .base_of(&c.ty)
                        .is_some_and(|b| matches!(b, B::I4 | B::I8 | B::Text))
            })
            .map(|(i, _)| i)
            .collect();
        let mut excluded = None;
        if !excl.is_empty() && self.maybe("exclude", 20) {
            let c = excl[0];
            excluded = Some(c);
            let n = self.names.fresh(&mut self.rng, "ex");
            let mut items = vec![format!("{} WITH =", qi(&tab.cols[c].name))];
            let ranges: Vec<usize> = tab
                .cols
                .iter()
                .enumerate()
                .filter(|(_, c)| c.usable() && matches!(c.ty, Ty::Range(_)))
                .map(|(i, _)| i)
                .collect();
            if let Some(&r) = ranges.first() {
                items.push(format!("{} WITH &&", qi(&tab.cols[r].name)));
            }
            defs.push(format!(
                "CONSTRAINT {} EXCLUDE USING gist ({})",
                qi(&n),
                items.join(", ")
            ));
            self.comments
                .push(format!("CONSTRAINT {} ON {}", qi(&n), tab.q));
        }
        for f in 0..tab.fks.len() {
            if tab.fks[f].inline && !tab.fks[f].tcols.is_empty() {
                let clause = self.fk_clause(t, f);
                defs.push(clause);
                let n = qi(&tab.fks[f].name);
                self.comments.push(format!("CONSTRAINT {n} ON {}", tab.q));
            }
        }
        let mut sql = format!(
            "CREATE {}TABLE {} (\n    {}\n)",
            if tab.unlogged { "UNLOGGED " } else { "" },
            tab.q,
            defs.join(",\n    ")
        );
        if self.maybe("storage_parameters", 15) {
            sql.push_str(" WITH (fillfactor = 70, autovacuum_enabled = false)");
        }
        let _ = writeln!(self.ddl, "{sql};");
        self.table_objects(t);
        self.column_options(t, excluded);
        // columns dropped right away; the others after the data
        for c in &tab.cols {
            if c.drop && c.drop_early {
                let _ = writeln!(
                    self.ddl,
                    "ALTER TABLE {} DROP COLUMN {};",
                    tab.q,
                    qi(&c.name)
                );
            } else if c.drop {
                let _ = writeln!(
                    self.late,
                    "ALTER TABLE {} DROP COLUMN {};",
                    tab.q,
                    qi(&c.name)
                );
            }
        }
    }

    /// Comments, owner and privilege targets of table `t` and its columns.
    pub(crate) fn table_objects(&mut self, t: usize) {
        let tab = &self.tables[t];
        self.comments.push(format!("TABLE {}", tab.q));
        let usable: Vec<String> = tab
            .cols
            .iter()
            .filter(|c| c.usable())
            .map(|c| c.name.clone())
            .collect();
        for c in &usable {
            self.comments.push(format!("COLUMN {}.{}", tab.q, qi(c)));
        }
        self.owners.push(format!("TABLE {}", tab.q));
        let mut privs = vec![
            "SELECT",
            "INSERT",
            "UPDATE",
            "DELETE",
            "TRUNCATE",
            "REFERENCES",
            "TRIGGER",
        ];
        if self.major >= 17 {
            privs.push("MAINTAIN");
        }
        self.grants.push(GrantTarget {
            kind: "TABLE",
            obj: tab.q.clone(),
            privs,
            cols: usable,
        });
    }

    /// Per-column settings: statistics targets, storage, n_distinct, compression.
    /// Column settings, made after the table's inline constraints exist. `excluded` is
    /// the column of its EXCLUDE constraint, whose gist index stores another type.
    fn column_options(&mut self, t: usize, excluded: Option<usize>) {
        let tab = self.tables[t].clone();
        for (i, c) in tab.cols.iter().enumerate() {
            if !c.usable() || matches!(c.kind, ColKind::Generated { virt: true }) {
                continue;
            }
            if !self.rng.pct(10) || !self.on("column_options") {
                continue;
            }
            let col = qi(&c.name);
            // Storage set after an index whose key type differs is a PostgreSQL limit
            // (see POSTGRES_HISTORY_LIMITS).
            let varlena = matches!(
                self.base_of(&c.ty),
                Some(B::Text | B::Bytea | B::Jsonb | B::Json | B::Num)
            ) && (excluded != Some(i) || self.on("storage_after_exclusion_index"));
            let what = match self.rng.below(4) {
                0 => format!("SET STATISTICS {}", self.rng.range(0, 1000)),
                1 if varlena => format!("SET STORAGE {}", self.rng.pick(&["EXTERNAL", "MAIN"])),
                2 if varlena && self.major >= 14 => "SET COMPRESSION pglz".to_string(),
                _ => "SET (n_distinct = -0.5)".to_string(),
            };
            let _ = writeln!(self.ddl, "ALTER TABLE {} ALTER COLUMN {col} {what};", tab.q);
        }
        if tab.kind == Kind::Plain && self.maybe("replica_identity", 10) {
            let how = if let (Some(n), true) = (&tab.pk_name, self.rng.pct(50)) {
                format!("USING INDEX {}", qi(n))
            } else {
                (*self.rng.pick(&["FULL", "NOTHING"])).to_string()
            };
            let _ = writeln!(self.ddl, "ALTER TABLE {} REPLICA IDENTITY {how};", tab.q);
        }
    }

    /// An inheritance child of one or two plain tables, with merged and own columns.
    fn child_table(&mut self) {
        let parents: Vec<usize> = (0..self.tables.len())
            .filter(|&t| {
                let tab = &self.tables[t];
                tab.kind == Kind::Plain
                    && !tab.unlogged
                    && tab
                        .cols
                        .iter()
                        .all(|c| c.kind == ColKind::Plain && !c.drop && !c.fk)
            })
            .collect();
        if parents.is_empty() {
            return;
        }
        let mut chosen = vec![*self.rng.pick(&parents)];
        if parents.len() > 1 && self.maybe("inheritance_two_parents", 40) {
            let other = *self.rng.pick(&parents);
            if other != chosen[0] {
                // the same column name in both must have the same type and collation
                let a = &self.tables[chosen[0]];
                let b = &self.tables[other];
                let clash = b.cols.iter().any(|cb| {
                    a.cols.iter().any(|ca| {
                        ca.name == cb.name && (ca.ty != cb.ty || ca.collate != cb.collate)
                    })
                });
                if !clash {
                    chosen.push(other);
                }
            }
        }
        for &p in &chosen {
            self.tables[p].has_children = true;
        }
        let mut cols: Vec<Col> = Vec::new();
        let mut checks = Vec::new();
        for &p in &chosen {
            let ptab = self.tables[p].clone();
            for c in &ptab.cols {
                if let Some(existing) = cols.iter_mut().find(|x| x.name == c.name) {
                    existing.not_null |= c.not_null;
                    existing.checks.extend(c.checks.clone());
                    existing.default = None;
                    existing.default_ok = false;
                    existing.default_val = None;
                    continue;
                }
                let mut nc = c.clone();
                nc.key = false;
                cols.push(nc);
            }
            for (name, chk, no_inherit) in &ptab.checks {
                if *no_inherit {
                    continue;
                }
                let parts = chk
                    .parts
                    .iter()
                    .map(|(c, p)| {
                        let name = &ptab.cols[*c].name;
                        (
                            cols.iter().position(|x| &x.name == name).unwrap_or(0),
                            p.clone(),
                        )
                    })
                    .collect();
                // the same constraint inherited twice is merged
                if !checks
                    .iter()
                    .any(|(n, _, _): &(Option<String>, RowCheck, bool)| n.is_some() && n == name)
                {
                    checks.push((
                        None,
                        RowCheck {
                            parts,
                            any: chk.any,
                        },
                        false,
                    ));
                }
            }
        }
        // two parents defaulting the same column differently leave it without one
        let inherited = cols.len();
        let mut local = Vec::new();
        if self.rng.pct(50) {
            // a merged column: redeclared with a default of its own
            let i = self.rng.below(inherited);
            let c = &mut cols[i];
            if c.checks.is_empty() && matches!(c.ty, Ty::Base(_)) {
                let v = self.value(&c.ty.clone(), false);
                let c = &mut cols[i];
                if !v.is_null() {
                    c.default = Some(self.render(&c.ty, &v));
                    c.default_ok = true;
                    c.default_val = Some(v);
                    local.push(i);
                    self.on("inheritance_merged_column");
                }
            }
        }
        for _ in 0..1 + self.rng.below(2) {
            let names: Vec<String> = cols.iter().map(|c| c.name.clone()).collect();
            let c = self.payload_col(&names);
            local.push(cols.len());
            cols.push(c);
        }
        let (_, q) = self.qname("child");
        let defs = local
            .iter()
            .map(|&i| self.col_sql(&cols[i]))
            .collect::<Vec<_>>();
        let parents_sql = chosen
            .iter()
            .map(|&p| self.tables[p].q.clone())
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            self.ddl,
            "CREATE TABLE {q} (\n    {}\n) INHERITS ({parents_sql});",
            defs.join(",\n    ")
        );
        let taken = vec![HashSet::new(); cols.len()];
        let mut keys = Vec::new();
        let mut pk_name = None;
        // a primary key of its own over an inherited NOT NULL key-like column
        let keyable: Vec<usize> = (0..cols.len())
            .filter(|&i| self.keyable(&cols[i].ty) && cols[i].checks.is_empty())
            .collect();
        if !keyable.is_empty()
            && self.rng.pct(40)
            && (self.major < 18
                || !cols[keyable[0]].not_null
                || self.on("child_pk_inherited_not_null"))
        {
            let k = keyable[0];
            cols[k].key = true;
            cols[k].not_null = true;
            let n = self.names.fresh(&mut self.rng, "pk");
            let _ = writeln!(
                self.ddl,
                "ALTER TABLE {q} ADD CONSTRAINT {} PRIMARY KEY ({});",
                qi(&n),
                qi(&cols[k].name)
            );
            self.comments.push(format!("CONSTRAINT {} ON {q}", qi(&n)));
            keys.push(vec![k]);
            pk_name = Some(n);
        }
        self.tables.push(Table {
            q,
            kind: Kind::Child,
            cols,
            checks,
            keys,
            pk_name,
            fks: Vec::new(),
            rows: Vec::new(),
            part: None,
            unlogged: false,
            has_children: false,
            taken,
        });
        let t = self.tables.len() - 1;
        self.table_objects(t);
    }

    /// A partitioned table with one or two levels of partitions.
    fn partition_tree(&mut self) {
        let strategy = *self
            .rng
            .pick(&[Strategy::Range, Strategy::List, Strategy::Hash]);
        let mut cols = Vec::new();
        let names = |cols: &Vec<Col>| {
            cols.iter()
                .map(|c: &Col| c.name.clone())
                .collect::<Vec<_>>()
        };
        let id_name = self.names.column(&mut self.rng, &[]);
        let mut id = Col::new(id_name, Ty::Base(*self.rng.pick(&[B::I4, B::I8])));
        id.key = true;
        id.not_null = true;
        cols.push(id);
        let k1_ty = match strategy {
            Strategy::List if self.rng.pct(60) => B::Text,
            Strategy::Hash if self.rng.pct(30) => B::Text,
            _ => B::I4,
        };
        let k1_name = self.names.column(&mut self.rng, &names(&cols));
        let mut k1 = Col::new(k1_name, Ty::Base(k1_ty));
        k1.part_key = true;
        cols.push(k1);
        let k2_name = self.names.column(&mut self.rng, &names(&cols));
        let mut k2 = Col::new(k2_name, Ty::Base(B::I4));
        k2.part_key = true;
        cols.push(k2);
        for _ in 0..1 + self.rng.below(3) {
            let mut c = self.payload_col(&names(&cols));
            // partitions created on their own get no defaults from the parent
            c.default_ok = false;
            // and must have the parent's CHECKs by name
            for (n, _) in c.checks.iter_mut() {
                if n.is_none() {
                    *n = Some(self.names.fresh(&mut self.rng, "ck"));
                }
            }
            cols.push(c);
        }
        if self.rng.pct(25) {
            // a foreign key to a plain table with a key
            let targets: Vec<usize> = (0..self.tables.len())
                .filter(|&t| {
                    let tab = &self.tables[t];
                    tab.kind == Kind::Plain && !tab.keys.is_empty() && !tab.unlogged
                })
                .collect();
            if !targets.is_empty() && self.on("foreign_key_from_partitioned") {
                let target = *self.rng.pick(&targets);
                let tcols = self.tables[target].keys[0].clone();
                let mut fcols = Vec::new();
                for &tc in &tcols {
                    let name = self.names.column(&mut self.rng, &names(&cols));
                    let ty = self.fk_type(&self.tables[target].cols[tc].ty.clone());
                    let mut c = Col::new(name, ty);
                    c.fk = true;
                    fcols.push(cols.len());
                    cols.push(c);
                }
                let name = self.names.fresh(&mut self.rng, "fk");
                let fk = Fk {
                    name,
                    cols: fcols,
                    target,
                    tcols,
                    inline: true,
                    not_valid: false,
                };
                let (_, q) = self.qname("part");
                self.partition_root(q, strategy, cols, Some(fk));
                return;
            }
        }
        let (_, q) = self.qname("part");
        self.partition_root(q, strategy, cols, None);
    }

    fn partition_root(
        &mut self,
        q: String,
        strategy: Strategy,
        mut cols: Vec<Col>,
        fk: Option<Fk>,
    ) {
        let with_pk = self.rng.pct(50);
        let sub_levels = strategy != Strategy::Hash && self.maybe("partition_two_levels", 40);
        if with_pk {
            cols[1].not_null = true;
            cols[2].not_null = true;
        }
        let root = self.tables.len();
        let taken = vec![HashSet::new(); cols.len()];
        self.tables.push(Table {
            q: q.clone(),
            kind: Kind::Root,
            cols: cols.clone(),
            checks: Vec::new(),
            keys: Vec::new(),
            pk_name: None,
            fks: fk.into_iter().collect(),
            rows: Vec::new(),
            part: None,
            unlogged: false,
            has_children: false,
            taken,
        });
        let mut defs: Vec<String> = cols.iter().map(|c| self.col_sql(c)).collect();
        if with_pk {
            let n = self.names.fresh(&mut self.rng, "pk");
            defs.push(format!(
                "CONSTRAINT {} PRIMARY KEY ({}, {}, {})",
                qi(&n),
                qi(&cols[0].name),
                qi(&cols[1].name),
                qi(&cols[2].name)
            ));
            self.comments.push(format!("CONSTRAINT {} ON {q}", qi(&n)));
            self.tables[root].pk_name = Some(n);
            self.tables[root].keys.push(vec![0, 1, 2]);
        }
        if !self.tables[root].fks.is_empty() {
            let clause = self.fk_clause(root, 0);
            defs.push(clause);
            let n = qi(&self.tables[root].fks[0].name);
            self.comments.push(format!("CONSTRAINT {n} ON {q}"));
        }
        let _ = writeln!(
            self.ddl,
            "CREATE TABLE {q} (\n    {}\n) PARTITION BY {} ({});",
            defs.join(",\n    "),
            strategy_sql(strategy),
            qi(&cols[1].name)
        );
        self.table_objects(root);
        let part = self.partitions(root, root, strategy, 1, sub_levels);
        self.tables[root].part = Some(part);
    }

    /// The partitions of `parent` (partitioned by `strategy` on root column `key`).
    fn partitions(
        &mut self,
        root: usize,
        parent: usize,
        strategy: Strategy,
        key: usize,
        sub_levels: bool,
    ) -> Part {
        let n = 2 + self.rng.below(3);
        let mut bounds = Vec::new();
        match strategy {
            Strategy::Range => {
                let step = *self.rng.pick(&[10, 100, 1000]);
                let base = self.rng.range(-2, 2) * step;
                let open_low = self.rng.pct(20);
                let open_high = self.rng.pct(20);
                for i in 0..n {
                    let lo = base + i as i64 * step;
                    bounds.push(Bound::Range(
                        if i == 0 && open_low { None } else { Some(lo) },
                        if i == n - 1 && open_high {
                            None
                        } else {
                            Some(lo + step)
                        },
                    ));
                }
                if !open_high && self.maybe("partition_default", 40) {
                    bounds.push(Bound::Default);
                }
            }
            Strategy::List => {
                let text = self.tables[root].cols[key].ty == Ty::Base(B::Text);
                let mut seen = HashSet::new();
                let with_null = self.rng.pct(20);
                for i in 0..n {
                    let mut vals = Vec::new();
                    for j in 0..1 + self.rng.below(3) {
                        let v = if text {
                            let mut t = self.names.text(&mut self.rng);
                            if !seen.insert(t.clone()) {
                                t = format!("v{i}.{j}");
                                seen.insert(t.clone());
                            }
                            Val::Text(t)
                        } else {
                            Val::Int((i * 10 + j) as i64)
                        };
                        vals.push(v);
                    }
                    if with_null && i == 0 && !self.tables[root].cols[key].not_null {
                        vals.push(Val::Null);
                    }
                    bounds.push(Bound::List(vals));
                }
                if self.maybe("partition_default", 40) {
                    bounds.push(Bound::Default);
                }
            }
            Strategy::Hash => {
                for r in 0..n {
                    bounds.push(Bound::Hash(n as i64, r as i64));
                }
            }
        }
        let mut children = Vec::new();
        for b in bounds {
            let sub = sub_levels && !matches!(b, Bound::Default) && self.rng.pct(50);
            let child = self.partition(root, parent, &b, sub);
            children.push((child, b));
        }
        Part {
            strategy,
            key,
            children,
        }
    }

    fn bound_sql(b: &Bound) -> String {
        match b {
            Bound::Range(lo, hi) => format!(
                "FOR VALUES FROM ({}) TO ({})",
                lo.map_or("MINVALUE".into(), |v| v.to_string()),
                hi.map_or("MAXVALUE".into(), |v| v.to_string())
            ),
            Bound::List(vals) => format!(
                "FOR VALUES IN ({})",
                vals.iter()
                    .map(plain_literal)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Bound::Hash(m, r) => format!("FOR VALUES WITH (MODULUS {m}, REMAINDER {r})"),
            Bound::Default => "DEFAULT".into(),
        }
    }

    /// One partition of `parent`: `PARTITION OF`, or a table of its own with the
    /// columns shuffled (and one dropped) attached afterwards. With `sub`, itself
    /// partitioned on the root's third column.
    fn partition(&mut self, root: usize, parent: usize, bound: &Bound, sub: bool) -> usize {
        let (_, q) = self.qname("leaf");
        let parent_q = self.tables[parent].q.clone();
        let root_cols = self.tables[root].cols.clone();
        let sub_strategy = *self
            .rng
            .pick(&[Strategy::Range, Strategy::List, Strategy::Hash]);
        let sub_sql = if sub {
            format!(
                " PARTITION BY {} ({})",
                strategy_sql(sub_strategy),
                qi(&root_cols[2].name)
            )
        } else {
            String::new()
        };
        let shuffled = self.maybe("partition_shuffled", 50);
        let idx = self.tables.len();
        self.tables.push(Table {
            q: q.clone(),
            kind: Kind::Partition,
            cols: root_cols.clone(),
            checks: Vec::new(),
            keys: Vec::new(),
            pk_name: None,
            fks: Vec::new(),
            rows: Vec::new(),
            part: None,
            unlogged: false,
            has_children: false,
            taken: Vec::new(),
        });
        let bound_sql = Self::bound_sql(bound);
        if shuffled {
            let mut order: Vec<usize> = (0..root_cols.len()).collect();
            self.rng.shuffle(&mut order);
            let mut defs: Vec<String> = order
                .iter()
                .map(|&i| {
                    let c = &root_cols[i];
                    let mut s = format!("{} {}", qi(&c.name), self.type_name(&c.ty));
                    if let Some(coll) = &c.collate {
                        let _ = write!(s, " COLLATE {coll}");
                    }
                    if c.not_null {
                        s.push_str(" NOT NULL");
                    }
                    // the parent's CHECKs, which an attached partition must have
                    for (n, p) in &c.checks {
                        if let Some(n) = n {
                            let _ = write!(s, " CONSTRAINT {}", qi(n));
                        }
                        let _ = write!(s, " CHECK ({})", p.sql(&qi(&c.name)));
                    }
                    s
                })
                .collect();
            let junk = if self.maybe("partition_dropped_column", 50) {
                let name = self.names.column(&mut self.rng, &self.tables[root].names());
                let at = self.rng.below(defs.len() + 1);
                defs.insert(at, format!("{} text", qi(&name)));
                Some(name)
            } else {
                None
            };
            let _ = writeln!(
                self.ddl,
                "CREATE TABLE {q} (\n    {}\n){sub_sql};",
                defs.join(",\n    ")
            );
            if let Some(j) = junk {
                let _ = writeln!(self.ddl, "ALTER TABLE {q} DROP COLUMN {};", qi(&j));
            }
        } else {
            let _ = writeln!(
                self.ddl,
                "CREATE TABLE {q} PARTITION OF {parent_q} {bound_sql}{sub_sql};"
            );
        }
        if sub {
            let part = self.partitions(root, idx, sub_strategy, 2, false);
            self.tables[idx].part = Some(part);
        }
        if shuffled {
            let _ = writeln!(
                self.ddl,
                "ALTER TABLE {parent_q} ATTACH PARTITION {q} {bound_sql};"
            );
        }
        // a default of the partition's own
        let payload: Vec<usize> = (3..root_cols.len())
            .filter(|&i| !root_cols[i].fk && root_cols[i].checks.is_empty())
            .collect();
        if !payload.is_empty() && self.maybe("partition_default_value", 25) {
            let c = *self.rng.pick(&payload);
            let v = self.value(&root_cols[c].ty.clone(), false);
            if !v.is_null() {
                let _ = writeln!(
                    self.ddl,
                    "ALTER TABLE {q} ALTER COLUMN {} SET DEFAULT {};",
                    qi(&root_cols[c].name),
                    self.render(&root_cols[c].ty, &v)
                );
            }
        }
        self.comments.push(format!("TABLE {q}"));
        self.owners.push(format!("TABLE {q}"));
        if self.rng.pct(30) {
            self.comments
                .push(format!("COLUMN {q}.{}", qi(&root_cols[0].name)));
        }
        self.grants.push(GrantTarget {
            kind: "TABLE",
            obj: q,
            privs: vec!["SELECT", "INSERT", "DELETE"],
            cols: vec![],
        });
        idx
    }

    // ---- data ----

    pub(crate) fn data_(&mut self) {
        // values of every column but foreign keys first
        for t in 0..self.tables.len() {
            if !self.tables[t].takes_rows() {
                continue;
            }
            let n = *self.rng.pick(&[0, 1, 2, 3, 4, 6]);
            for r in 0..n {
                let row = self.row(t, r);
                self.tables[t].rows.push(row);
            }
        }
        // then foreign keys, from their targets' rows
        for t in 0..self.tables.len() {
            for f in 0..self.tables[t].fks.len() {
                self.fk_values(t, f);
            }
        }
        for t in 0..self.tables.len() {
            self.emit_rows(t);
        }
    }

    fn row(&mut self, t: usize, r: usize) -> Vec<Option<Val>> {
        let tab = self.tables[t].clone();
        for attempt in 0..60 {
            let mut row: Vec<Option<Val>> = Vec::new();
            for (i, c) in tab.cols.iter().enumerate() {
                let v = match &c.kind {
                    ColKind::Identity { start, step, .. } => {
                        Some(Val::Int(start + r as i64 * step))
                    }
                    ColKind::Serial => Some(Val::Int(r as i64 + 1)),
                    ColKind::Generated { .. } => None,
                    ColKind::Plain if c.fk => Some(Val::Null),
                    ColKind::Plain if c.key => {
                        let mut taken = std::mem::take(&mut self.tables[t].taken[i]);
                        let v = self.key_value(&c.ty, r, &mut taken);
                        self.tables[t].taken[i] = taken;
                        Some(v)
                    }
                    // set by the routing below
                    ColKind::Plain if c.part_key => None,
                    ColKind::Plain => {
                        if c.default_ok && self.rng.pct(25) {
                            None
                        } else {
                            let mut v = self.value(&c.ty, !c.not_null);
                            if attempt > 40 {
                                v = self.simple_col_value(c, attempt);
                            }
                            Some(v)
                        }
                    }
                };
                row.push(v);
            }
            if tab.kind == Kind::Root {
                self.route(t, &mut row);
            }
            // a column left to its default holds the default's value
            let row_or_default: Vec<Option<Val>> = row
                .iter()
                .zip(&tab.cols)
                .map(|(v, c)| v.clone().or_else(|| c.default_val.clone()))
                .collect();
            let ok_cols = tab.cols.iter().zip(&row_or_default).all(|(c, v)| match v {
                Some(v) => {
                    c.checks.iter().all(|(_, p)| p.passes(v))
                        && (!c.not_null || !v.is_null())
                        && self.valid(&c.ty, v)
                }
                None => true,
            });
            let full: Vec<Val> = row_or_default
                .iter()
                .map(|v| v.clone().unwrap_or(Val::Null))
                .collect();
            let ok_rows = tab.checks.iter().all(|(_, c, _)| c.passes(&full));
            if ok_cols && ok_rows {
                return row;
            }
        }
        panic!("schemagen seed {}: no row for {}", self.seed, tab.q);
    }

    fn simple_col_value(&mut self, c: &Col, attempt: u32) -> Val {
        if !c.not_null && attempt > 50 {
            return Val::Null;
        }
        self.value(&c.ty, false)
    }

    /// Sets the partition key columns of `row` so that it lands in some partition.
    fn route(&mut self, t: usize, row: &mut [Option<Val>]) {
        let Some(part) = self.tables[t].part.clone() else {
            // a leaf: any value of the third column
            if row[2].is_none() {
                row[2] = Some(Val::Int(self.rng.range(-1000, 1000)));
            }
            return;
        };
        let (child, bound) = part.children[self.rng.below(part.children.len())].clone();
        let text = self.tables[t].cols[part.key].ty == Ty::Base(B::Text);
        let v = match &bound {
            Bound::Range(lo, hi) => {
                let lo = lo.unwrap_or(hi.unwrap_or(0) - 500);
                let hi = hi.unwrap_or(lo + 500);
                Val::Int(self.rng.range(lo, hi - 1))
            }
            Bound::List(vals) => vals[self.rng.below(vals.len())].clone(),
            Bound::Hash(..) => {
                if text {
                    Val::Text(self.names.text(&mut self.rng))
                } else {
                    Val::Int(self.rng.range(-100_000, 100_000))
                }
            }
            Bound::Default => match part.strategy {
                Strategy::Range => {
                    let top = part
                        .children
                        .iter()
                        .filter_map(|(_, b)| match b {
                            Bound::Range(_, Some(h)) => Some(*h),
                            _ => None,
                        })
                        .max()
                        .unwrap_or(0);
                    Val::Int(top + self.rng.range(0, 100))
                }
                _ => {
                    if text {
                        Val::Text(format!("elsewhere {}", self.rng.below(1000)))
                    } else {
                        Val::Int(100_000 + self.rng.range(0, 100))
                    }
                }
            },
        };
        row[part.key] = Some(v);
        if self.tables[child].part.is_some() {
            self.route(child, row);
        } else if row[2].is_none() {
            row[2] = Some(Val::Int(self.rng.range(-1000, 1000)));
        }
    }

    fn fk_values(&mut self, t: usize, f: usize) {
        let fk = self.tables[t].fks[f].clone();
        if fk.tcols.is_empty() {
            return;
        }
        let target_rows = self.tables[fk.target].rows.clone();
        for r in 0..self.tables[t].rows.len() {
            // an inline self-reference may only point at rows before it
            let pool: Vec<&Vec<Option<Val>>> = if fk.target == t && fk.inline {
                target_rows.iter().take(r).collect()
            } else {
                target_rows.iter().collect()
            };
            let usable: Vec<&Vec<Option<Val>>> = pool
                .into_iter()
                .filter(|row| {
                    fk.tcols
                        .iter()
                        .all(|&c| matches!(&row[c], Some(v) if !v.is_null()))
                })
                .collect();
            let violate = fk.not_valid && r == 0;
            let vals: Vec<Val> = if violate {
                fk.tcols
                    .iter()
                    .map(|&c| {
                        let ty = self.tables[fk.target].cols[c].ty.clone();
                        let mut taken = self.tables[fk.target].taken[c].clone();
                        self.key_value(&ty, 900 + r, &mut taken)
                    })
                    .collect()
            } else if usable.is_empty() || self.rng.pct(20) {
                fk.tcols.iter().map(|_| Val::Null).collect()
            } else {
                let row = usable[self.rng.below(usable.len())];
                fk.tcols
                    .iter()
                    .map(|&c| row[c].clone().unwrap_or(Val::Null))
                    .collect()
            };
            for (i, &c) in fk.cols.iter().enumerate() {
                self.tables[t].rows[r][c] = Some(vals[i].clone());
            }
        }
    }

    fn emit_rows(&mut self, t: usize) {
        let tab = self.tables[t].clone();
        if tab.rows.is_empty() {
            return;
        }
        let cols: Vec<usize> = (0..tab.cols.len())
            .filter(|&c| {
                !matches!(
                    tab.cols[c].kind,
                    ColKind::Generated { .. } | ColKind::Identity { .. } | ColKind::Serial
                ) && (!tab.cols[c].drop || !tab.cols[c].drop_early)
            })
            .collect();
        let list = cols
            .iter()
            .map(|&c| qi(&tab.cols[c].name))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = tab
            .rows
            .iter()
            .map(|row| {
                let vals = cols
                    .iter()
                    .map(|&c| match &row[c] {
                        Some(v) => self.render(&tab.cols[c].ty, v),
                        None => "DEFAULT".into(),
                    })
                    .collect::<Vec<_>>();
                format!("({})", vals.join(", "))
            })
            .collect::<Vec<_>>();
        if cols.is_empty() {
            for _ in &tab.rows {
                let _ = writeln!(self.data, "INSERT INTO {} DEFAULT VALUES;", tab.q);
            }
        } else {
            let _ = writeln!(
                self.data,
                "INSERT INTO {} ({list}) VALUES\n  {};",
                tab.q,
                rows.join(",\n  ")
            );
        }
    }

    /// After the data: NOT VALID checks and domain constraints over rows that break
    /// them, foreign keys (cycles, NOT VALID).
    pub(crate) fn constraints_after_data(&mut self) {
        for t in 0..self.tables.len() {
            for f in 0..self.tables[t].fks.len() {
                let fk = self.tables[t].fks[f].clone();
                if fk.inline || fk.tcols.is_empty() {
                    continue;
                }
                let clause = self.fk_clause(t, f);
                let _ = writeln!(
                    self.late,
                    "ALTER TABLE {} ADD {clause}{};",
                    self.tables[t].q,
                    if fk.not_valid { " NOT VALID" } else { "" }
                );
                self.comments.push(format!(
                    "CONSTRAINT {} ON {}",
                    qi(&fk.name),
                    self.tables[t].q
                ));
            }
        }
        for t in 0..self.tables.len() {
            let tab = self.tables[t].clone();
            if !matches!(tab.kind, Kind::Plain | Kind::Child) || !self.rng.pct(40) {
                continue;
            }
            // a value some row holds, which the new constraint forbids
            let mut found = None;
            for row in &tab.rows {
                for (c, v) in row.iter().enumerate() {
                    if tab.cols[c].drop || matches!(tab.cols[c].kind, ColKind::Generated { .. }) {
                        continue;
                    }
                    if let Some(v @ (Val::Int(_) | Val::Text(_))) = v {
                        if self.base_of(&tab.cols[c].ty).is_some() {
                            found = Some((c, v.clone()));
                        }
                    }
                }
            }
            let Some((c, v)) = found else { continue };
            if !self.on("check_not_valid") {
                continue;
            }
            let p = match v {
                Val::Int(i) => Pred::Int(Cmp::Ne, i),
                Val::Text(s) => Pred::TextNe(s),
                _ => continue,
            };
            let n = self.names.fresh(&mut self.rng, "nv");
            let _ = writeln!(
                self.late,
                "ALTER TABLE {} ADD CONSTRAINT {} CHECK ({}) NOT VALID;",
                tab.q,
                qi(&n),
                p.sql(&qi(&tab.cols[c].name))
            );
            self.comments
                .push(format!("CONSTRAINT {} ON {}", qi(&n), tab.q));
        }
        if self.major >= 18 {
            for t in 0..self.tables.len() {
                let tab = self.tables[t].clone();
                if tab.kind != Kind::Plain {
                    continue;
                }
                let c = (0..tab.cols.len()).find(|&c| {
                    tab.cols[c].usable()
                        && !tab.cols[c].not_null
                        && tab.cols[c].kind == ColKind::Plain
                        && tab.rows.iter().any(|r| r[c] == Some(Val::Null))
                });
                if let Some(c) = c {
                    if self.maybe("not_null_not_valid", 30) {
                        let n = self.names.fresh(&mut self.rng, "nn");
                        let _ = writeln!(
                            self.late,
                            "ALTER TABLE {} ADD CONSTRAINT {} NOT NULL {} NOT VALID;",
                            tab.q,
                            qi(&n),
                            qi(&tab.cols[c].name)
                        );
                        self.comments
                            .push(format!("CONSTRAINT {} ON {}", qi(&n), tab.q));
                    }
                }
            }
        }
        // a NOT VALID domain constraint that some row breaks
        let mut cands = Vec::new();
        for tab in &self.tables {
            for row in &tab.rows {
                for (c, v) in row.iter().enumerate() {
                    if let (Ty::Dom(d), Some(v @ (Val::Int(_) | Val::Text(_)))) =
                        (&tab.cols[c].ty, v)
                    {
                        if !tab.cols[c].drop {
                            cands.push((*d, v.clone()));
                        }
                    }
                }
            }
        }
        if !cands.is_empty() && self.maybe("domain_not_valid", 50) {
            let (d, v) = cands[self.rng.below(cands.len())].clone();
            let p = match v {
                Val::Int(i) => Pred::Int(Cmp::Ne, i),
                Val::Text(s) => Pred::TextNe(s),
                _ => return,
            };
            let n = self.names.fresh(&mut self.rng, "dnv");
            let q = self.domains[d].q.clone();
            let _ = writeln!(
                self.late,
                "ALTER DOMAIN {q} ADD CONSTRAINT {} CHECK ({}) NOT VALID;",
                qi(&n),
                p.sql("VALUE")
            );
            self.comments
                .push(format!("CONSTRAINT {} ON DOMAIN {q}", qi(&n)));
        }
    }
}

fn strategy_sql(s: Strategy) -> &'static str {
    match s {
        Strategy::Range => "RANGE",
        Strategy::List => "LIST",
        Strategy::Hash => "HASH",
    }
}
