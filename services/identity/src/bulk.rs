//! Registering a whole county at once, for trusted tools (`huimin seed`, the bench):
//! households, persons and their facts written by COPY into an empty register, in one
//! transaction. Unlike an import (`import.rs`) nothing is merged: a register that holds
//! persons already is left alone.

use chrono::NaiveDate;
use huimin_kit::pii::IdNumber;

use crate::{
    Identity, IdentityError,
    facts::{DatasetKind, REGISTER_SOURCE},
    import::RELATIONS,
};

/// A village (村委会), with the town it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Village {
    /// 12-digit division code.
    pub code: String,
    /// 9-digit code of the town the village belongs to.
    pub town_code: String,
}

/// Something other registers know about a person that bears on eligibility, as the seed
/// makes them: the kinds `person_facts` held before property and household history
/// (those the seed gives as [`Property`] and [`PastMembership`]).
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
        self.dataset().as_str()
    }

    /// The dataset a fact of this kind would come in.
    pub fn dataset(&self) -> DatasetKind {
        match self {
            FactKind::Deceased => DatasetKind::Deceased,
            FactKind::PublicEmployee => DatasetKind::PublicEmployee,
            FactKind::VillageCadre => DatasetKind::VillageCadre,
            FactKind::CadreRelative => DatasetKind::CadreRelative,
            FactKind::VehicleOwner => DatasetKind::VehicleOwner,
            FactKind::CompanyOwner => DatasetKind::CompanyOwner,
            FactKind::MovedOut => DatasetKind::MovedOut,
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
    /// Buildings the person owns (不动产登记).
    pub properties: Vec<Property>,
    /// When the person joined the household they are registered in now; `None` for
    /// since birth.
    pub member_since: Option<NaiveDate>,
    /// Households the person belonged to before, oldest first.
    pub past_households: Vec<PastMembership>,
}

/// A building a person owns, as the property register (不动产登记) records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// 登记日期
    pub since: NaiveDate,
    /// 坐落
    pub location: String,
    /// 建筑面积 in hundredths of a square metre.
    pub area_centi_m2: u64,
}

/// A closed span of membership in another household (户籍变动).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastMembership {
    pub household_code: String,
    /// The relation to that household's head, one of [`RELATIONS`].
    pub relation: String,
    pub since: NaiveDate,
    /// The last day of membership.
    pub until: NaiveDate,
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

/// The source recorded on the facts the seed writes.
pub const SEED_SOURCE: &str = "huimin seed";

/// A seeded fact's attributes (the stream's keys), from its detail as the seed writes
/// it — the same mapping migration 0023 applied to facts recorded before attributes
/// were kept. `village` is the person's village, `relation` their relation to the head
/// and `head` the head's key (hex): a seeded cadre's relatives are the head's.
fn seeded_attrs(
    fact: &Fact,
    village: &str,
    relation: &str,
    head: &str,
) -> serde_json::Map<String, serde_json::Value> {
    let pairs: Vec<(&str, &str)> = match fact.kind {
        FactKind::Deceased => vec![("source_text", &fact.detail)],
        FactKind::PublicEmployee => vec![("employer", &fact.detail)],
        FactKind::VillageCadre => vec![("village_code", village), ("post", &fact.detail)],
        FactKind::CadreRelative => vec![("cadre_key", head), ("relation", relation)],
        FactKind::VehicleOwner => match fact.detail.split_once(' ') {
            Some((vehicle_type, plate)) => vec![("vehicle_type", vehicle_type), ("plate", plate)],
            None => vec![("vehicle_type", ""), ("plate", &fact.detail)],
        },
        FactKind::CompanyOwner => vec![
            ("company", &fact.detail),
            ("credit_code", ""),
            ("role", "法定代表人"),
        ],
        FactKind::MovedOut => vec![(
            "destination",
            fact.detail.strip_prefix("迁往").unwrap_or(&fact.detail),
        )],
    };
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), serde_json::Value::from(v)))
        .collect()
}

fn json(attrs: &[(&str, &str)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = attrs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
        .collect();
    serde_json::Value::Object(map).to_string()
}

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
        crate::facts::lock_for_writing(&mut tx).await?;
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
            // The head comes first; a seeded cadre's relatives are the head's.
            let head = household
                .members
                .first()
                .map(|h| self.pii.keyer.key_of(&h.id_number).to_hex())
                .unwrap_or_default();
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
                let id = next_id.to_string();
                let birth = person.id_number.birth_date();
                for fact in &person.facts {
                    let attrs =
                        seeded_attrs(fact, &household.village_code, &person.relation, &head);
                    batch.fact(&[
                        &id,
                        fact.kind.as_str(),
                        &fact.since.to_string(),
                        "",
                        &fact.detail,
                        &serde_json::Value::Object(attrs).to_string(),
                        SEED_SOURCE,
                    ]);
                    report.facts += 1;
                }
                for property in &person.properties {
                    let area = property.area_centi_m2.to_string();
                    batch.fact(&[
                        &id,
                        DatasetKind::PropertyOwner.as_str(),
                        &property.since.to_string(),
                        "",
                        &crate::facts::parse::property_detail(
                            &property.location,
                            property.area_centi_m2,
                        ),
                        &json(&[("location", &property.location), ("area_centi_m2", &area)]),
                        SEED_SOURCE,
                    ]);
                    report.facts += 1;
                }
                // From the register itself: birth, and household membership over time.
                batch.fact(&[
                    &id,
                    "born",
                    &birth.to_string(),
                    "",
                    "",
                    "{}",
                    REGISTER_SOURCE,
                ]);
                for past in &person.past_households {
                    if !RELATIONS.contains(&past.relation.as_str()) || past.until < past.since {
                        return Err(IdentityError::invalid(
                            "household_member",
                            "过去的户籍成员关系无效",
                        ));
                    }
                    batch.fact(&[
                        &id,
                        "household_member",
                        &past.since.to_string(),
                        &past.until.to_string(),
                        "",
                        &json(&[
                            ("household_code", &past.household_code),
                            ("relation", &past.relation),
                        ]),
                        REGISTER_SOURCE,
                    ]);
                }
                batch.fact(&[
                    &id,
                    "household_member",
                    &person.member_since.unwrap_or(birth).to_string(),
                    "",
                    "",
                    &json(&[
                        ("household_code", &household.code),
                        ("relation", &person.relation),
                    ]),
                    REGISTER_SOURCE,
                ]);
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
            "COPY person_facts (person_id, kind, since, until, detail, attrs, source)
             FROM STDIN (FORMAT csv, FORCE_NOT_NULL (detail))",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(kind: FactKind, detail: &str) -> Fact {
        Fact {
            kind,
            since: NaiveDate::from_ymd_opt(2020, 1, 1).expect("valid date"),
            detail: detail.to_owned(),
        }
    }

    fn attrs(kind: FactKind, detail: &str) -> String {
        serde_json::Value::Object(seeded_attrs(&fact(kind, detail), "V", "子", "K")).to_string()
    }

    #[test]
    fn seeded_facts_get_the_attributes_migration_0023_gives_older_ones() {
        assert_eq!(
            attrs(FactKind::VehicleOwner, "小型汽车 桂K12345"),
            r#"{"plate":"桂K12345","vehicle_type":"小型汽车"}"#
        );
        assert_eq!(
            attrs(FactKind::VillageCadre, "村委会主任"),
            r#"{"post":"村委会主任","village_code":"V"}"#
        );
        assert_eq!(
            attrs(FactKind::CadreRelative, "户主任村委会主任"),
            r#"{"cadre_key":"K","relation":"子"}"#
        );
        assert_eq!(
            attrs(FactKind::MovedOut, "迁往广东省广州市"),
            r#"{"destination":"广东省广州市"}"#
        );
        assert_eq!(
            attrs(FactKind::CompanyOwner, "博白县绿源商贸有限公司"),
            r#"{"company":"博白县绿源商贸有限公司","credit_code":"","role":"法定代表人"}"#
        );
    }
}
