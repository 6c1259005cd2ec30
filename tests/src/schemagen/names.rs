//! Identifiers, and the strategy that makes a fraction of them hostile: mixed case,
//! spaces, quotes of both kinds, dots, backslashes, `$`, newlines and carriage returns,
//! psql and SQL comment starters, unicode, reserved words, names of exactly 63 bytes.
//!
//! Every name this module hands out is unique within its case (relations, types,
//! functions, indexes and constraints all draw from one set), ends its counter before
//! any decoration, and never ends in a suffix PostgreSQL uses for the names it chooses
//! itself (`_seq`, `_pkey`, `_key`, `_idx`, `_check`, `_fkey`, `_excl`, `_not_null`),
//! so that no implicit name can collide with an explicit one.

use std::collections::HashSet;

use super::rng::Rng;

/// Decorations appended to a name's stem and counter when the name is to be hostile.
const HOSTILE: &[&str] = &[
    "MiXeD",
    " with space",
    "\"dq\"",
    "it's",
    ".dot.",
    "ünïcödé",
    "日本語",
    "🎉",
    "$1",
    "a$b",
    "back\\slash",
    "new\nline",
    "cr\r",
    "tab\t",
    "%s%d",
    " lead and trail ",
    "-- c",
    "/* c */",
    ";x",
    "\n\\echo injected\n",
    "\nSELECT 1/0;\n",
    "UPPER",
    "(paren)",
    "[br]",
    ",comma",
    "=eq",
    "'single'",
    "Æ",
];

/// Words a column may be called outright (columns are unique per table only).
const RESERVED: &[&str] = &[
    "select",
    "from",
    "user",
    "table",
    "order",
    "group",
    "where",
    "check",
    "default",
    "column",
    "primary",
    "references",
    "to",
    "all",
    "limit",
    "offset",
    "window",
    "both",
    "end",
    "case",
];

/// The byte length of PostgreSQL's longest identifier.
pub(crate) const MAX_IDENT: usize = 63;

/// `"name"`, with inner double quotes doubled.
pub fn qi(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with inner single quotes doubled (standard_conforming_strings is on).
pub fn ql(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub(crate) struct Names {
    used: HashSet<String>,
    counter: u32,
    /// Percent of names that are hostile.
    hostile_pct: u32,
}

impl Names {
    pub(crate) fn new(hostile_pct: u32) -> Self {
        Names {
            used: HashSet::new(),
            counter: 0,
            hostile_pct,
        }
    }

    /// A decoration: empty for a plain name, else a hostile one.
    fn decoration(&self, rng: &mut Rng) -> String {
        if !rng.pct(self.hostile_pct) {
            return String::new();
        }
        match rng.below(12) {
            // a name of 63 bytes exactly (or just under, on a character boundary)
            0 => "_long_".to_string() + &"ñame_".repeat(20),
            1 => "_".to_string() + &"x".repeat(80),
            2 => format!("{}{}", rng.pick(HOSTILE), rng.pick(HOSTILE)),
            _ => rng.pick(HOSTILE).to_string(),
        }
    }

    /// A fresh name for an object of the case: `stem`, a counter, maybe a decoration.
    pub(crate) fn fresh(&mut self, rng: &mut Rng, stem: &str) -> String {
        loop {
            self.counter += 1;
            let stem = if rng.pct(self.hostile_pct / 3) {
                capitalise(stem)
            } else {
                stem.to_string()
            };
            let name = format!("{stem}{}{}", self.counter, self.decoration(rng));
            let name = truncate(&name, MAX_IDENT).to_string();
            if self.used.insert(name.clone()) {
                return name;
            }
        }
    }

    /// A name for a column, unique among `taken` (the table's other columns).
    pub(crate) fn column(&mut self, rng: &mut Rng, taken: &[String]) -> String {
        loop {
            let name = if rng.pct(self.hostile_pct / 3) {
                rng.pick(RESERVED).to_string()
            } else {
                self.counter += 1;
                let stem = *rng.pick(&["c", "col", "Col", "v", "x"]);
                truncate(
                    &format!("{stem}{}{}", self.counter, self.decoration(rng)),
                    MAX_IDENT,
                )
                .to_string()
            };
            if !taken.contains(&name) {
                return name;
            }
        }
    }

    /// A string for data or a comment: often awkward.
    pub(crate) fn text(&self, rng: &mut Rng) -> String {
        match rng.below(10) {
            0 => String::new(),
            1..=3 => rng.pick(HOSTILE).to_string(),
            4 => format!("{}{}", rng.pick(HOSTILE), rng.pick(HOSTILE)),
            5 => (*rng.pick(AWKWARD_TEXT)).to_string(),
            _ => format!("plain text {}", rng.below(1000)),
        }
    }
}

/// Text values that COPY's text format has to escape, or that look like its markers.
pub(crate) const AWKWARD_TEXT: &[&str] = &[
    "\\N",
    "\\.",
    "\\.\n",
    "\n\\.\n",
    "a\tb",
    "\r\n",
    "\\\\",
    "\\x00",
    "NULL",
    "null",
    "",
    " ",
    "{}",
    "{a,b}",
    "(1,2)",
    "\"",
    "'",
    "''",
    "é",
    "😀 emoji",
    "\u{7f}",
    "\u{1}",
];

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}
