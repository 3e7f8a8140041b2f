//! How much memory reading an upload takes, measured as the peak resident size of a
//! child process (this binary run again on one probe), so nothing else in the test run
//! counts. The promise: a small multiple of the file's size, whatever the file holds.

use std::process::Command;

use huimin_kit::table::{ImportLimits, read_table};

/// Names the probe a child runs; unset in the parent.
const PROBE: &str = "HUIMIN_MEMORY_PROBE";

const MIB: usize = 1024 * 1024;

/// A file of about `size` bytes repeating `line`.
fn repeated(line: &str, size: usize) -> Vec<u8> {
    line.repeat(size / line.len()).into_bytes()
}

/// The file a probe reads.
fn probe_file(probe: &str) -> Vec<u8> {
    match probe {
        // One character a row: the 32 MiB file that once took 6.7 GB.
        "one_char_rows" => repeated("1\n", 32 * MIB),
        // One value and many trailing empty cells.
        "trailing_empties" => repeated(&format!("1{}\n", ",".repeat(60)), 32 * MIB),
        // Every one of 64 columns holding one character.
        "full_narrow_rows" => repeated(&format!("{}1\n", "1,".repeat(63)), 32 * MIB),
        // An ordinary roll row.
        "ordinary_rows" => repeated(
            "张三,11010519491231002X,450923100201,DB01,2026-07,170.50,6228480012345678,\n",
            32 * MIB,
        ),
        // A file the parent wrote (an XLSX, whose building would count here).
        "file" => {
            std::fs::read(std::env::var("HUIMIN_MEMORY_FILE").expect("a path")).expect("readable")
        }
        other => panic!("no probe {other}"),
    }
}

/// The peak resident size so far, from the kernel's count.
fn peak_resident() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a number");
    kib * 1024
}

/// Runs in the child: reads the probe's file and prints what the peak grew by.
#[test]
fn memory_probe() {
    let Ok(probe) = std::env::var(PROBE) else {
        return;
    };
    let before = peak_resident();
    let bytes = probe_file(&probe);
    let name = if bytes.starts_with(b"PK") {
        "roll.xlsx"
    } else {
        "roll.csv"
    };
    let outcome = read_table(name, &bytes, &ImportLimits::default());
    let grew = peak_resident().saturating_sub(before);
    let outcome = match outcome {
        Ok(table) => format!("read {} rows", table.rows.len()),
        Err(problems) => format!("refused: {}", problems.listed()[0].message),
    };
    println!("probe={probe} bytes={} grew={grew} {outcome}", bytes.len());
}

/// Runs one probe in a child process; returns (file bytes, peak growth, outcome).
fn measure(probe: &str) -> (usize, usize, String) {
    measure_with(probe, &[])
}

fn measure_with(probe: &str, env: &[(&str, &str)]) -> (usize, usize, String) {
    let output = Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--exact", "memory_probe", "--nocapture", "--test-threads=1"])
        .env(PROBE, probe)
        .envs(env.iter().copied())
        .output()
        .expect("the child runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    // libtest prints the test's name on the same line.
    let line = stdout
        .lines()
        .find_map(|l| l.find("probe=").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no report in {stdout}"));
    let field = |name: &str| -> usize {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .expect("a figure")
    };
    let outcome = line.splitn(4, ' ').nth(3).unwrap_or_default().to_owned();
    (field("bytes="), field("grew="), outcome)
}

#[test]
fn reading_any_csv_takes_under_twenty_times_its_size() {
    for probe in [
        "one_char_rows",
        "trailing_empties",
        "full_narrow_rows",
        "ordinary_rows",
    ] {
        let (bytes, grew, outcome) = measure(probe);
        let ratio = grew as f64 / bytes as f64;
        eprintln!("{probe}: {bytes} bytes, peak grew {grew} ({ratio:.1}x): {outcome}");
        assert!(grew < 20 * bytes, "{probe}: {ratio:.1}x ({outcome})");
    }
}

/// An ordinary roll saved by Excel: distinct names, ID numbers and accounts, the rest
/// repeated, as a department's roll is.
fn ordinary_xlsx(rows: u32) -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let header = [
        "姓名",
        "身份证号",
        "村代码",
        "项目代码",
        "发放期间",
        "金额",
        "银行账号",
        "类型",
    ];
    for (col, text) in (0u16..).zip(header) {
        sheet.write_string(0, col, text).expect("a cell");
    }
    for row in 1..=rows {
        let cells = [
            format!(
                "张{}",
                char::from_u32(0x4e00 + row % 20_000).expect("a han")
            ),
            format!("4509231949{:08}", u64::from(row) * 7919 % 100_000_000),
            "450923100201".to_owned(),
            "DB01".to_owned(),
            "2026-07".to_owned(),
            "170.50".to_owned(),
            format!("62284800{:08}", u64::from(row) * 104_729 % 100_000_000),
            String::new(),
        ];
        for (col, text) in (0u16..).zip(&cells) {
            sheet.write_string(row, col, text).expect("a cell");
        }
    }
    workbook.save_to_buffer().expect("an xlsx")
}

#[test]
fn reading_an_ordinary_xlsx_roll_fits_its_budget() {
    let path = std::env::temp_dir().join(format!("huimin-memory-{}.xlsx", std::process::id()));
    std::fs::write(&path, ordinary_xlsx(100_000)).expect("written");
    let (bytes, grew, outcome) = measure_with(
        "file",
        &[("HUIMIN_MEMORY_FILE", path.to_str().expect("utf-8"))],
    );
    let _ = std::fs::remove_file(&path);
    let ratio = grew as f64 / bytes as f64;
    eprintln!("ordinary xlsx: {bytes} bytes, peak grew {grew} ({ratio:.1}x): {outcome}");
    assert!(outcome.starts_with("read 100000 rows"), "{outcome}");
}
