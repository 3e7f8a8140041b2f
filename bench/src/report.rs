//! The results as markdown, ready for README's Benchmarks section: the machine, one row per
//! phase with huimin's figure beside its baseline, and where the import's time went.

use std::{fmt::Write as _, time::Duration};

use crate::{import::Activity, lookup::Load};

/// What the run was measured on.
pub struct Machine {
    pub cores: usize,
    pub memory_gib: f64,
    pub postgres: String,
    pub redis: String,
}

impl Machine {
    pub fn describe(&self) -> String {
        format!(
            "{} cores, {:.0} GiB, PostgreSQL {} and Redis {} on the same host",
            self.cores, self.memory_gib, self.postgres, self.redis
        )
    }
}

/// Total memory from `/proc/meminfo`, if it can be read.
pub fn memory_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0)
}

/// One phase: huimin beside its baseline.
pub struct Row {
    pub phase: String,
    pub huimin: String,
    pub baseline: String,
    pub ratio: f64,
    pub target: &'static str,
    pub pass: bool,
}

/// Rows per second, grouped by thousands.
pub fn per_sec(rows: u64, elapsed: Duration) -> f64 {
    rows as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// `1234567.8` as `1,234,568`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A throughput phase (import, export): rows/s against rows/s, target half.
pub fn throughput(
    phase: String,
    rows: u64,
    huimin: Duration,
    baseline: Duration,
    how: &str,
) -> Row {
    let ours = per_sec(rows, huimin);
    let theirs = per_sec(rows, baseline);
    let ratio = ours / theirs;
    Row {
        phase,
        huimin: format!("{} rows/s ({:.1} s)", thousands(ours), huimin.as_secs_f64()),
        baseline: format!(
            "{} rows/s ({:.1} s, {how})",
            thousands(theirs),
            baseline.as_secs_f64()
        ),
        ratio,
        target: "≥ 0.50",
        pass: ratio >= 0.5,
    }
}

/// The lookup phase: rate against rate, target half and p99 under 5 ms.
pub fn lookup(phase: String, huimin: &Load, empty: &Load) -> Row {
    against_empty(
        phase,
        huimin,
        empty,
        Against {
            unit: "req/s",
            empty: "empty tonic handler",
            ratio: 0.5,
            p99: Duration::from_millis(5),
            target: "≥ 0.50, p99 < 5 ms",
        },
    )
}

/// The webhook phase: rate against an empty axum handler, target 0.3 and p99 under 50 ms.
pub fn webhook(phase: String, huimin: &Load, empty: &Load) -> Row {
    against_empty(
        phase,
        huimin,
        empty,
        Against {
            unit: "msg/s",
            empty: "empty axum handler",
            ratio: 0.3,
            p99: Duration::from_millis(50),
            target: "≥ 0.30, p99 < 50 ms",
        },
    )
}

/// A load measured against an empty handler's, and what it must reach.
struct Against {
    unit: &'static str,
    empty: &'static str,
    ratio: f64,
    p99: Duration,
    target: &'static str,
}

fn against_empty(phase: String, huimin: &Load, empty: &Load, against: Against) -> Row {
    let ratio = huimin.per_sec / empty.per_sec;
    let describe = |load: &Load| {
        format!(
            "{} {}, p50 {}, p99 {}",
            thousands(load.per_sec),
            against.unit,
            ms(load.p50),
            ms(load.p99)
        )
    };
    Row {
        phase,
        huimin: describe(huimin),
        baseline: format!("{} ({})", describe(empty), against.empty),
        ratio,
        target: against.target,
        pass: ratio >= against.ratio && huimin.p99 < against.p99,
    }
}

/// The results table in markdown.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| phase | huimin | baseline | ratio | target | result |\n|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} | {} | {} |",
            row.phase,
            row.huimin,
            row.baseline,
            row.ratio,
            row.target,
            if row.pass { "pass" } else { "**miss**" }
        );
    }
    out
}

/// Where the import's wall-clock time went, from the `pg_stat_activity` samples.
pub fn breakdown(elapsed: Duration, upload: Duration, activity: &[Activity]) -> String {
    let total = elapsed.as_secs_f64();
    let mut out = format!(
        "Import time by what the database was running (sampled every 50 ms; client finished \
         sending after {:.1} s of {total:.1} s):\n\n| activity | time | share | from | to |\n|---|---|---|---|---|\n",
        upload.as_secs_f64()
    );
    for a in activity {
        let _ = writeln!(
            out,
            "| {} | {:.1} s | {:.0} % | {:.1} s | {:.1} s |",
            a.what,
            a.seconds,
            100.0 * a.seconds / total.max(f64::MIN_POSITIVE),
            a.first.as_secs_f64(),
            a.last.as_secs_f64()
        );
    }
    out
}

/// The lookup's steps, one call at a time.
pub fn lookup_path(steps: &[(&str, Duration)]) -> String {
    let mut out =
        String::from("Lookup path, one call in flight (p50):\n\n| call | p50 |\n|---|---|\n");
    for (what, p50) in steps {
        let _ = writeln!(out, "| {what} | {} |", ms(*p50));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
    }

    #[test]
    fn throughput_passes_at_half_the_baseline() {
        let row = throughput(
            "import".to_owned(),
            1_000,
            Duration::from_secs(2),
            Duration::from_secs(1),
            "psql",
        );
        assert!((row.ratio - 0.5).abs() < 1e-9);
        assert!(row.pass);
        assert!(table(&[row]).contains("| import | 500 rows/s (2.0 s) |"));
    }
}
