//! Which backup sets a retention policy keeps: the seed's `RETENTION_DAYS`, plus keep-last
//! and daily/weekly/monthly counts in the manner of restic's and borg's `--keep-*`.
//!
//! A set is kept when any rule keeps it:
//! - it is pinned (`coffer pin`);
//! - it is the newest good set (never deleted, whatever the policy);
//! - it is younger than `RETENTION_DAYS` (good or failed: a recent failure is evidence);
//! - it is good and one of the newest `KEEP_LAST` good sets;
//! - it is good and the newest good set of one of the newest `KEEP_DAILY` days (UTC),
//!   `KEEP_WEEKLY` ISO weeks or `KEEP_MONTHLY` months that have a good set.
//!
//! Everything else goes. This is a pure function of the sets and the time, so that it can
//! be tested against any history.

use chrono::{DateTime, Datelike, Duration, Utc};
use serde::Serialize;

use crate::sets::SetRecord;

/// The retention rules (0 turns a count rule off).
#[derive(Clone, Copy, Debug, Default)]
pub struct Policy {
    pub days: u32,
    pub keep_last: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
}

/// What the policy says of one set.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub id: String,
    pub keep: bool,
    /// Why it is kept (empty when it goes).
    pub reasons: Vec<&'static str>,
}

/// A calendar period (year and day, ISO week or month) a time falls in.
type Bucket = fn(DateTime<Utc>) -> (i32, u32);

/// The verdict for each set, in the order given.
pub fn plan(sets: &[SetRecord], policy: Policy, now: DateTime<Utc>) -> Vec<Verdict> {
    let mut reasons: Vec<Vec<&'static str>> = vec![Vec::new(); sets.len()];
    // newest first, good sets only, for the count rules
    let mut good: Vec<usize> = (0..sets.len()).filter(|&i| sets[i].ok).collect();
    good.sort_by_key(|&i| std::cmp::Reverse(sets[i].time()));
    if let Some(&newest) = good.first() {
        reasons[newest].push("newest good set");
    }
    // no cutoff (everything is recent) if it would fall before the calendar begins
    let cutoff = now.checked_sub_signed(Duration::days(i64::from(policy.days)));
    for (i, s) in sets.iter().enumerate() {
        if s.pinned {
            reasons[i].push("pinned");
        }
        if cutoff.is_none_or(|c| s.time() > c) {
            reasons[i].push("within RETENTION_DAYS");
        }
    }
    for &i in good.iter().take(policy.keep_last as usize) {
        reasons[i].push("KEEP_LAST");
    }
    let buckets: [(u32, &'static str, Bucket); 3] = [
        (policy.keep_daily, "KEEP_DAILY", |t| (t.year(), t.ordinal())),
        (policy.keep_weekly, "KEEP_WEEKLY", |t| {
            let w = t.iso_week();
            (w.year(), w.week())
        }),
        (policy.keep_monthly, "KEEP_MONTHLY", |t| {
            (t.year(), t.month())
        }),
    ];
    for (count, why, bucket) in buckets {
        let mut seen = Vec::new();
        for &i in &good {
            if seen.len() == count as usize {
                break;
            }
            let b = bucket(sets[i].time());
            if !seen.contains(&b) {
                seen.push(b);
                reasons[i].push(why);
            }
        }
    }
    sets.iter()
        .zip(reasons)
        .map(|(s, reasons)| Verdict {
            id: s.id.clone(),
            keep: !reasons.is_empty(),
            reasons,
        })
        .collect()
}
