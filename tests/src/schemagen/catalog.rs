//! Types (enums, ranges, domains, composites, collations), the functions that checks,
//! defaults and expressions call, and values: generated, judged and written as SQL.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::names::{AWKWARD_TEXT, MAX_IDENT, qi, ql, truncate};
use super::types::{B, Cmp, Pred, Ty, Val};
use super::{Comp, Domain, Enum, G, GrantTarget, IntFn, Range};

/// Day `n` after 2000-01-01 as `YYYY-MM-DD` (days-from-civil, inverted).
pub(crate) fn date(n: i64) -> String {
    let z = n + 10957 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

impl G {
    pub(crate) fn types_(&mut self) {
        if self.maybe("collation", 15) {
            let (_, q) = self.qname("coll");
            let how = *self.rng.pick(&[
                "(locale = 'C')",
                "(locale = 'POSIX')",
                "(provider = icu, locale = 'und')",
                "(provider = icu, locale = 'de-DE')",
            ]);
            let _ = writeln!(self.ddl, "CREATE COLLATION {q} {how};");
            self.comments.push(format!("COLLATION {q}"));
            self.owners.push(format!("COLLATION {q}"));
            self.collations.push(q);
        }
        for _ in 0..self.rng.below(3) {
            if self.on("enum") {
                self.enum_();
            }
        }
        for _ in 0..self.rng.below(3) {
            if self.on("range") {
                self.range_();
            }
        }
        for _ in 0..1 + self.rng.below(4) {
            self.domain_(false);
        }
        for _ in 0..self.rng.below(4) {
            if self.on("composite") {
                self.composite_();
            }
        }
        for _ in 0..self.rng.below(3) {
            self.domain_(true);
        }
    }

    fn enum_(&mut self) {
        let (_, q) = self.qname("enum");
        let mut labels: Vec<String> = Vec::new();
        for i in 0..1 + self.rng.below(5) {
            let mut l = self.names.text(&mut self.rng);
            if l.is_empty() || labels.contains(&l) {
                l = format!("label {i}");
            }
            labels.push(truncate(&l, MAX_IDENT).to_string());
        }
        let mut seen = HashSet::new();
        labels.retain(|l| seen.insert(l.clone()));
        let list = labels.iter().map(|l| ql(l)).collect::<Vec<_>>().join(", ");
        let _ = writeln!(self.ddl, "CREATE TYPE {q} AS ENUM ({list});");
        if self.maybe("enum_add_value", 40) {
            let new = format!("added {}", self.rng.below(1000));
            if !labels.contains(&new) {
                let at = self.rng.below(labels.len());
                let before = self.rng.pct(50);
                let _ = writeln!(
                    self.ddl,
                    "ALTER TYPE {q} ADD VALUE {} {} {};",
                    ql(&new),
                    if before { "BEFORE" } else { "AFTER" },
                    ql(&labels[at])
                );
                labels.insert(if before { at } else { at + 1 }, new);
            }
        }
        if self.maybe("enum_rename_value", 20) {
            let at = self.rng.below(labels.len());
            let new = format!("renamed {}", self.rng.below(1000));
            if !labels.contains(&new) {
                let _ = writeln!(
                    self.ddl,
                    "ALTER TYPE {q} RENAME VALUE {} TO {};",
                    ql(&labels[at]),
                    ql(&new)
                );
                labels[at] = new;
            }
        }
        self.type_objects(&q, "TYPE");
        self.enums.push(Enum { q, labels });
    }

    /// Comment, owner and USAGE targets of a type.
    fn type_objects(&mut self, q: &str, kind: &'static str) {
        self.comments.push(format!("{kind} {q}"));
        self.owners.push(format!("{kind} {q}"));
        self.grants.push(GrantTarget {
            kind: "TYPE",
            obj: q.to_string(),
            privs: vec!["USAGE"],
            cols: vec![],
        });
    }

    fn range_(&mut self) {
        let (raw, q) = self.qname("rng");
        let sub = *self.rng.pick(&[B::I4, B::I8, B::Date]);
        let mut opts = vec![format!("SUBTYPE = {}", sub.sql())];
        if self.rng.pct(40) {
            opts.push(format!(
                "SUBTYPE_DIFF = {}",
                match sub {
                    B::I4 => "int4range_subdiff",
                    B::I8 => "int8range_subdiff",
                    _ => "daterange_subdiff",
                }
            ));
        }
        let mut multi = None;
        if self.major >= 14 {
            if raw.len() + 11 > MAX_IDENT || self.maybe("multirange_named", 40) {
                let (_, mq) = self.qname("multi");
                opts.push(format!("MULTIRANGE_TYPE_NAME = {mq}"));
                multi = Some(mq);
            } else {
                multi = Some(G::sibling(&q, &format!("{raw}_multirange"), &self.schemas));
            }
        }
        let _ = writeln!(self.ddl, "CREATE TYPE {q} AS RANGE ({});", opts.join(", "));
        self.type_objects(&q, "TYPE");
        if let Some(m) = &multi {
            if self.rng.pct(30) {
                self.comments.push(format!("TYPE {m}"));
            }
        }
        self.ranges.push(Range { q, sub, multi });
    }

    /// A type for a column, attribute or domain base: built-in or one of the case's.
    pub(crate) fn any_type(&mut self, depth: u32) -> Ty {
        loop {
            let w = [
                30,
                if self.domains.is_empty() { 0 } else { 25 },
                if self.comps.is_empty() || depth > 1 {
                    0
                } else {
                    10
                },
                if self.enums.is_empty() { 0 } else { 8 },
                if self.ranges.is_empty() { 0 } else { 6 },
                if self.ranges.is_empty() || self.major < 14 {
                    0
                } else {
                    3
                },
                if depth > 0 { 0 } else { 8 },
            ];
            let t = match self.rng.weighted(&w) {
                0 => Ty::Base(*self.rng.pick(&B::ALL)),
                1 => Ty::Dom(self.rng.below(self.domains.len())),
                2 => Ty::Comp(self.rng.below(self.comps.len())),
                3 => Ty::Enum(self.rng.below(self.enums.len())),
                4 => Ty::Range(self.rng.below(self.ranges.len())),
                5 => Ty::Multi(self.rng.below(self.ranges.len())),
                _ => {
                    let inner = self.any_type(depth + 1);
                    if matches!(inner, Ty::Arr(_)) || self.is_array_domain(&inner) {
                        continue;
                    }
                    Ty::Arr(Box::new(inner))
                }
            };
            return t;
        }
    }

    fn is_array_domain(&self, t: &Ty) -> bool {
        match t {
            Ty::Dom(d) => {
                matches!(self.domains[*d].base, Ty::Arr(_))
                    || self.is_array_domain(&self.domains[*d].base)
            }
            _ => false,
        }
    }

    /// The built-in type under any domains.
    pub(crate) fn base_of(&self, t: &Ty) -> Option<B> {
        match t {
            Ty::Base(b) => Some(*b),
            Ty::Dom(d) => self.base_of(&self.domains[*d].base),
            _ => None,
        }
    }

    /// Whether a domain on the way down to the built-in type is NOT NULL.
    pub(crate) fn not_null_domain(&self, t: &Ty) -> bool {
        match t {
            Ty::Dom(d) => self.domains[*d].not_null || self.not_null_domain(&self.domains[*d].base),
            _ => false,
        }
    }

    /// The type under any domains.
    pub(crate) fn strip(&self, t: &Ty) -> Ty {
        match t {
            Ty::Dom(d) => self.strip(&self.domains[*d].base),
            t => t.clone(),
        }
    }

    /// Whether values of `t` have a btree opclass (keys, statistics, btree indexes).
    pub(crate) fn has_btree(&self, t: &Ty) -> bool {
        match self.strip(t) {
            Ty::Base(b) => b.has_btree(),
            Ty::Comp(c) => self.comps[c].attrs.iter().all(|(_, t)| self.has_btree(t)),
            Ty::Arr(t) => self.has_btree(&t),
            _ => true,
        }
    }

    /// Whether `t` can hold a unique key: an integer, text or uuid under any domains.
    pub(crate) fn keyable(&self, t: &Ty) -> bool {
        match t {
            Ty::Base(b) => b.keyable(),
            Ty::Dom(d) => self.keyable(&self.domains[*d].base),
            _ => false,
        }
    }

    fn domain_(&mut self, over_composite: bool) {
        let base = if over_composite {
            let w = [
                if self.comps.is_empty() { 0 } else { 3 },
                2,
                if self.domains.is_empty() { 0 } else { 2 },
            ];
            match self.rng.weighted(&w) {
                0 => Ty::Comp(self.rng.below(self.comps.len())),
                1 => Ty::Arr(Box::new(Ty::Base(*self.rng.pick(&[B::I4, B::Text])))),
                _ => Ty::Dom(self.rng.below(self.domains.len())),
            }
        } else if !self.domains.is_empty() && self.rng.pct(30) {
            Ty::Dom(self.rng.below(self.domains.len()))
        } else {
            Ty::Base(*self.rng.pick(&B::ALL))
        };
        if !self.on(if over_composite {
            "domain_over_composite"
        } else {
            "domain"
        }) {
            return;
        }
        let (raw, q) = self.qname("dom");
        let mut sql = format!("CREATE DOMAIN {q} AS {}", self.type_name(&base));
        if self.base_of(&base).is_some_and(B::is_text)
            && !self.collations.is_empty()
            && self.rng.pct(30)
        {
            let c = self.collations[0].clone();
            let _ = write!(sql, " COLLATE {c}");
        }
        let not_null = self.rng.pct(25);
        let mut checks = Vec::new();
        let mut clauses = Vec::new();
        for _ in 0..self.rng.below(3) {
            if let Some(p) = self.pred_for(&base, true) {
                let c = if self.rng.pct(60) {
                    let n = qi(&self.names.fresh(&mut self.rng, "dc"));
                    self.comments.push(format!("CONSTRAINT {n} ON DOMAIN {q}"));
                    format!(" CONSTRAINT {n} CHECK ({})", p.sql("VALUE"))
                } else {
                    format!(" CHECK ({})", p.sql("VALUE"))
                };
                clauses.push(c);
                checks.push(p);
            }
        }
        let dom = Domain {
            q: q.clone(),
            base: base.clone(),
            not_null,
            checks,
        };
        self.domains.push(dom);
        let me = Ty::Dom(self.domains.len() - 1);
        if self.rng.pct(35) {
            let v = self.value(&me, false);
            if !v.is_null() {
                let _ = write!(sql, " DEFAULT {}", self.render(&base, &v));
            }
        }
        if not_null {
            if self.major >= 17 && self.rng.pct(50) {
                let n = self.names.fresh(&mut self.rng, "dnn");
                let _ = write!(sql, " CONSTRAINT {} NOT NULL", qi(&n));
                self.comments
                    .push(format!("CONSTRAINT {} ON DOMAIN {q}", qi(&n)));
            } else {
                sql.push_str(" NOT NULL");
            }
        }
        for c in clauses {
            sql.push_str(&c);
        }
        let _ = writeln!(self.ddl, "{sql};");
        let _ = raw;
        self.type_objects(&q, "DOMAIN");
    }

    fn composite_(&mut self) {
        let (_, q) = self.qname("comp");
        let mut attrs: Vec<(String, super::types::Ty)> = Vec::new();
        let mut taken = Vec::new();
        for _ in 0..1 + self.rng.below(4) {
            let name = self.names.column(&mut self.rng, &taken);
            taken.push(name.clone());
            let t = self.any_type(1);
            attrs.push((name, t));
        }
        let list = attrs
            .iter()
            .map(|(n, t)| {
                let coll = if self.base_of(t).is_some_and(B::is_text) {
                    " COLLATE \"C\""
                } else {
                    ""
                };
                format!("{} {}{coll}", qi(n), self.type_name(t))
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(self.ddl, "CREATE TYPE {q} AS ({list});");
        if attrs.len() > 1 && self.maybe("composite_drop_attribute", 25) {
            let i = self.rng.below(attrs.len());
            let (n, _) = attrs.remove(i);
            let _ = writeln!(self.ddl, "ALTER TYPE {q} DROP ATTRIBUTE {};", qi(&n));
        }
        if self.maybe("composite_add_attribute", 20) {
            let name = self.names.column(&mut self.rng, &taken);
            let t = Ty::Base(*self.rng.pick(&[B::I4, B::Text, B::Jsonb]));
            let _ = writeln!(
                self.ddl,
                "ALTER TYPE {q} ADD ATTRIBUTE {} {};",
                qi(&name),
                self.type_name(&t)
            );
            attrs.push((name, t));
        }
        for (n, _) in &attrs {
            self.comments.push(format!("COLUMN {q}.{}", qi(n)));
        }
        self.type_objects(&q, "TYPE");
        self.comps.push(Comp { q, attrs });
    }

    pub(crate) fn type_name(&self, t: &Ty) -> String {
        match t {
            Ty::Base(b) => b.sql().to_string(),
            Ty::Dom(d) => self.domains[*d].q.clone(),
            Ty::Comp(c) => self.comps[*c].q.clone(),
            Ty::Enum(e) => self.enums[*e].q.clone(),
            Ty::Range(r) => self.ranges[*r].q.clone(),
            Ty::Multi(r) => self.ranges[*r].multi.clone().unwrap_or_default(),
            Ty::Arr(t) => format!("{}[]", self.type_name(t)),
        }
    }

    /// A condition values of `t` can be checked against, maybe through a function of
    /// the case; `None` when the model has none for the type.
    pub(crate) fn pred_for(&mut self, t: &Ty, allow_fn: bool) -> Option<Pred> {
        let p = match self.strip(t) {
            Ty::Base(b) if b.is_int() => match self.rng.below(5) {
                0 => Pred::Int(Cmp::Gt, self.rng.range(-100, 0)),
                4 => Pred::Int(Cmp::Ge, self.rng.range(-100, 1)),
                1 => Pred::Int(Cmp::Lt, self.rng.range(100, 30000)),
                2 => Pred::Int(Cmp::Ne, self.rng.range(-5, 50)),
                _ => {
                    let m = self.rng.range(2, 7);
                    Pred::ModNe(m, self.rng.range(0, m - 1))
                }
            },
            Ty::Base(b) if b.is_text() => {
                if self.rng.pct(50) {
                    Pred::LenLe(self.rng.below(30) + 3)
                } else {
                    Pred::TextNe((*self.rng.pick(AWKWARD_TEXT)).to_string())
                }
            }
            Ty::Comp(c) => {
                let attrs = self.comps[c].attrs.clone();
                let usable: Vec<usize> = (0..attrs.len())
                    .filter(|&i| {
                        self.base_of(&attrs[i].1)
                            .is_some_and(|b| b.is_int() || b.is_text())
                    })
                    .collect();
                if usable.is_empty() {
                    return None;
                }
                let i = *self.rng.pick(&usable);
                let inner = self.pred_for(&attrs[i].1, false)?;
                return Some(Pred::Attr(i, attrs[i].0.clone(), Box::new(inner)));
            }
            Ty::Arr(_) => return Some(Pred::Card(self.rng.range(2, 6))),
            _ => return None,
        };
        let b = self.base_of(t)?;
        let p = if self.rng.pct(10) {
            // either of two conditions
            let other = self.pred_for(&Ty::Base(b), false).unwrap_or(Pred::NotNull);
            Pred::Or(Box::new(p), Box::new(other))
        } else {
            p
        };
        if allow_fn && self.maybe("function_in_check", 30) {
            return Some(self.pred_fn(b, p));
        }
        Some(p)
    }

    /// A boolean function of the case whose body is `p` on its one parameter.
    fn pred_fn(&mut self, b: B, p: Pred) -> Pred {
        let (raw, q) = self.qname("ok");
        let param = if self.rng.pct(30) {
            self.names.column(&mut self.rng, &[])
        } else {
            "x".to_string()
        };
        let strict = self.rng.pct(40);
        let body = p.sql(&qi(&param));
        let attrs = format!(
            "IMMUTABLE{}{}",
            if strict { " STRICT" } else { "" },
            if self.rng.pct(30) {
                " PARALLEL SAFE"
            } else {
                ""
            }
        );
        let sig = format!("{q}({} {})", qi(&param), b.sql());
        let style = self.rng.below(if self.major >= 14 { 4 } else { 2 });
        let sql = match style {
            0 => format!(
                "CREATE FUNCTION {sig} RETURNS boolean LANGUAGE sql {attrs} AS $gen$ SELECT {body} $gen$;"
            ),
            1 => format!(
                "CREATE FUNCTION {sig} RETURNS boolean LANGUAGE plpgsql {attrs} AS $gen$\nBEGIN\n  RETURN {body};\nEND\n$gen$;"
            ),
            2 => {
                self.on("sql_standard_body");
                format!("CREATE FUNCTION {sig} RETURNS boolean LANGUAGE sql {attrs} RETURN {body};")
            }
            _ => {
                self.on("sql_standard_body");
                format!(
                    "CREATE FUNCTION {sig} RETURNS boolean LANGUAGE sql {attrs}\nBEGIN ATOMIC\n  SELECT {body};\nEND;"
                )
            }
        };
        let _ = writeln!(self.ddl, "{sql}");
        let fsig = format!("FUNCTION {q}({})", b.sql());
        self.comments.push(fsig.clone());
        self.owners.push(fsig);
        self.pred_fn_count += 1;
        let _ = raw;
        Pred::Call {
            func: q,
            strict,
            inner: Box::new(p),
        }
    }

    /// An IMMUTABLE integer function of the case for type `b` (made on first use).
    pub(crate) fn int_fn(&mut self, b: B) -> usize {
        if let Some(i) = self.int_fns.iter().position(|f| f.arg == b) {
            if self.rng.pct(70) {
                return i;
            }
        }
        self.on("immutable_function");
        let (_, q) = self.qname("f");
        let mul = self.rng.range(1, 9);
        let add = self.rng.range(-50, 50);
        let t = b.sql();
        let body = format!("(x % 1000) * {mul} + ({add})");
        let sql = match self.rng.below(if self.major >= 14 { 3 } else { 2 }) {
            0 => format!(
                "CREATE FUNCTION {q}(x {t}) RETURNS {t} LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $gen$ SELECT ({body})::{t} $gen$;"
            ),
            1 => format!(
                "CREATE FUNCTION {q}(x {t}) RETURNS {t} LANGUAGE plpgsql IMMUTABLE STRICT AS $gen$ BEGIN RETURN ({body})::{t}; END $gen$;"
            ),
            _ => format!(
                "CREATE FUNCTION {q}(x {t}) RETURNS {t} LANGUAGE sql IMMUTABLE RETURN ({body})::{t};"
            ),
        };
        let _ = writeln!(self.ddl, "{sql}");
        let fsig = format!("FUNCTION {q}({t})");
        self.comments.push(fsig.clone());
        self.owners.push(fsig);
        self.int_fns.push(IntFn {
            q,
            arg: b,
            mul,
            add,
        });
        self.int_fns.len() - 1
    }

    /// `f(x)` of the integer function `i`.
    pub(crate) fn int_fn_apply(&self, i: usize, x: i64) -> i64 {
        let f = &self.int_fns[i];
        (x % 1000) * f.mul + f.add
    }

    // ---- values ----

    /// A value of `t` that passes every constraint of its domains; NULL only when
    /// `nullable`.
    pub(crate) fn value(&mut self, t: &Ty, nullable: bool) -> Val {
        for attempt in 0..25 {
            let v = if nullable && self.rng.pct(12) {
                Val::Null
            } else {
                self.raw_value(t, attempt)
            };
            if (nullable || !v.is_null()) && self.valid(t, &v) {
                return v;
            }
        }
        for k in 0..500 {
            let v = self.simple_value(t, k);
            if (nullable || !v.is_null()) && self.valid(t, &v) {
                return v;
            }
        }
        Val::Null
    }

    fn raw_value(&mut self, t: &Ty, attempt: u32) -> Val {
        match t {
            Ty::Base(b) => {
                if attempt > 15 {
                    self.simple_value(t, attempt as usize)
                } else {
                    self.base_value(*b)
                }
            }
            Ty::Dom(d) => {
                let base = self.domains[*d].base.clone();
                let nn = self.domains[*d].not_null;
                self.value(&base, !nn)
            }
            Ty::Comp(c) => {
                let attrs = self.comps[*c].attrs.clone();
                Val::Row(attrs.iter().map(|(_, t)| self.value(t, true)).collect())
            }
            Ty::Enum(e) => Val::Enum(self.rng.below(self.enums[*e].labels.len())),
            Ty::Range(_) => {
                if self.rng.pct(15) {
                    Val::Range(None)
                } else {
                    let lo = self.rng.range(-1000, 1000);
                    Val::Range(Some((lo, lo + self.rng.range(1, 500))))
                }
            }
            Ty::Multi(_) => {
                let mut v = Vec::new();
                let mut at = self.rng.range(-100, 100);
                for _ in 0..self.rng.below(3) {
                    let len = self.rng.range(1, 20);
                    v.push((at, at + len));
                    at += len + self.rng.range(1, 20);
                }
                Val::Multi(v)
            }
            Ty::Arr(inner) => {
                let n = self.rng.below(4);
                Val::Arr((0..n).map(|_| self.value(inner, true)).collect())
            }
        }
    }

    /// The `k`th of a list of plain values: what a value falls back to.
    fn simple_value(&self, t: &Ty, k: usize) -> Val {
        match t {
            Ty::Base(b) if b.is_int() => Val::Int(k as i64 + 1),
            Ty::Base(b) if b.is_text() => Val::Text(format!("s{k}")),
            Ty::Base(b) => Val::Lit(simple_literal(*b).to_string()),
            Ty::Dom(d) => self.simple_value(&self.domains[*d].base, k),
            Ty::Comp(c) => Val::Row(
                self.comps[*c]
                    .attrs
                    .iter()
                    .map(|(_, t)| self.simple_value(t, k))
                    .collect(),
            ),
            Ty::Enum(_) => Val::Enum(0),
            Ty::Range(_) => Val::Range(Some((k as i64, k as i64 + 3))),
            Ty::Multi(_) => Val::Multi(vec![]),
            Ty::Arr(_) => Val::Arr(vec![]),
        }
    }

    fn base_value(&mut self, b: B) -> Val {
        let r = &mut self.rng;
        match b {
            B::I2 => Val::Int(*r.pick(&[0, 1, -1, 7, 42, 32767, -32768, 100, 250])),
            B::I4 => Val::Int(*r.pick(&[0, 1, -1, 2_147_483_647, -2_147_483_648, 13, 99, 1000, 4])),
            B::I8 => Val::Int(*r.pick(&[
                0,
                1,
                -1,
                i64::MAX,
                i64::MIN,
                9_007_199_254_740_993,
                77,
                5000,
            ])),
            B::Num => {
                let mut opts = vec![
                    "0",
                    "-0.000001",
                    "1e100",
                    "NaN",
                    "12345678901234567890.123456789",
                    "-42.50",
                    "0.1000",
                ];
                if self.major >= 14 {
                    opts.extend(["Infinity", "-Infinity"]);
                }
                Val::Lit((*r.pick(&opts)).to_string())
            }
            B::F4 => Val::Lit(
                (*r.pick(&[
                    "NaN",
                    "Infinity",
                    "-Infinity",
                    "-0",
                    "3.4028235e+38",
                    "1.1754944e-38",
                    "0.1",
                    "1",
                ]))
                .to_string(),
            ),
            B::F8 => Val::Lit(
                (*r.pick(&[
                    "NaN",
                    "Infinity",
                    "-Infinity",
                    "-0",
                    "1.7976931348623157e+308",
                    "2.2250738585072014e-308",
                    "5e-324",
                    "0.1",
                    "3.141592653589793",
                ]))
                .to_string(),
            ),
            B::Text | B::Varchar => {
                let mut t = if r.pct(4) {
                    format!("long {}", "ẞtoast ".repeat(400 + r.below(600)))
                } else {
                    self.names.text(&mut self.rng)
                };
                if b == B::Varchar {
                    t = t.chars().take(40).collect();
                }
                Val::Text(t)
            }
            B::Bool => Val::Lit((*r.pick(&["t", "f"])).to_string()),
            B::Date => Val::Lit(
                (*r.pick(&[
                    "2024-02-29",
                    "0001-01-01 BC",
                    "infinity",
                    "-infinity",
                    "1970-01-01",
                    "9999-12-31",
                ]))
                .to_string(),
            ),
            B::Tstz => Val::Lit(
                (*r.pick(&[
                    "2024-02-29 23:59:59.999999+05:30",
                    "infinity",
                    "-infinity",
                    "1999-01-08 04:05:06 BC",
                    "1970-01-01 00:00:00+00",
                    "2038-01-19 03:14:08-08",
                ]))
                .to_string(),
            ),
            B::Ts => Val::Lit(
                (*r.pick(&[
                    "2024-01-01 00:00:00.123",
                    "infinity",
                    "1900-01-01 12:00",
                    "0044-03-15 12:00 BC",
                ]))
                .to_string(),
            ),
            B::Interval => Val::Lit(
                (*r.pick(&[
                    "1 year 2 mons -3 days 04:05:06.7",
                    "-178000000 years",
                    "0",
                    "P1Y2M3DT4H5M6S",
                    "-00:00:00.000001",
                ]))
                .to_string(),
            ),
            B::Jsonb | B::Json => {
                let mut opts = vec![
                    r#"{"k": "v\u00e9", "n": [1, null, 2.5e10, true]}"#,
                    "null",
                    "[]",
                    "{}",
                    r#""str \"quoted\" \\ back""#,
                    r#"{"a": {"b": "tab\there"}, "": ""}"#,
                    "12345678901234567890",
                ];
                if b == B::Json {
                    opts.extend([r#"{"a": 1, "a": 2}"#, " [1,   2] "]);
                }
                Val::Lit((*r.pick(&opts)).to_string())
            }
            B::Bytea => {
                let n = r.below(24);
                let bytes = r.bytes(n);
                let mut s = String::from("\\x");
                for b in bytes {
                    let _ = write!(s, "{b:02x}");
                }
                Val::Lit(s)
            }
            B::Uuid => {
                let b = r.bytes(16);
                let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
                Val::Lit(format!(
                    "{}-{}-{}-{}-{}",
                    &h[0..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..32]
                ))
            }
            B::Inet => Val::Lit(
                (*r.pick(&[
                    "192.168.0.1/24",
                    "::1",
                    "10.0.0.0/8",
                    "2001:db8::1/64",
                    "0.0.0.0",
                ]))
                .to_string(),
            ),
            B::Time => Val::Lit(
                (*r.pick(&["00:00", "23:59:59.999999", "24:00:00", "12:34:56"])).to_string(),
            ),
            B::Bits => Val::Lit((*r.pick(&["", "1011", "1111000011110000", "0"])).to_string()),
        }
    }

    /// Whether `v` passes every constraint of `t`'s domains (all the way down).
    pub(crate) fn valid(&self, t: &Ty, v: &Val) -> bool {
        match t {
            Ty::Dom(d) => {
                let d = &self.domains[*d];
                !(d.not_null && v.is_null())
                    && d.checks.iter().all(|p| p.passes(v))
                    && self.valid(&d.base, v)
            }
            Ty::Comp(c) => match v {
                Val::Row(fields) => self.comps[*c]
                    .attrs
                    .iter()
                    .zip(fields)
                    .all(|((_, t), f)| self.valid(t, f)),
                _ => true,
            },
            Ty::Arr(inner) => match v {
                Val::Arr(items) => items.iter().all(|i| self.valid(inner, i)),
                _ => true,
            },
            _ => true,
        }
    }

    /// `v` as an SQL expression of type `t`.
    pub(crate) fn render(&self, t: &Ty, v: &Val) -> String {
        let tn = self.type_name(t);
        match (t, v) {
            (_, Val::Null) => format!("NULL::{tn}"),
            (Ty::Dom(d), v) => format!("{}::{tn}", self.render(&self.domains[*d].base, v)),
            (Ty::Base(_), Val::Int(i)) => format!("'{i}'::{tn}"),
            (Ty::Base(_), Val::Text(s) | Val::Lit(s)) => format!("{}::{tn}", ql(s)),
            (Ty::Comp(c), Val::Row(fields)) => {
                let parts = self.comps[*c]
                    .attrs
                    .iter()
                    .zip(fields)
                    .map(|((_, t), f)| self.render(t, f))
                    .collect::<Vec<_>>();
                format!("ROW({})::{tn}", parts.join(", "))
            }
            (Ty::Enum(e), Val::Enum(i)) => format!("{}::{tn}", ql(&self.enums[*e].labels[*i])),
            (Ty::Range(r), Val::Range(x)) => {
                format!("{}::{tn}", ql(&self.range_text(self.ranges[*r].sub, *x)))
            }
            (Ty::Multi(r), Val::Multi(xs)) => {
                let sub = self.ranges[*r].sub;
                let parts = xs
                    .iter()
                    .map(|x| self.range_text(sub, Some(*x)))
                    .collect::<Vec<_>>();
                format!("{}::{tn}", ql(&format!("{{{}}}", parts.join(", "))))
            }
            (Ty::Arr(inner), Val::Arr(items)) => {
                if items.is_empty() {
                    format!("'{{}}'::{tn}")
                } else {
                    let parts = items
                        .iter()
                        .map(|i| self.render(inner, i))
                        .collect::<Vec<_>>();
                    format!("ARRAY[{}]::{tn}", parts.join(", "))
                }
            }
            _ => format!("NULL::{tn}"),
        }
    }

    fn range_text(&self, sub: B, x: Option<(i64, i64)>) -> String {
        match x {
            None => "empty".into(),
            Some((lo, hi)) if sub == B::Date => format!("[{},{})", date(lo), date(hi)),
            Some((lo, hi)) => format!("[{lo},{hi})"),
        }
    }

    /// The `n`th value of a unique key of type `t` (keyable), not in `taken`.
    pub(crate) fn key_value(&mut self, t: &Ty, n: usize, taken: &mut HashSet<String>) -> Val {
        let b = self.base_of(t).unwrap_or(B::I4);
        let hostile = self.rng.pct(30);
        for k in 0..4000usize {
            let v = match b {
                B::I2 | B::I4 | B::I8 if k < 1000 => Val::Int((n * 3 + k) as i64 + 1),
                B::I2 | B::I4 | B::I8 => {
                    // then from the smallest up and down, so that a domain's bounds
                    // leave some
                    let x = ((k - 1000) / 2) as i64;
                    Val::Int(if k % 2 == 1 { -x } else { x })
                }
                B::Uuid => Val::Lit(format!("00000000-0000-4000-8000-{:012x}", n * 1000 + k)),
                _ => {
                    // short, so that length limits of domains leave room for them
                    let mut x = if k < 1000 { n * 1009 + k } else { k - 1000 };
                    let mut t = String::new();
                    loop {
                        t.push(char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[x % 36]));
                        x /= 36;
                        if x == 0 {
                            break;
                        }
                    }
                    if hostile && k == 0 {
                        t = format!("{t}{}", self.rng.pick(AWKWARD_TEXT));
                    }
                    Val::Text(t)
                }
            };
            if self.valid(t, &v) && taken.insert(format!("{v:?}")) {
                return v;
            }
        }
        let d = match t {
            Ty::Dom(d) => format!("{:?} {:?}", self.domains[*d].base, self.domains[*d].checks),
            _ => String::new(),
        };
        panic!("schemagen: no key value for {t:?} {d}");
    }
}

fn simple_literal(b: B) -> &'static str {
    match b {
        B::Num | B::F4 | B::F8 => "1",
        B::Bool => "t",
        B::Date => "2020-01-01",
        B::Tstz | B::Ts => "2020-01-01 00:00:00",
        B::Interval => "1 day",
        B::Jsonb | B::Json => "{}",
        B::Bytea => "\\x00",
        B::Uuid => "00000000-0000-0000-0000-000000000000",
        B::Inet => "127.0.0.1",
        B::Time => "12:00",
        B::Bits => "1",
        _ => "0",
    }
}
