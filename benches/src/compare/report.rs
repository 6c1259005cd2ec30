//! Summaries of the measured runs, the table, the done-when checks and the JSON document.

use serde_json::{Value, json};

use super::tools::{RunResult, Tool};

/// 10^6: all sizes are in MB, as the targets are.
const MB: f64 = 1e6;

/// The median of `v` (mean of the middle two for an even count); `NaN` when empty.
pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// One tool's figures over its runs.
#[derive(Clone, Debug)]
pub struct Summary {
    pub tool: Tool,
    pub label: String,
    pub runs: Vec<RunResult>,
    /// Median and minimum wall seconds.
    pub wall: f64,
    pub wall_min: f64,
    /// Median client CPU seconds (user + sys, all its processes).
    pub cpu: f64,
    /// Median server CPU seconds spent on its behalf.
    pub server_cpu: Option<f64>,
    /// Largest peak RSS of any run, bytes.
    pub rss: u64,
    /// Median output bytes.
    pub output: Option<f64>,
}

impl Summary {
    pub fn new(tool: Tool, runs: Vec<RunResult>) -> Summary {
        let walls: Vec<f64> = runs.iter().map(|r| r.usage.wall.as_secs_f64()).collect();
        let cpus: Vec<f64> = runs.iter().map(|r| r.usage.cpu_secs()).collect();
        let server: Vec<f64> = runs.iter().filter_map(|r| r.server_cpu).collect();
        let outputs: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.output_bytes.map(|b| b as f64))
            .collect();
        Summary {
            label: tool.label(),
            tool,
            wall: median(&walls),
            wall_min: walls.iter().copied().fold(f64::INFINITY, f64::min),
            cpu: median(&cpus),
            server_cpu: (!server.is_empty()).then(|| median(&server)),
            rss: runs.iter().map(|r| r.usage.max_rss).max().unwrap_or(0),
            output: (!outputs.is_empty()).then(|| median(&outputs)),
            runs,
        }
    }

    /// (client + server CPU) / `cores`: a lower bound of the wall time on this machine.
    pub fn cpu_bound(&self, cores: usize) -> Option<f64> {
        Some((self.cpu + self.server_cpu?) / cores.max(1) as f64)
    }

    pub fn rss_mb(&self) -> f64 {
        self.rss as f64 / MB
    }

    fn json(&self, reference: Option<&Summary>, cores: usize) -> Value {
        let runs: Vec<Value> = self
            .runs
            .iter()
            .map(|r| {
                json!({
                    "wall_s": r.usage.wall.as_secs_f64(),
                    "user_s": r.usage.user.as_secs_f64(),
                    "sys_s": r.usage.sys.as_secs_f64(),
                    "server_cpu_s": r.server_cpu,
                    "peak_rss_bytes": r.usage.max_rss,
                    "output_bytes": r.output_bytes,
                    "raw_bytes": r.raw_bytes,
                    "phases_s": (!r.phases.is_empty()).then(|| {
                        r.phases.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>()
                    }),
                    "row_counts_match": r.rows_ok,
                })
            })
            .collect();
        json!({
            "tool": self.label,
            "wall_s_median": self.wall,
            "wall_s_min": self.wall_min,
            "cpu_s_median": self.cpu,
            "server_cpu_s_median": self.server_cpu,
            "cpu_per_core_s": self.cpu_bound(cores),
            "peak_rss_mb": self.rss_mb(),
            "output_mb": self.output.map(|b| b / MB),
            "wall_ratio_to_coffer": reference.map(|c| self.wall / c.wall),
            "size_ratio_to_coffer": reference.and_then(|c| Some(self.output? / c.output?)),
            "runs": runs,
        })
    }
}

/// A done-when check.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: String,
    /// `None`: a tool it needs was not run.
    pub pass: Option<bool>,
    pub detail: String,
}

impl Check {
    fn json(&self) -> Value {
        json!({ "check": self.name, "pass": self.pass, "detail": self.detail })
    }

    fn word(&self) -> &'static str {
        match self.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "SKIP",
        }
    }
}

fn fmt_opt(v: Option<f64>, width: usize, prec: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:>width$.prec$}"),
        _ => format!("{:>width$}", "-"),
    }
}

/// The reference row: the first coffer dump row at the default level, else the first coffer
/// row (in `--restore` mode, `coffer restore`).
pub fn reference(rows: &[Summary]) -> Option<&Summary> {
    rows.iter()
        .find(|s| matches!(s.tool, Tool::Coffer { level: None, .. }))
        .or_else(|| rows.iter().find(|s| matches!(s.tool, Tool::Coffer { .. })))
        .or_else(|| {
            rows.iter()
                .find(|s| matches!(s.tool, Tool::CofferRestore { .. }))
        })
}

/// The table, one line per tool. `cores` gives the `CPU/cores` column: (client + server CPU)
/// / cores, the wall time the run could not beat on this machine even with every core busy
/// for it alone.
pub fn table(rows: &[Summary], cores: usize) -> String {
    let reference = reference(rows);
    let mut out = format!(
        "{:<20} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>8} {:>8}\n",
        "tool",
        "wall s",
        "min s",
        "CPU s",
        "srv CPU",
        "CPU/cores",
        "RSS MB",
        "out MB",
        "wall/cf",
        "size/cf"
    );
    for s in rows {
        let wall_ratio = reference.map(|c| s.wall / c.wall);
        let size_ratio = reference.and_then(|c| Some(s.output? / c.output?));
        out.push_str(&format!(
            "{:<20} {:>8.2} {:>8.2} {:>8.2} {} {} {:>9.1} {} {} {}\n",
            s.label,
            s.wall,
            s.wall_min,
            s.cpu,
            fmt_opt(s.server_cpu, 8, 2),
            fmt_opt(s.cpu_bound(cores), 9, 2),
            s.rss_mb(),
            fmt_opt(s.output.map(|b| b / MB), 9, 1),
            fmt_opt(wall_ratio, 8, 2),
            fmt_opt(size_ratio, 8, 2),
        ));
    }
    out
}

/// Peak RSS bound for coffer, MB.
pub const RSS_LIMIT_MB: f64 = 300.0;

/// The done-when checks of the issue, on the reference coffer row.
pub fn checks(rows: &[Summary]) -> Vec<Check> {
    let coffer = reference(rows);
    let find = |f: fn(&Tool) -> bool| rows.iter().find(|s| f(&s.tool));
    let fc = find(|t| matches!(t, Tool::PgDumpCustom));
    let floor = find(|t| matches!(t, Tool::CopyFloor { .. }));
    let label = coffer.map_or_else(|| "coffer".to_string(), |c| c.label.clone());
    let mut v = Vec::new();
    fn pair<'a>(
        c: Option<&'a Summary>,
        o: Option<&'a Summary>,
    ) -> Option<(&'a Summary, &'a Summary)> {
        c.zip(o)
    }
    v.push(match pair(coffer, fc) {
        Some((c, p)) => Check {
            name: format!("{label} wall <= 0.5 x pg_dump -Fc wall"),
            pass: Some(c.wall <= 0.5 * p.wall),
            detail: format!(
                "{:.2} s vs {:.2} s: {:.2}x",
                c.wall,
                p.wall,
                c.wall / p.wall
            ),
        },
        None => Check {
            name: format!("{label} wall <= 0.5 x pg_dump -Fc wall"),
            pass: None,
            detail: "not run".into(),
        },
    });
    v.push(match pair(coffer, floor) {
        Some((c, f)) => Check {
            name: format!("{label} wall <= 1.2 x {} wall", f.label),
            pass: Some(c.wall <= 1.2 * f.wall),
            detail: format!(
                "{:.2} s vs {:.2} s: {:.2}x",
                c.wall,
                f.wall,
                c.wall / f.wall
            ),
        },
        None => Check {
            name: format!("{label} wall <= 1.2 x COPY floor wall"),
            pass: None,
            detail: "not run".into(),
        },
    });
    v.push(
        match pair(coffer, fc).and_then(|(c, p)| Some((c.output?, p.output?))) {
            Some((c, p)) => Check {
                name: format!("{label} archive <= pg_dump -Fc size"),
                pass: Some(c <= p),
                detail: format!("{:.1} MB vs {:.1} MB: {:.2}x", c / MB, p / MB, c / p),
            },
            None => Check {
                name: format!("{label} archive <= pg_dump -Fc size"),
                pass: None,
                detail: "not run".into(),
            },
        },
    );
    v.push(match coffer {
        Some(c) => Check {
            name: format!("{label} peak RSS < {RSS_LIMIT_MB} MB"),
            pass: Some(c.rss_mb() < RSS_LIMIT_MB),
            detail: format!("{:.1} MB", c.rss_mb()),
        },
        None => Check {
            name: format!("coffer peak RSS < {RSS_LIMIT_MB} MB"),
            pass: None,
            detail: "not run".into(),
        },
    });
    v
}

/// `coffer restore` wall must be at most this times `pg_restore -Fd -j`'s.
pub const RESTORE_RATIO: f64 = 0.7;

/// The done-when checks of `compare --restore`: coffer restore's wall time against
/// `pg_restore -Fd -j`'s, and the row counts after every restore.
pub fn restore_checks(rows: &[Summary]) -> Vec<Check> {
    let coffer = rows
        .iter()
        .find(|s| matches!(s.tool, Tool::CofferRestore { .. }));
    let fd = rows
        .iter()
        .find(|s| matches!(s.tool, Tool::PgRestoreDir { .. }));
    let name = format!(
        "{} wall <= {RESTORE_RATIO} x {} wall",
        coffer.map_or("coffer restore", |c| &c.label),
        fd.map_or("pg_restore -Fd", |p| &p.label)
    );
    let mut v = vec![match coffer.zip(fd) {
        Some((c, p)) => Check {
            name,
            pass: Some(c.wall <= RESTORE_RATIO * p.wall),
            detail: format!(
                "{:.2} s vs {:.2} s: {:.2}x",
                c.wall,
                p.wall,
                c.wall / p.wall
            ),
        },
        None => Check {
            name,
            pass: None,
            detail: "not run".into(),
        },
    }];
    let verdicts: Vec<bool> = rows
        .iter()
        .flat_map(|s| s.runs.iter().filter_map(|r| r.rows_ok))
        .collect();
    let bad = verdicts.iter().filter(|ok| !**ok).count();
    v.push(Check {
        name: "pgbench row counts after every restore = the source's".into(),
        pass: (!verdicts.is_empty()).then_some(bad == 0),
        detail: format!("{} restores, {bad} differing", verdicts.len()),
    });
    v
}

/// For each row whose runs report phases (`coffer restore --json`): the median seconds of
/// each phase, one line per row.
pub fn phase_lines(rows: &[Summary]) -> String {
    let mut out = String::new();
    for s in rows {
        let Some(first) = s.runs.iter().find(|r| !r.phases.is_empty()) else {
            continue;
        };
        let parts: Vec<String> = first
            .phases
            .iter()
            .map(|(name, _)| {
                let secs: Vec<f64> = s
                    .runs
                    .iter()
                    .filter_map(|r| r.phases.iter().find(|(n, _)| n == name).map(|p| p.1))
                    .collect();
                format!("{name} {:.2} s", median(&secs))
            })
            .collect();
        out += &format!(
            "{} phases (median): {} (wall {:.2} s)\n",
            s.label,
            parts.join(", "),
            s.wall
        );
    }
    out
}

/// The checks as `PASS name: detail` lines.
pub fn check_lines(checks: &[Check]) -> String {
    checks
        .iter()
        .map(|c| format!("{} {}: {}\n", c.word(), c.name, c.detail))
        .collect()
}

/// The rows and checks as JSON; `extra` is merged in at the top level.
pub fn json(rows: &[Summary], checks: &[Check], cores: usize, extra: Value) -> Value {
    let reference = reference(rows);
    let mut doc = json!({
        "tools": rows.iter().map(|s| s.json(reference, cores)).collect::<Vec<_>>(),
        "checks": checks.iter().map(Check::json).collect::<Vec<_>>(),
    });
    if let (Some(d), Value::Object(e)) = (doc.as_object_mut(), extra) {
        d.extend(e);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
