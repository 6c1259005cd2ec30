//! The generator's model of types and values: enough to write a literal of any type the
//! case created, and to know before the server does whether a value passes the CHECK
//! constraints of its domains and tables (three-valued, as SQL evaluates them).

use super::names::ql;

/// Built-in types columns, attributes and domains are made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum B {
    I2,
    I4,
    I8,
    Num,
    F4,
    F8,
    Text,
    Varchar,
    Bool,
    Date,
    Tstz,
    Ts,
    Interval,
    Jsonb,
    Json,
    Bytea,
    Uuid,
    Inet,
    Time,
    Bits,
}

impl B {
    pub(crate) const ALL: [B; 20] = [
        B::I2,
        B::I4,
        B::I8,
        B::Num,
        B::F4,
        B::F8,
        B::Text,
        B::Varchar,
        B::Bool,
        B::Date,
        B::Tstz,
        B::Ts,
        B::Interval,
        B::Jsonb,
        B::Json,
        B::Bytea,
        B::Uuid,
        B::Inet,
        B::Time,
        B::Bits,
    ];

    pub(crate) fn sql(self) -> &'static str {
        match self {
            B::I2 => "smallint",
            B::I4 => "integer",
            B::I8 => "bigint",
            B::Num => "numeric",
            B::F4 => "real",
            B::F8 => "double precision",
            B::Text => "text",
            B::Varchar => "character varying(40)",
            B::Bool => "boolean",
            B::Date => "date",
            B::Tstz => "timestamp with time zone",
            B::Ts => "timestamp(3) without time zone",
            B::Interval => "interval",
            B::Jsonb => "jsonb",
            B::Json => "json",
            B::Bytea => "bytea",
            B::Uuid => "uuid",
            B::Inet => "inet",
            B::Time => "time without time zone",
            B::Bits => "bit varying(16)",
        }
    }

    pub(crate) fn is_int(self) -> bool {
        matches!(self, B::I2 | B::I4 | B::I8)
    }

    pub(crate) fn is_text(self) -> bool {
        matches!(self, B::Text | B::Varchar)
    }

    /// Whether the type has a default btree operator class (keys, statistics, GROUP BY).
    pub(crate) fn has_btree(self) -> bool {
        !matches!(self, B::Json)
    }

    /// Whether values of the type can be told apart by `=` (for keys).
    pub(crate) fn keyable(self) -> bool {
        matches!(self, B::I2 | B::I4 | B::I8 | B::Text | B::Uuid | B::Varchar)
    }
}

/// A type the case can use: a built-in one or one the case created (by index into the
/// case's catalog).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Base(B),
    Dom(usize),
    Comp(usize),
    Enum(usize),
    Range(usize),
    Multi(usize),
    Arr(Box<Ty>),
}

/// A value as the generator knows it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Null,
    Int(i64),
    Text(String),
    /// The literal of a value of a type whose values no constraint looks into.
    Lit(String),
    Row(Vec<Val>),
    Arr(Vec<Val>),
    Enum(usize),
    /// `None`: empty; else `[lo, hi)`.
    Range(Option<(i64, i64)>),
    Multi(Vec<(i64, i64)>),
}

impl Val {
    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmp {
    Gt,
    Lt,
    Ne,
    Ge,
}

impl Cmp {
    fn sql(self) -> &'static str {
        match self {
            Cmp::Gt => ">",
            Cmp::Lt => "<",
            Cmp::Ne => "<>",
            Cmp::Ge => ">=",
        }
    }
}

/// A boolean condition on one value (the subject: `VALUE`, a column, a parameter).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Pred {
    Int(Cmp, i64),
    ModNe(i64, i64),
    LenLe(usize),
    TextNe(String),
    NotNull,
    /// `(subject)."attr" pred` on a composite.
    Attr(usize, String, Box<Pred>),
    /// `cardinality(subject) <= n` on an array.
    Card(i64),
    /// `fn(subject)`, a boolean function whose body is `pred` on its parameter.
    Call {
        func: String,
        strict: bool,
        inner: Box<Pred>,
    },
    Or(Box<Pred>, Box<Pred>),
}

fn and3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn or3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

impl Pred {
    /// The SQL of the condition on `subject`.
    pub(crate) fn sql(&self, subject: &str) -> String {
        match self {
            Pred::Int(op, k) => format!("{subject} {} {k}", op.sql()),
            Pred::ModNe(m, r) => format!("({subject} % {m}) <> {r}"),
            Pred::LenLe(n) => format!("length({subject}) <= {n}"),
            Pred::TextNe(t) => format!("{subject} <> {}", ql(t)),
            Pred::NotNull => format!("{subject} IS NOT NULL"),
            Pred::Attr(_, name, p) => p.sql(&format!("({subject}).{}", super::names::qi(name))),
            Pred::Card(n) => format!("cardinality({subject}) <= {n}"),
            Pred::Call { func, .. } => format!("{func}({subject})"),
            Pred::Or(a, b) => format!("(({}) OR ({}))", a.sql(subject), b.sql(subject)),
        }
    }

    /// What SQL makes of the condition for `v`: `None` is unknown (NULL).
    pub(crate) fn eval(&self, v: &Val) -> Option<bool> {
        match (self, v) {
            // a row IS NOT NULL when each of its fields is
            (Pred::NotNull, Val::Row(fields)) => Some(fields.iter().all(|f| !f.is_null())),
            (Pred::NotNull, v) => Some(!v.is_null()),
            (Pred::Call { strict: true, .. }, Val::Null) => None,
            (Pred::Call { inner, .. }, v) => inner.eval(v),
            (Pred::Or(a, b), v) => or3(a.eval(v), b.eval(v)),
            (_, Val::Null) => None,
            (Pred::Int(op, k), Val::Int(x)) => Some(match op {
                Cmp::Gt => x > k,
                Cmp::Lt => x < k,
                Cmp::Ne => x != k,
                Cmp::Ge => x >= k,
            }),
            (Pred::ModNe(m, r), Val::Int(x)) => Some(x % m != *r),
            (Pred::LenLe(n), Val::Text(t)) => Some(t.chars().count() <= *n),
            (Pred::TextNe(s), Val::Text(t)) => Some(s != t),
            (Pred::Attr(i, _, p), Val::Row(fields)) => p.eval(&fields[*i]),
            (Pred::Card(n), Val::Arr(items)) => Some((items.len() as i64) <= *n),
            // a condition the model cannot judge is never generated for such a value
            _ => Some(false),
        }
    }

    /// Whether a CHECK of this condition accepts `v` (NULL passes).
    pub(crate) fn passes(&self, v: &Val) -> bool {
        self.eval(v) != Some(false)
    }
}

/// A CHECK over several columns of a row: the conditions joined by AND or OR.
#[derive(Clone, Debug)]
pub(crate) struct RowCheck {
    pub(crate) parts: Vec<(usize, Pred)>,
    pub(crate) any: bool,
}

impl RowCheck {
    pub(crate) fn passes(&self, row: &[Val]) -> bool {
        let mut acc = Some(!self.any);
        for (col, p) in &self.parts {
            let r = p.eval(&row[*col]);
            acc = if self.any { or3(acc, r) } else { and3(acc, r) };
        }
        acc != Some(false)
    }

    pub(crate) fn sql(&self, columns: &[String]) -> String {
        let joined = self
            .parts
            .iter()
            .map(|(c, p)| format!("({})", p.sql(&super::names::qi(&columns[*c]))))
            .collect::<Vec<_>>();
        joined.join(if self.any { " OR " } else { " AND " })
    }
}
