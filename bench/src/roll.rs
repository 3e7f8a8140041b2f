//! The population and the payment roll (花名册) the bench imports: the county `huimin seed`
//! makes (huimin-demo's synthetic households, `seed::SEED`), regenerated here with the same seed
//! and `today` so the bench knows every person's clear ID number and registered name, then
//! written as a 农村低保 (`DIBAO_RURAL`) roll of two months per person.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use chrono::{Datelike as _, Months, NaiveDate};
use huimin_demo::{
    county::{self, FactKind, Village},
    seed::{SEED, Scale},
};
use huimin_identity::Identity;
use sqlx::PgConnection;

/// The program every row pays: monthly, per person, ceiling 440.00 yuan.
const PROGRAM: &str = "DIBAO_RURAL";
/// Months per person in the roll.
const MONTHS: usize = 2;
/// Persons kept aside (with their clear ID number) for the lookup phase.
const SAMPLE_PERSONS: usize = 8;

/// The smallest synthetic county with persons enough for `rows` (some are skipped: see
/// [`write_roll`]).
pub fn scale_for(rows: usize) -> anyhow::Result<Scale> {
    // A tenth spare for the deceased and moved-out, who get no roll rows.
    let persons = rows.div_ceil(MONTHS) * 11 / 10;
    if persons <= Scale::Small.persons() {
        Ok(Scale::Small)
    } else if persons <= Scale::County.persons() {
        Ok(Scale::County)
    } else {
        bail!(
            "--rows {rows} needs about {persons} persons; the largest synthetic county has {}",
            Scale::County.persons()
        )
    }
}

/// How many persons identity holds; equal to the seeded scale's target.
pub async fn registered_persons(conn: &mut PgConnection) -> anyhow::Result<usize> {
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM identity.persons")
        .fetch_one(conn)
        .await
        .context("counting identity.persons")?;
    usize::try_from(count).context("negative person count")
}

/// Seeds the county exactly as `huimin seed --scale …` does; returns how long it took, or
/// `None` if persons were there already.
pub async fn seed(
    identity: &Identity,
    scale: Scale,
    today: NaiveDate,
) -> anyhow::Result<Option<Duration>> {
    let started = Instant::now();
    let report = huimin_demo::seed::county(identity, scale, today)
        .await
        .map_err(|e| anyhow::anyhow!("seeding the county: {e}"))?;
    Ok(report.map(|_| started.elapsed()))
}

/// A person of the roll the lookup phase binds an openid to.
#[derive(Debug, Clone)]
pub struct SamplePerson {
    pub id_number: String,
    pub name: String,
}

/// The roll file written for this run.
pub struct RollFile {
    pub path: PathBuf,
    pub rows: usize,
    pub bytes: u64,
    pub persons: usize,
    pub sample: Vec<SamplePerson>,
}

/// The `count` months before `today`'s month, oldest first, as `2026-09`.
fn recent_months(today: NaiveDate, count: usize) -> anyhow::Result<Vec<String>> {
    let first = today
        .with_day(1)
        .context("the first of a month is a date")?;
    (1..=count)
        .rev()
        .map(|back| {
            let months = u32::try_from(back).context("month count")?;
            first
                .checked_sub_months(Months::new(months))
                .map(|d| d.format("%Y-%m").to_string())
                .context("a month before today is a date")
        })
        .collect()
}

/// Writes a roll of `rows` rows to `path`: for each person of the county in generation order,
/// skipping the deceased and the moved-out (no department would pay them), one 发放 row per
/// month, with an amount within the program's ceiling and a 19-digit bank account.
///
/// `target_persons` must be the size the county was seeded with: the household stream depends
/// on it.
pub fn write_roll(
    villages: &[Village],
    target_persons: usize,
    today: NaiveDate,
    rows: usize,
    path: &Path,
) -> anyhow::Result<RollFile> {
    let months = recent_months(today, MONTHS)?;
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(std::io::BufWriter::with_capacity(1 << 20, file));
    out.write_record([
        "姓名",
        "身份证号",
        "村代码",
        "项目代码",
        "发放期间",
        "金额（元）",
        "银行账号",
        "类型",
    ])
    .context("writing the roll header")?;
    let mut written = 0usize;
    let mut persons = 0usize;
    let mut sample = Vec::new();
    'households: for household in county::households(villages, target_persons, SEED, today) {
        for person in &household.members {
            let gone = person
                .facts
                .iter()
                .any(|f| matches!(f.kind, FactKind::Deceased | FactKind::MovedOut));
            if gone {
                continue;
            }
            if written == rows {
                break 'households;
            }
            if sample.len() < SAMPLE_PERSONS {
                sample.push(SamplePerson {
                    id_number: person.id_number.expose().to_owned(),
                    name: person.name.clone(),
                });
            }
            persons += 1;
            for month in &months {
                if written == rows {
                    break 'households;
                }
                // 100.00 to 440.00 yuan, spread over the rows.
                let fen = 10_000 + (written * 7_919) % 34_001;
                let amount = format!("{}.{:02}", fen / 100, fen % 100);
                let bank = format!("62284800{:011}", written);
                out.write_record([
                    person.name.as_str(),
                    person.id_number.expose(),
                    household.village_code.as_str(),
                    PROGRAM,
                    month.as_str(),
                    amount.as_str(),
                    bank.as_str(),
                    "发放",
                ])
                .context("writing a roll row")?;
                written += 1;
            }
        }
    }
    if written < rows {
        bail!("the county of {target_persons} persons gives only {written} of {rows} rows");
    }
    let mut buffered = out
        .into_inner()
        .map_err(|e| anyhow::anyhow!("flushing the roll: {}", e.error()))?;
    buffered.flush().context("flushing the roll")?;
    let bytes = std::fs::metadata(path)
        .with_context(|| format!("reading the size of {}", path.display()))?
        .len();
    Ok(RollFile {
        path: path.to_owned(),
        rows: written,
        bytes,
        persons,
        sample,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_the_ones_before_today() {
        let today = NaiveDate::from_ymd_opt(2026, 1, 31).expect("date");
        assert_eq!(
            recent_months(today, 2).expect("months"),
            ["2025-11", "2025-12"]
        );
    }

    #[test]
    fn small_rolls_use_the_small_county() {
        assert_eq!(scale_for(10_000).expect("fits"), Scale::Small);
        assert_eq!(scale_for(1_000_000).expect("fits"), Scale::County);
        assert!(scale_for(4_000_000).is_err());
    }

    #[test]
    fn roll_rows_are_well_formed() {
        let villages = vec![Village {
            code: "450923100201".to_owned(),
            town_code: "450923100".to_owned(),
        }];
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).expect("date");
        let path =
            std::env::temp_dir().join(format!("huimin-bench-test-{}.csv", std::process::id()));
        let roll = write_roll(&villages, 200, today, 101, &path).expect("roll written");
        let text = std::fs::read_to_string(&path).expect("roll readable");
        let _ = std::fs::remove_file(&path);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(roll.rows, 101);
        assert_eq!(roll.persons, 51, "two rows a person, the last one with one");
        assert_eq!(lines.len(), 102, "header and rows");
        assert_eq!(
            lines[0],
            "姓名,身份证号,村代码,项目代码,发放期间,金额（元）,银行账号,类型"
        );
        let fields: Vec<&str> = lines[1].split(',').collect();
        assert_eq!(fields.len(), 8);
        assert_eq!(fields[2..5], ["450923100201", "DIBAO_RURAL", "2026-09"]);
        assert_eq!(fields[7], "发放");
        assert!(!roll.sample.is_empty());
    }
}
