//! The request-duration histogram keeps no memory per call when nobody scrapes `/metrics`.
//! One test in its own binary, so its process's resident size is its own (issue 13: every
//! call's duration was kept until a scrape, about 21 bytes a call of `huimin serve all`).

use std::time::Duration;

use huimin_kit::observe::prometheus;

const MIB: u64 = 1024 * 1024;

/// Longer than the recorder's upkeep interval (`observe::UPKEEP_EVERY`, 1 s), so every burst
/// is drained before the next.
const SETTLE: Duration = Duration::from_secs(2);

/// The resident size now, from the kernel's count.
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a number");
    kib * 1024
}

/// A burst of calls' worth of durations, as the server's observe layer records them.
fn record(calls: usize) {
    for _ in 0..calls {
        metrics::histogram!(
            "grpc_server_request_duration_seconds",
            "method" => "/huimin.ledger.v1.LedgerService/ListPrograms",
            "code" => "OK"
        )
        .record(0.002);
    }
}

#[test]
fn request_durations_take_no_memory_per_call_without_a_scrape() {
    let _recorder = prometheus();
    // 250,000 samples are about 2 MB held (8 bytes each, in blocks of 64) until drained.
    const BURST: usize = 250_000;
    const BURSTS: usize = 8;
    record(BURST);
    std::thread::sleep(SETTLE);
    let baseline = resident();

    for _ in 1..BURSTS {
        record(BURST);
        std::thread::sleep(SETTLE);
    }
    let grew = resident().saturating_sub(baseline);

    // Kept samples would be about 14 MB by now; drained ones reuse the first burst's memory.
    eprintln!(
        "{} calls recorded; resident grew {grew} bytes after the first burst",
        BURST * BURSTS
    );
    assert!(
        grew < 4 * MIB,
        "resident size grew {grew} bytes over {} unscraped calls",
        BURST * (BURSTS - 1)
    );
}
