//! `huimin seed` for identity: fills an empty database with a synthetic
//! county (households and persons with valid ID numbers and dated facts),
//! loaded with COPY in one transaction.

use std::{
    str::FromStr,
    time::{Duration, Instant},
};

use chrono::NaiveDate;
use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    Identity, IdentityError,
    synth::{self, Village},
};

/// How big a county to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// About 20,000 persons: tests and the demo.
    Small,
    /// About 2,000,000 persons: a real county, for benchmarks.
    County,
}

impl Scale {
    pub fn persons(self) -> usize {
        match self {
            Scale::Small => 20_000,
            Scale::County => 2_000_000,
        }
    }
}

impl FromStr for Scale {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "small" => Ok(Scale::Small),
            "county" => Ok(Scale::County),
            other => Err(format!("unknown scale {other:?}; expected small or county")),
        }
    }
}

/// What a seed run did.
#[derive(Debug)]
pub struct SeedReport {
    pub households: u64,
    pub persons: u64,
    pub facts: u64,
    pub elapsed: Duration,
}

/// The synthetic population is fixed by this seed, so every run makes the same county.
pub const SEED: u64 = 450_923;
/// Persons per COPY batch.
const BATCH: usize = 20_000;

impl Identity {
    /// Seeds persons when there are none. Returns `None` if the database
    /// already holds persons (the county is never seeded twice).
    pub async fn seed(
        &self,
        scale: Scale,
        today: NaiveDate,
    ) -> Result<Option<SeedReport>, IdentityError> {
        let started = Instant::now();
        let mut tx = self.pool.begin().await?;
        // Two seeders at once would both see an empty table.
        sqlx::query("LOCK TABLE persons IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        let existing: i64 =
            sqlx::query_scalar("SELECT count(*) FROM (SELECT 1 FROM persons LIMIT 1) p")
                .fetch_one(&mut *tx)
                .await?;
        if existing > 0 {
            return Ok(None);
        }
        let villages = self.villages().await?;

        let target = scale.persons();
        let progress = ProgressBar::new(target as u64).with_style(
            ProgressStyle::with_template(
                "{spinner} seeding persons {pos}/{len} {per_sec} eta {eta}",
            )
            .expect("template is valid"),
        );
        let mut report = SeedReport {
            households: 0,
            persons: 0,
            facts: 0,
            elapsed: Duration::ZERO,
        };
        let mut batch = Batch::default();
        let mut next_id: i64 = 1;
        for household in synth::households(&villages, target, SEED, today) {
            batch.household(&household.code, &household.village_code);
            report.households += 1;
            for person in &household.members {
                let key = self.pii.keyer.key_of(&person.id_number);
                let sealed = self.pii.sealer.seal_id(&person.id_number);
                batch.person(&[
                    &next_id.to_string(),
                    &format!("\\x{}", key.to_hex()),
                    &format!("\\x{}", hex::encode(&sealed)),
                    &person.id_number.masked(),
                    &person.name,
                    if person.id_number.is_male() {
                        "male"
                    } else {
                        "female"
                    },
                    &person.id_number.birth_date().to_string(),
                    &household.code,
                    person.relation.as_zh(),
                    &household.village_code,
                ]);
                for fact in &person.facts {
                    batch.fact(&[
                        &next_id.to_string(),
                        fact.kind.as_str(),
                        &fact.since.to_string(),
                        &fact.detail,
                    ]);
                    report.facts += 1;
                }
                next_id += 1;
                report.persons += 1;
            }
            if batch.persons >= BATCH {
                progress.inc(batch.persons as u64);
                batch.flush(&mut tx).await?;
            }
        }
        progress.inc(batch.persons as u64);
        batch.flush(&mut tx).await?;
        sqlx::query("SELECT setval('persons_id_seq', GREATEST((SELECT max(id) FROM persons), 1))")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        progress.finish_and_clear();
        report.elapsed = started.elapsed();
        tracing::info!(
            persons = report.persons,
            households = report.households,
            facts = report.facts,
            "county seeded"
        );
        Ok(Some(report))
    }
}

/// CSV buffers for the three COPYs of one batch.
struct Batch {
    households: csv::Writer<Vec<u8>>,
    persons_csv: csv::Writer<Vec<u8>>,
    facts: csv::Writer<Vec<u8>>,
    persons: usize,
}

impl Identity {
    /// Every village, in code order: the input of [`synth::households`].
    pub async fn villages(&self) -> Result<Vec<Village>, IdentityError> {
        Ok(sqlx::query_as::<_, (String, String)>(
            "SELECT code, parent_code FROM divisions WHERE level = 'village' ORDER BY code",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|(code, town_code)| Village { code, town_code })
        .collect())
    }
}

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new())
}

impl Default for Batch {
    fn default() -> Self {
        Self {
            households: csv_writer(),
            persons_csv: csv_writer(),
            facts: csv_writer(),
            persons: 0,
        }
    }
}

impl Batch {
    fn household(&mut self, code: &str, village: &str) {
        self.households
            .write_record([code, village])
            .expect("writing to memory cannot fail");
    }

    fn person(&mut self, fields: &[&str]) {
        self.persons_csv
            .write_record(fields)
            .expect("writing to memory cannot fail");
        self.persons += 1;
    }

    fn fact(&mut self, fields: &[&str]) {
        self.facts
            .write_record(fields)
            .expect("writing to memory cannot fail");
    }

    async fn flush(&mut self, conn: &mut sqlx::PgConnection) -> Result<(), IdentityError> {
        copy(
            conn,
            "COPY households (code, village_code) FROM STDIN (FORMAT csv)",
            &mut self.households,
        )
        .await?;
        copy(
            conn,
            "COPY persons (id, person_key, id_number_enc, id_number_masked, name, gender, birth_date,
                           household_code, relation, village_code) FROM STDIN (FORMAT csv)",
            &mut self.persons_csv,
        )
        .await?;
        copy(
            conn,
            "COPY person_facts (person_id, kind, since, detail) FROM STDIN (FORMAT csv)",
            &mut self.facts,
        )
        .await?;
        self.persons = 0;
        Ok(())
    }
}

async fn copy(
    conn: &mut sqlx::PgConnection,
    statement: &str,
    writer: &mut csv::Writer<Vec<u8>>,
) -> Result<(), IdentityError> {
    let data = std::mem::replace(writer, csv_writer())
        .into_inner()
        .map_err(|e| IdentityError::internal(anyhow::anyhow!("csv buffer: {e}")))?;
    if data.is_empty() {
        return Ok(());
    }
    let mut copy = conn.copy_in_raw(statement).await?;
    copy.send(data).await?;
    copy.finish().await?;
    Ok(())
}
