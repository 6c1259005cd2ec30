//! `coffer config`: the effective configuration, each value with where it came from;
//! secrets redacted.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::config::Config;
use crate::error::CliError;
use crate::exit;

/// Options that choose the configuration, shared by every command that reads it.
#[derive(Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// The configuration file (backup.conf). Default: $COFFER_CONFIG, else ./backup.conf,
    /// else /etc/coffer/backup.conf, when they exist.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override one key, as KEY=VALUE; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl ConfigArgs {
    /// The file to read, if any.
    fn file(&self) -> Option<PathBuf> {
        if let Some(f) = &self.config {
            return Some(f.clone());
        }
        if let Some(f) = std::env::var_os("COFFER_CONFIG") {
            return Some(PathBuf::from(f));
        }
        ["backup.conf", "/etc/coffer/backup.conf"]
            .iter()
            .map(Path::new)
            .find(|p| p.exists())
            .map(Path::to_path_buf)
    }

    /// Loads the effective configuration; a bad file or value is a usage error (exit 2).
    pub fn load(&self) -> Result<(Config, Option<PathBuf>), CliError> {
        let file = self.file();
        let mut flags = Vec::new();
        for s in &self.set {
            let (k, v) = s.split_once('=').ok_or_else(|| {
                CliError::new(exit::USAGE, format!("--set {s:?}: expected KEY=VALUE"))
            })?;
            flags.push((k.to_string(), v.to_string()));
        }
        let env = |k: &str| std::env::var(k).ok();
        let config = Config::load(file.as_deref(), &env, &flags)
            .map_err(|e| CliError::new(exit::USAGE, format!("configuration: {e}")))?;
        Ok((config, file))
    }
}

/// Prints the effective configuration.
pub fn run(args: &ConfigArgs, json: bool) -> Result<u8, CliError> {
    let (config, file) = args.load()?;
    let shown = |s: &crate::config::Setting| {
        if s.secret {
            "********".to_string()
        } else {
            s.value.clone()
        }
    };
    if json {
        let values: serde_json::Map<String, serde_json::Value> = config
            .values
            .iter()
            .map(|(k, s)| {
                (
                    (*k).to_string(),
                    serde_json::json!({"value": shown(s), "source": s.source.to_string()}),
                )
            })
            .collect();
        let doc = serde_json::json!({"file": file.map(|f| f.display().to_string()), "values": values, "warnings": config.warnings});
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialises")
        );
    } else {
        match &file {
            Some(f) => println!("# effective configuration; file {}", f.display()),
            None => println!("# effective configuration; no configuration file"),
        }
        for (k, s) in &config.values {
            let line = format!("{k}={}", shown(s));
            println!("{line:<48} # {}", s.source);
        }
        for w in &config.warnings {
            eprintln!("coffer: warning: {w}");
        }
    }
    Ok(exit::OK)
}
