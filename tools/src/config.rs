//! Configuration: the seed's `backup.conf` (shell-style `KEY=VALUE`), read as it is;
//! environment variables override it, flags override both. Every value remembers where it
//! came from, so `coffer config` can show it, and secrets are never shown.
//!
//! The file syntax is the subset of shell assignment such files use: `KEY=VALUE` lines,
//! optional `export `, `#` comments, values unquoted (ending at white space), in double
//! quotes (`\"`, `\\`, `\$` and `` \` `` escapes) or in single quotes (literal). Expansion
//! (`$VAR`) is not done; an unquoted `$` is refused rather than silently kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a key holds, and how its value is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Path,
    Days,
    Port,
    Bool,
    Url,
    /// A whole number, 0 allowed (0 turns a keep-N rule off).
    Count,
    /// A zstd level, 1 to 19.
    Level,
    /// A number of connections or seconds, at least 1.
    Positive,
    /// Retries of a notification: 0 to 10.
    Retries,
    /// One of the listed words.
    Choice(&'static [&'static str]),
}

/// One known key.
struct Key {
    name: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    secret: bool,
    /// Other names the seed's scripts accept for it.
    aliases: &'static [&'static str],
}

/// The keys of the seed's backup.conf (DESIGN.md §1), and the ones coffer adds.
const KEYS: &[Key] = &[
    Key {
        name: "BACKUP_DIR",
        kind: Kind::Path,
        default: Some("/var/backups/coffer"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "RETENTION_DAYS",
        kind: Kind::Days,
        default: Some("30"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "DB_HOST",
        kind: Kind::Text,
        default: Some("localhost"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "DB_PORT",
        kind: Kind::Port,
        default: Some("5432"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "POSTGRES_DB",
        kind: Kind::Text,
        default: None,
        secret: false,
        aliases: &[],
    },
    Key {
        name: "POSTGRES_USER",
        kind: Kind::Text,
        default: None,
        secret: false,
        aliases: &[],
    },
    Key {
        name: "POSTGRES_PASSWORD",
        kind: Kind::Text,
        default: None,
        secret: true,
        aliases: &["DB_PASSWORD"],
    },
    Key {
        name: "REDIS_HOST",
        kind: Kind::Text,
        default: Some("localhost"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "REDIS_PORT",
        kind: Kind::Port,
        default: Some("6379"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "REDIS_PASSWORD",
        kind: Kind::Text,
        default: None,
        secret: true,
        aliases: &[],
    },
    Key {
        name: "NOTIFICATION_ENABLED",
        kind: Kind::Bool,
        default: Some("false"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "NOTIFICATION_URL",
        kind: Kind::Url,
        default: None,
        secret: true,
        aliases: &[],
    },
    Key {
        name: "ENVIRONMENT",
        kind: Kind::Text,
        default: Some("production"),
        secret: false,
        aliases: &[],
    },
    // What follows is coffer's own: the seed's scripts had these as constants or flags.
    Key {
        name: "REDIS_USER",
        kind: Kind::Text,
        default: None,
        secret: false,
        aliases: &[],
    },
    Key {
        name: "REDIS_TLS",
        kind: Kind::Bool,
        default: Some("false"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "REDIS_CACERT",
        kind: Kind::Path,
        default: None,
        secret: false,
        aliases: &[],
    },
    Key {
        name: "REDIS_CERT",
        kind: Kind::Path,
        default: None,
        secret: false,
        aliases: &[],
    },
    Key {
        name: "REDIS_KEY",
        kind: Kind::Path,
        default: None,
        secret: false,
        aliases: &[],
    },
    Key {
        name: "BACKUP_POSTGRES",
        kind: Kind::Bool,
        default: Some("true"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "BACKUP_REDIS",
        kind: Kind::Bool,
        default: Some("true"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "BACKUP_JOBS",
        kind: Kind::Positive,
        default: Some("2"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "COMPRESS_LEVEL",
        kind: Kind::Level,
        default: Some("3"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "KEEP_LAST",
        kind: Kind::Count,
        default: Some("0"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "KEEP_DAILY",
        kind: Kind::Count,
        default: Some("0"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "KEEP_WEEKLY",
        kind: Kind::Count,
        default: Some("0"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "KEEP_MONTHLY",
        kind: Kind::Count,
        default: Some("0"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "NOTIFY_ON",
        kind: Kind::Choice(&["always", "failure", "success"]),
        default: Some("always"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "NOTIFICATION_TIMEOUT",
        kind: Kind::Positive,
        default: Some("10"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "NOTIFICATION_RETRIES",
        kind: Kind::Retries,
        default: Some("3"),
        secret: false,
        aliases: &[],
    },
    Key {
        name: "METRICS_FILE",
        kind: Kind::Path,
        default: None,
        secret: false,
        aliases: &[],
    },
    Key {
        name: "ENCRYPTION_KEY_FILE",
        kind: Kind::Path,
        default: None,
        secret: false,
        aliases: &[],
    },
    Key {
        name: "ENCRYPTION_PASSPHRASE_FILE",
        kind: Kind::Path,
        default: None,
        secret: false,
        aliases: &[],
    },
    Key {
        name: "TEST_DB_NAME",
        kind: Kind::Text,
        default: Some("coffer_restore_test"),
        secret: false,
        aliases: &[],
    },
];

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    File { path: PathBuf, line: usize },
    Env(String),
    Flag,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Env(var) => write!(f, "environment {var}"),
            Source::Flag => f.write_str("command line"),
        }
    }
}

/// One effective value.
#[derive(Clone, Debug)]
pub struct Setting {
    pub value: String,
    pub source: Source,
    pub secret: bool,
}

/// The effective configuration.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub values: BTreeMap<&'static str, Setting>,
    /// Unknown keys and other things worth telling, with their place.
    pub warnings: Vec<String>,
}

/// A configuration error: which key, which value, where.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Config {
    /// Defaults, then `file` (if any), then `env`, then `flags` (`KEY=VALUE`).
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut c = Config::default();
        for k in KEYS {
            if let Some(d) = k.default {
                c.values.insert(
                    k.name,
                    Setting {
                        value: d.to_string(),
                        source: Source::Default,
                        secret: k.secret,
                    },
                );
            }
        }
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
            for a in parse(&text)
                .map_err(|(line, e)| ConfigError(format!("{}:{line}: {e}", path.display())))?
            {
                c.set(
                    &a.key,
                    a.value,
                    Source::File {
                        path: path.to_path_buf(),
                        line: a.line,
                    },
                )?;
            }
        }
        for k in KEYS {
            for var in std::iter::once(&k.name).chain(k.aliases) {
                if let Some(v) = env(var) {
                    c.set(var, v, Source::Env((*var).to_string()))?;
                }
            }
        }
        for (key, value) in flags {
            c.set(key, value.clone(), Source::Flag)?;
        }
        Ok(c)
    }

    /// The value of a key, if it has one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|s| s.value.as_str())
    }

    /// The value of a key unless it is only the default: for settings where an unset key
    /// must leave libpq's own defaults (`PGHOST`, `PGPORT`) in force.
    pub fn explicit(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .filter(|s| s.source != Source::Default)
            .map(|s| s.value.as_str())
    }

    /// A boolean key (already checked when loaded).
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).and_then(boolean) == Some(true)
    }

    /// A numeric key (already checked when loaded); 0 when unset.
    pub fn number(&self, name: &str) -> u32 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    fn set(&mut self, name: &str, value: String, source: Source) -> Result<(), ConfigError> {
        let Some(key) = KEYS
            .iter()
            .find(|k| k.name == name || k.aliases.contains(&name))
        else {
            self.warnings
                .push(format!("{source}: unknown key {name} (ignored)"));
            return Ok(());
        };
        if let Err(why) = check(key.kind, &value) {
            let why = match key.kind {
                Kind::Choice(words) => format!("expected one of {}", words.join(", ")),
                _ => why.to_string(),
            };
            let shown = if key.secret {
                "********".to_string()
            } else {
                format!("{value:?}")
            };
            return Err(ConfigError(format!(
                "{source}: {}: invalid value {shown}: {why}",
                key.name
            )));
        }
        self.values.insert(
            key.name,
            Setting {
                value,
                source,
                secret: key.secret,
            },
        );
        Ok(())
    }
}

fn check(kind: Kind, v: &str) -> Result<(), &'static str> {
    match kind {
        Kind::Text | Kind::Path if v.is_empty() => Err("must not be empty"),
        Kind::Path if !v.starts_with('/') => Err("expected an absolute path"),
        Kind::Days => v
            .parse::<u32>()
            .ok()
            .filter(|&d| (1..=36_500).contains(&d))
            .map(drop)
            .ok_or("expected a whole number of days, from 1 to 36500"),
        Kind::Port => v
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .map(drop)
            .ok_or("expected a port number (1-65535)"),
        Kind::Bool => boolean(v).map(|_| ()).ok_or("expected true or false"),
        Kind::Url if !(v.starts_with("https://") || v.starts_with("http://")) => {
            Err("expected an http:// or https:// URL")
        }
        Kind::Count => v
            .parse::<u32>()
            .map(drop)
            .map_err(|_| "expected a whole number (0 or more)"),
        Kind::Retries => v
            .parse::<u32>()
            .ok()
            .filter(|&n| n <= 10)
            .map(drop)
            .ok_or("expected a whole number from 0 to 10"),
        Kind::Level => v
            .parse::<i32>()
            .ok()
            .filter(|l| (1..=19).contains(l))
            .map(drop)
            .ok_or("expected a zstd level from 1 to 19"),
        Kind::Positive => v
            .parse::<u32>()
            .ok()
            .filter(|&n| n > 0)
            .map(drop)
            .ok_or("expected a whole number, at least 1"),
        Kind::Choice(words) if !words.contains(&v) => Err("not one of the accepted words"),
        _ => Ok(()),
    }
}

/// One `KEY=VALUE` line of a configuration file.
#[derive(Debug, PartialEq, Eq)]
pub struct Assignment {
    pub line: usize,
    pub key: String,
    pub value: String,
}

/// Parses shell-style assignments, or says which line is wrong and why.
pub fn parse(text: &str) -> Result<Vec<Assignment>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let l = l.strip_prefix("export ").map_or(l, str::trim_start);
        let Some((key, rest)) = l.split_once('=') else {
            return Err((line, format!("expected KEY=VALUE, found {:?}", raw.trim())));
        };
        if key.is_empty()
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || key.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err((line, format!("invalid key {key:?}")));
        }
        let value = value(rest).map_err(|e| (line, e))?;
        out.push(Assignment {
            line,
            key: key.to_string(),
            value,
        });
    }
    Ok(out)
}

/// The value part of an assignment: quoted pieces and unquoted words, up to unquoted
/// white space; then only white space or a comment may follow.
fn value(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '\'' => {
                chars.next();
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => out.push(x),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                chars.next();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => out.push(x),
                            Some(x) => {
                                out.push('\\');
                                out.push(x);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some('$') => return Err(
                            "variable expansion ($) is not supported; quote it with single quotes"
                                .into(),
                        ),
                        Some(x) => out.push(x),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            c if c.is_whitespace() => break,
            '$' => {
                return Err(
                    "variable expansion ($) is not supported; quote it with single quotes".into(),
                );
            }
            '\\' => {
                chars.next();
                match chars.next() {
                    Some(x) => out.push(x),
                    None => return Err("a backslash ends the line".into()),
                }
            }
            _ => {
                out.push(c);
                chars.next();
            }
        }
    }
    let rest: String = chars.collect();
    let rest = rest.trim_start();
    if !rest.is_empty() && !rest.starts_with('#') {
        return Err(format!("unexpected text after the value: {rest:?}"));
    }
    Ok(out)
}

/// The words a boolean key takes, as the shell scripts it replaces accepted them.
fn boolean(v: &str) -> Option<bool> {
    match v {
        "true" | "yes" | "1" | "on" => Some(true),
        "false" | "no" | "0" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_shell_subset_backup_conf_uses() {
        let text = "# comment\n\nBACKUP_DIR=/var/backups/x\nexport RETENTION_DAYS=90  # three months\nPOSTGRES_PASSWORD=\"p \\\"q\\\" \\$x\"\nNOTIFICATION_URL='https://h/a b'\nENVIRONMENT=pro\\ duction\n";
        let got = parse(text).unwrap();
        let kv: Vec<(usize, &str, &str)> = got
            .iter()
            .map(|a| (a.line, a.key.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(
            kv,
            [
                (3, "BACKUP_DIR", "/var/backups/x"),
                (4, "RETENTION_DAYS", "90"),
                (5, "POSTGRES_PASSWORD", "p \"q\" $x"),
                (6, "NOTIFICATION_URL", "https://h/a b"),
                (7, "ENVIRONMENT", "pro duction"),
            ]
        );
    }

    #[test]
    fn bad_lines_are_errors_with_their_line_number() {
        assert_eq!(parse("A=1\nnot an assignment\n").unwrap_err().0, 2);
        assert!(parse("A=\"open\n").unwrap_err().1.contains("unterminated"));
        assert!(parse("A=$HOME/x\n").unwrap_err().1.contains("expansion"));
        assert!(
            parse("A=one two\n")
                .unwrap_err()
                .1
                .contains("after the value")
        );
        assert!(parse("1A=x\n").is_err());
    }

    #[test]
    fn precedence_sources_validation_and_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("backup.conf");
        std::fs::write(
            &f,
            "RETENTION_DAYS=60\nDB_HOST=filehost\nMYSTERY=1\nPOSTGRES_PASSWORD=fromfile\n",
        )
        .unwrap();
        let env = |k: &str| match k {
            "DB_HOST" => Some("envhost".to_string()),
            "DB_PASSWORD" => Some("fromenv".to_string()),
            _ => None,
        };
        let flags = vec![("RETENTION_DAYS".to_string(), "7".to_string())];
        let c = Config::load(Some(&f), &env, &flags).unwrap();
        assert_eq!(
            c.values.get("RETENTION_DAYS").map(|s| s.value.as_str()),
            Some("7")
        );
        assert_eq!(c.values["RETENTION_DAYS"].source, Source::Flag);
        assert_eq!(
            c.values.get("DB_HOST").map(|s| s.value.as_str()),
            Some("envhost")
        );
        assert_eq!(
            c.values.get("POSTGRES_PASSWORD").map(|s| s.value.as_str()),
            Some("fromenv"),
            "DB_PASSWORD is an alias"
        );
        assert_eq!(
            c.values.get("REDIS_PORT").map(|s| s.value.as_str()),
            Some("6379")
        );
        assert_eq!(c.values["REDIS_PORT"].source, Source::Default);
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("backup.conf:3") && w.contains("MYSTERY")),
            "{:?}",
            c.warnings
        );

        std::fs::write(&f, "\n\nRETENTION_DAYS=thirty\n").unwrap();
        let e = Config::load(Some(&f), &|_| None, &[]).unwrap_err();
        assert!(
            e.0.contains("backup.conf:3")
                && e.0.contains("RETENTION_DAYS")
                && e.0.contains("\"thirty\""),
            "{e}"
        );
        std::fs::write(&f, "DB_PORT=99999\n").unwrap();
        let e = Config::load(Some(&f), &|_| None, &[]).unwrap_err();
        assert!(
            e.0.contains("DB_PORT") && e.0.contains("99999") && e.0.contains("port number"),
            "{e}"
        );
        std::fs::write(&f, "NOTIFICATION_URL=ftp://secret-token\n").unwrap();
        let e = Config::load(Some(&f), &|_| None, &[]).unwrap_err();
        assert!(
            !e.0.contains("secret-token"),
            "a secret's value is never shown: {e}"
        );
    }
}
