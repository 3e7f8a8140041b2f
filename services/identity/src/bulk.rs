//! Registering a whole county at once, for trusted tools (`huimin seed`, the bench):
//! households, persons and their facts written by COPY into an empty register, in one
//! transaction. Unlike an import (`import.rs`) nothing is merged: a register that holds
//! persons already is left alone.

use chrono::NaiveDate;
use huimin_kit::pii::IdNumber;

use crate::{Identity, IdentityError, import::RELATIONS};

/// A village (村委会), with the town it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Village {
    /// 12-digit division code.
    pub code: String,
    /// 9-digit code of the town the village belongs to.
    pub town_code: String,
}

/// Something other registers know about a person that bears on eligibility: the kinds
/// `person_facts` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FactKind {
    Deceased,
    PublicEmployee,
    VillageCadre,
    CadreRelative,
    VehicleOwner,
    CompanyOwner,
    MovedOut,
}

impl FactKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            FactKind::Deceased => "deceased",
            FactKind::PublicEmployee => "public_employee",
            FactKind::VillageCadre => "village_cadre",
            FactKind::CadreRelative => "cadre_relative",
            FactKind::VehicleOwner => "vehicle_owner",
            FactKind::CompanyOwner => "company_owner",
            FactKind::MovedOut => "moved_out",
        }
    }
}

/// A dated fact about a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub kind: FactKind,
    pub since: NaiveDate,
    /// A short Chinese description, as the source register would give it.
    pub detail: String,
}

/// A person to register, in the clear: identity keys and seals the ID number itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub id_number: IdNumber,
    /// The relation to the head as the household register (户口簿) writes it: one of
    /// [`RELATIONS`].
    pub relation: String,
    pub facts: Vec<Fact>,
}

/// A household (户) of one village, head first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Household {
    pub code: String,
    pub village_code: String,
    pub members: Vec<Person>,
}

/// What a bulk registration wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    pub households: u64,
    pub persons: u64,
    pub facts: u64,
}

/// Persons per COPY batch.
const BATCH: usize = 20_000;

impl Identity {
    /// Every village, in code order.
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

    /// Registers `households` when the register holds no persons; `None`, with nothing
    /// written, when it does (a county is never loaded twice). Persons get ids from 1 in
    /// the order given.
    pub async fn register_county(
        &self,
        households: impl Iterator<Item = Household>,
    ) -> Result<Option<Registered>, IdentityError> {
        let mut tx = self.pool.begin().await?;
        // Two loads at once would both see an empty table.
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
        let mut report = Registered {
            households: 0,
            persons: 0,
            facts: 0,
        };
        let mut batch = Batch::default();
        let mut next_id: i64 = 1;
        for household in households {
            batch.household(&household.code, &household.village_code);
            report.households += 1;
            for person in &household.members {
                if !RELATIONS.contains(&person.relation.as_str()) {
                    return Err(IdentityError::invalid(
                        "与户主关系",
                        "与户主关系不是户口簿上的称谓",
                    ));
                }
                let key = self.pii.keyer.key_of(&person.id_number);
                let sealed = self.pii.sealer.seal_id(&person.id_number, &key);
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
                    &person.relation,
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
                batch.flush(&mut tx).await?;
            }
        }
        batch.flush(&mut tx).await?;
        sqlx::query("SELECT setval('persons_id_seq', GREATEST((SELECT max(id) FROM persons), 1))")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(
            persons = report.persons,
            households = report.households,
            facts = report.facts,
            "county registered"
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
