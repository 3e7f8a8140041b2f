//! The soak: a `huimin serve all` process under steady public calls for minutes, its resident
//! memory sampled as it goes and judged at the end. Flat memory is the claim; an unbounded
//! per-call structure shows as RSS that keeps climbing with the call count.

use std::{fmt::Write as _, time::Duration};

use huimin_proto::{
    identity::v1::{ListDivisionsRequest, identity_service_client::IdentityServiceClient},
    ledger::v1::{
        GroupBy, ListProgramsRequest, TotalsRequest, VillageDisclosureRequest,
        ledger_service_client::LedgerServiceClient,
    },
    registry::v1::{SearchProjectsRequest, registry_service_client::RegistryServiceClient},
};
use tonic::{Status, transport::Channel};

/// The village every call asks about (a village of the default county, 博白县).
const VILLAGE: &str = "450923106201";

/// RSS may rise by this much after the warm-up and still count as flat: the allocator takes
/// memory from the system in steps of about 2 MB, and one step after the warm-up is noise
/// (fixed builds took one in some short runs); a second is growth. The growth the soak was
/// written for (about 21 bytes a call, a step every ~100,000 calls) passes it in minutes.
pub const FLAT_SLACK_BYTES: u64 = 3 * 1024 * 1024;

/// The `n`th of the five public calls the soak cycles through: the ones a citizen's menu makes.
pub async fn public_call(channel: Channel, n: u64) -> Result<(), Status> {
    match n % 5 {
        0 => LedgerServiceClient::new(channel)
            .list_programs(ListProgramsRequest {})
            .await
            .map(drop),
        1 => IdentityServiceClient::new(channel)
            .list_divisions(ListDivisionsRequest::default())
            .await
            .map(drop),
        2 => LedgerServiceClient::new(channel)
            .village_disclosure(VillageDisclosureRequest {
                village_code: VILLAGE.to_owned(),
                program_code: "DIBAO_RURAL".to_owned(),
                period: "2026-07".to_owned(),
                page: None,
            })
            .await
            .map(drop),
        3 => LedgerServiceClient::new(channel)
            .totals(TotalsRequest {
                group_by: GroupBy::Town as i32,
                ..TotalsRequest::default()
            })
            .await
            .map(drop),
        _ => RegistryServiceClient::new(channel)
            .search_projects(SearchProjectsRequest {
                village_code: VILLAGE.to_owned(),
                ..SearchProjectsRequest::default()
            })
            .await
            .map(drop),
    }
}

/// The resident set size of process `pid` in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The durations a `/metrics` page says were recorded, over every method and code.
pub fn recorded_durations(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("grpc_server_request_duration_seconds_count"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// One reading taken during the soak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub at: Duration,
    pub calls: u64,
    pub errors: u64,
    pub rss: u64,
}

/// What the samples say.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The first sample taken after the warm-up: the baseline growth is measured from.
    pub baseline: Sample,
    pub last: Sample,
    /// RSS gained after the warm-up, in bytes (negative when it shrank).
    pub growth: i64,
    /// That gain over the calls made meanwhile.
    pub bytes_per_call: f64,
}

impl Verdict {
    /// Judges `samples` (in time order), ignoring those taken before `warmup`: caches,
    /// connection pools and the allocator's first arenas fill there and are not growth.
    pub fn judge(samples: &[Sample], warmup: Duration) -> Option<Self> {
        let last = *samples.last()?;
        let baseline = *samples
            .iter()
            .find(|s| s.at >= warmup)
            .unwrap_or(samples.first()?);
        let growth = last.rss as i64 - baseline.rss as i64;
        let calls = last.calls.saturating_sub(baseline.calls).max(1);
        Some(Self {
            baseline,
            last,
            growth,
            bytes_per_call: growth as f64 / calls as f64,
        })
    }

    pub fn flat(&self) -> bool {
        self.growth <= FLAT_SLACK_BYTES as i64
    }

    pub fn passed(&self) -> bool {
        self.flat() && self.last.errors == 0
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// One sample as a line of the running log and a row of the table.
pub fn sample_line(sample: &Sample) -> String {
    format!(
        "| {:>5.1} | {:>10} | {:>6} | {:>6.1} |",
        sample.at.as_secs_f64() / 60.0,
        sample.calls,
        sample.errors,
        mb(sample.rss)
    )
}

/// The report: every sample, then the verdict.
pub fn report(samples: &[Sample], verdict: &Verdict, concurrency: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Soak: `huimin serve all`, {concurrency} public calls in flight over one HTTP/2 \
         connection (ListPrograms, ListDivisions, VillageDisclosure, Totals, SearchProjects).\n"
    );
    out.push_str("| minute | calls | errors | RSS MB |\n|---:|---:|---:|---:|\n");
    for sample in samples {
        out.push_str(&sample_line(sample));
        out.push('\n');
    }
    let minutes = verdict.last.at.as_secs_f64() / 60.0;
    let _ = writeln!(
        out,
        "\nRSS {:.1} MB after the warm-up ({:.1} min), {:.1} MB at the end ({minutes:.1} min): \
         {:+.1} MB over {} calls ({:.2} bytes a call); {} calls in all ({:.0}/s), {} errors.",
        mb(verdict.baseline.rss),
        verdict.baseline.at.as_secs_f64() / 60.0,
        mb(verdict.last.rss),
        verdict.growth as f64 / 1e6,
        verdict.last.calls - verdict.baseline.calls,
        verdict.bytes_per_call,
        verdict.last.calls,
        verdict.last.calls as f64 / verdict.last.at.as_secs_f64().max(1.0),
        verdict.last.errors,
    );
    let _ = writeln!(
        out,
        "Verdict: {} (flat means at most {:.1} MB gained after the warm-up, and no call failed).",
        if verdict.passed() {
            "FLAT"
        } else if verdict.last.errors > 0 {
            "CALLS FAILED"
        } else {
            "GROWING"
        },
        mb(FLAT_SLACK_BYTES),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(secs: u64, calls: u64, rss_mb: u64) -> Sample {
        Sample {
            at: Duration::from_secs(secs),
            calls,
            errors: 0,
            rss: rss_mb * 1024 * 1024,
        }
    }

    #[test]
    fn recorded_durations_sum_every_method() {
        let page = "# TYPE grpc_server_request_duration_seconds histogram\n\
            grpc_server_request_duration_seconds_bucket{method=\"/a\",code=\"OK\",le=\"0.001\"} 3\n\
            grpc_server_request_duration_seconds_count{method=\"/a\",code=\"OK\"} 10\n\
            grpc_server_request_duration_seconds_count{method=\"/b\",code=\"OK\"} 5\n";
        assert_eq!(recorded_durations(page), 15);
    }

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\thuimin\nVmPeak:\t  900 kB\nVmRSS:\t   39936 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(39936 * 1024));
        assert_eq!(parse_vm_rss("Name:\thuimin\n"), None);
    }

    #[test]
    fn growth_is_measured_from_the_first_sample_after_the_warm_up() {
        let samples = [
            sample(0, 0, 30),
            sample(60, 60_000, 38),
            sample(120, 120_000, 39),
            sample(180, 180_000, 39),
        ];
        let verdict =
            Verdict::judge(&samples, Duration::from_secs(60)).expect("samples were taken");
        assert_eq!(verdict.baseline, samples[1]);
        assert_eq!(verdict.growth, 1024 * 1024);
        assert!(verdict.passed());
    }

    #[test]
    fn the_growth_the_soak_was_written_for_fails_it() {
        // 21 bytes a call at 1,100 calls a second, for five minutes.
        let samples: Vec<Sample> = (0..=5)
            .map(|minute| Sample {
                at: Duration::from_secs(minute * 60),
                calls: minute * 66_000,
                errors: 0,
                rss: 39_000_000 + minute * 66_000 * 21,
            })
            .collect();
        let verdict =
            Verdict::judge(&samples, Duration::from_secs(60)).expect("samples were taken");
        assert!(!verdict.flat(), "{verdict:?}");
        assert!((verdict.bytes_per_call - 21.0).abs() < 0.01);
    }

    #[test]
    fn a_failed_call_fails_a_flat_soak() {
        let mut last = sample(120, 120_000, 38);
        last.errors = 1;
        let verdict = Verdict::judge(&[sample(60, 60_000, 38), last], Duration::from_secs(60))
            .expect("samples were taken");
        assert!(verdict.flat() && !verdict.passed());
    }
}
