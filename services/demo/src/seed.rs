//! `huimin seed`: fills an empty identity with the synthetic county and an empty ledger
//! with ten years of that county's payments, each in one transaction.

use std::{
    collections::HashMap,
    str::FromStr,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use chrono::{Datelike as _, NaiveDate};
use huimin_identity::{Identity, IdentityError};
use huimin_kit::pii::{PersonKey, mask_name};
use huimin_ledger::{
    Ledger,
    checks::{Scope, facts::MirroredFact},
    domain::Period,
    history::{HistoricPayment, HistoryRoll},
};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest as _, Sha256};

use crate::{
    county::{self, FactKind, Relation},
    payments::{Holding, PaymentPlan, Planted, SeedPayment, SeedPerson, SeedProgram},
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

/// The synthetic population is fixed by this seed, so every run makes the same county.
pub const SEED: u64 = 450_923;
/// And the payments by this one.
const PAYMENTS_SEED: u64 = 450_923;

/// What seeding the county did.
#[derive(Debug)]
pub struct CountySeeded {
    pub households: u64,
    pub persons: u64,
    pub facts: u64,
    pub elapsed: Duration,
}

/// What seeding the payments did.
#[derive(Debug)]
pub struct PaymentsSeeded {
    pub payments: u64,
    pub total_fen: i64,
    pub planted: Vec<Planted>,
    /// Synthetic persons paid 农村低保 last month, to bind on the local WeChat.
    pub demo_citizens: Vec<DemoCitizen>,
    pub elapsed: Duration,
}

impl std::fmt::Debug for DemoCitizen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoCitizen")
            .field("village_code", &self.village_code)
            .finish_non_exhaustive()
    }
}

/// How many demo citizens a seed names.
const DEMO_CITIZENS: usize = 3;

/// A synthetic person a newcomer can bind as (`绑定 身份证号 姓名`) and look up. Debug
/// output leaves out the name and the ID number, as for real persons.
#[derive(Clone)]
pub struct DemoCitizen {
    pub name: String,
    pub id_number: String,
    pub village_code: String,
    /// Their 农村低保 of last month, in fen.
    pub last_dibao_fen: i64,
}

fn progress(len: usize, template: &str) -> ProgressBar {
    ProgressBar::new(len as u64)
        .with_style(ProgressStyle::with_template(template).expect("template is valid"))
}

/// Registers the synthetic county of `scale` as of `today` when identity holds no
/// persons; `None` when it does (the county is never seeded twice).
pub async fn county(
    identity: &Identity,
    scale: Scale,
    today: NaiveDate,
) -> Result<Option<CountySeeded>, IdentityError> {
    let started = Instant::now();
    let villages = identity.villages().await?;
    let bar = progress(
        scale.persons(),
        "{spinner} seeding persons {pos}/{len} {per_sec} eta {eta}",
    );
    let households = county::households(&villages, scale.persons(), SEED, today)
        .inspect(|household| bar.inc(household.members.len() as u64))
        .map(county::SynthHousehold::into_register);
    let registered = identity.register_county(households).await?;
    bar.finish_and_clear();
    Ok(registered.map(|r| CountySeeded {
        households: r.households,
        persons: r.persons,
        facts: r.facts,
        elapsed: started.elapsed(),
    }))
}

/// Loads ten years (up to last month) of payments for the county [`county`] seeded with
/// `scale` and `today`, when ledger has none; `None` when it has some. `persons` is how
/// many the county has, for the progress bar.
pub async fn payments(
    identity: &Identity,
    ledger: &Ledger,
    scale: Scale,
    persons: u64,
    today: NaiveDate,
    clean: bool,
) -> anyhow::Result<Option<PaymentsSeeded>> {
    let started = Instant::now();
    let mut programs: Vec<SeedProgram> = ledger
        .programs()
        .await
        .context("reading ledger's programs")?
        .into_values()
        .map(|p| SeedProgram {
            code: p.code,
            period_kind: p.period_kind,
            standard_fen: p.standard_fen,
            ceiling_fen: p.ceiling_fen,
            per_household: p.per_household,
        })
        .collect();
    programs.sort_by(|a, b| a.code.cmp(&b.code));
    let kinds: HashMap<String, _> = programs
        .iter()
        .map(|p| (p.code.clone(), p.period_kind))
        .collect();
    let this_month =
        NaiveDate::from_ymd_opt(today.year(), today.month(), 1).expect("first of a month exists");
    let last_period = this_month
        .checked_sub_months(chrono::Months::new(1))
        .unwrap_or(this_month);
    let mut plan = PaymentPlan::new(programs, last_period.year() - 9, last_period, PAYMENTS_SEED);
    if clean {
        plan = plan.clean();
    }

    // The same households again, now as ledger sees persons: by key, masked.
    let villages = identity
        .villages()
        .await
        .context("reading identity's villages")?;
    let keyer = &identity.pii.keyer;
    let bar = progress(
        usize::try_from(persons).unwrap_or(usize::MAX),
        "{spinner} seeding payments for persons {pos}/{len} {per_sec} eta {eta}",
    );
    // A few living persons paid 农村低保 last month, for a newcomer to play on the local
    // WeChat (`scripts/up` prints them). Synthetic persons, never a real register's.
    let mut demo: Vec<DemoCitizen> = Vec::new();
    let last = last_period;
    let history =
        county::households(&villages, scale.persons(), SEED, today).flat_map(|household| {
            bar.inc(household.members.len() as u64);
            let members: Vec<SeedPerson> = household
                .members
                .iter()
                .map(|person| SeedPerson {
                    person_key: *keyer.key_of(&person.id_number).as_bytes(),
                    name_masked: mask_name(&person.name),
                    id_masked: person.id_number.masked(),
                    household_code: household.code.clone(),
                    village_code: household.village_code.clone(),
                    birth_date: person.id_number.birth_date(),
                    male: person.id_number.is_male(),
                    is_head: person.relation == Relation::Head,
                    deceased_since: person
                        .facts
                        .iter()
                        .find(|f| f.kind == FactKind::Deceased)
                        .map(|f| f.since),
                    moved_out_since: person
                        .facts
                        .iter()
                        .find(|f| f.kind == FactKind::MovedOut)
                        .map(|f| f.since),
                    member_since: person.member_since,
                    holds: person
                        .facts
                        .iter()
                        .filter_map(|f| holding(f.kind).map(|h| (h, f.since)))
                        .chain(
                            person
                                .properties
                                .iter()
                                .filter(|p| p.area_centi_m2 > LARGE_PROPERTY_CENTI_M2)
                                .map(|p| (Holding::PropertyOwner, p.since)),
                        )
                        .collect(),
                })
                .collect();
            let mut payments = plan.household_payments(&members);
            // Oldest first, so payment ids follow time within a household as monthly rolls
            // make them, and a lookup's newest-first pages start with last month.
            payments.sort_by_key(|p| p.period_start);
            if demo.len() < DEMO_CITIZENS {
                for person in &household.members {
                    let key = *keyer.key_of(&person.id_number).as_bytes();
                    let paid = payments.iter().find(|p| {
                        p.person_key == key
                            && p.program_code == "DIBAO_RURAL"
                            && p.period_start == last
                    });
                    let alive = !person.facts.iter().any(|f| f.kind == FactKind::Deceased);
                    if let (Some(paid), true) = (paid, alive) {
                        demo.push(DemoCitizen {
                            name: person.name.clone(),
                            id_number: person.id_number.expose().to_owned(),
                            village_code: household.village_code.clone(),
                            last_dibao_fen: paid.amount_fen,
                        });
                        break;
                    }
                }
            }
            payments
                .into_iter()
                .map(|p| historic(p, &kinds, &ledger.bank))
        });
    let roll = HistoryRoll {
        file_name: "历史发放数据（合成）",
        imported_by: "huimin seed",
        fingerprint: Sha256::digest(format!("huimin seed {PAYMENTS_SEED} {today}")).into(),
    };
    let loaded = ledger
        .load_history(roll, history)
        .await
        .context("loading the payment history")?;
    bar.finish_and_clear();
    Ok(loaded.map(|loaded| PaymentsSeeded {
        payments: loaded.payments,
        total_fen: loaded.total_fen,
        planted: plan.planted().to_vec(),
        demo_citizens: demo,
        elapsed: started.elapsed(),
    }))
}

/// What mirroring the facts and the first run of the cross-checks did.
#[derive(Debug)]
pub struct ChecksSeeded {
    pub facts: u64,
    pub outcome: huimin_ledger::checks::RunOutcome,
    /// Open findings per rule.
    pub by_rule: Vec<(String, i64)>,
}

/// Facts read from identity per batch when mirroring them into ledger.
const FACTS_BATCH: i64 = 50_000;

/// Copies identity's facts into ledger's mirror (in-process, as ledger's follower would
/// over gRPC) and runs every cross-check rule over the county once.
pub async fn checks(identity: &Identity, ledger: &Ledger) -> anyhow::Result<ChecksSeeded> {
    let bar = progress(0, "{spinner} mirroring facts {pos} {per_sec}");
    let mut after = ledger
        .facts_cursor()
        .await
        .context("reading the facts cursor")?;
    let mut facts = 0u64;
    loop {
        let batch = identity
            .facts_after(after, FACTS_BATCH)
            .await
            .context("reading identity's facts")?;
        let Some(last) = batch.last() else { break };
        after = last.version;
        let mirrored: Vec<MirroredFact> = batch
            .into_iter()
            .map(|f| MirroredFact {
                fact_id: f.fact_id,
                person_key: *f.person_key.as_bytes(),
                kind: f.kind,
                since: f.since,
                until: f.until,
                attrs: f.attrs,
                source: f.source,
                version: f.version,
            })
            .collect();
        ledger
            .apply_facts(&mirrored)
            .await
            .context("writing ledger's facts mirror")?;
        facts += mirrored.len() as u64;
        bar.inc(mirrored.len() as u64);
    }
    bar.finish_and_clear();
    let bar = progress(
        0,
        "{spinner} cross-checks: rule {pos}/{len} {msg} elapsed {elapsed}",
    );
    let outcome = ledger
        .run_checks(Scope::Full, "huimin seed", |done| {
            bar.set_length(done.total as u64);
            bar.set_position(done.done as u64);
            bar.set_message(done.rule_id);
        })
        .await
        .context("running the cross-checks")?;
    bar.finish_and_clear();
    let by_rule = ledger
        .open_findings_by_rule()
        .await
        .context("counting findings")?;
    Ok(ChecksSeeded {
        facts,
        outcome,
        by_rule,
    })
}

/// Property above this area (hundredths of m²) rules a household out of help, as the
/// default `property_owner` rule reads it (150 m²).
const LARGE_PROPERTY_CENTI_M2: u64 = 15_000;

/// What a register fact rules out, for the payment plan.
fn holding(kind: FactKind) -> Option<Holding> {
    match kind {
        FactKind::PublicEmployee => Some(Holding::PublicEmployee),
        FactKind::VillageCadre => Some(Holding::VillageCadre),
        FactKind::CadreRelative => Some(Holding::CadreRelative),
        FactKind::VehicleOwner => Some(Holding::VehicleOwner),
        FactKind::CompanyOwner => Some(Holding::CompanyOwner),
        FactKind::Deceased | FactKind::MovedOut => None,
    }
}

/// A generated payment as ledger loads it.
fn historic(
    p: SeedPayment,
    kinds: &HashMap<String, huimin_ledger::domain::PeriodKind>,
    bank: &huimin_ledger::bank::BankKeyer,
) -> HistoricPayment {
    let kind = *kinds
        .get(&p.program_code)
        .expect("every row's program is one of the plan's");
    HistoricPayment {
        person_key: PersonKey::from_bytes(p.person_key),
        name_masked: p.name_masked,
        id_masked: p.id_masked,
        household_code: p.household_code,
        village_code: p.village_code,
        period: Period::from_text(kind, &p.period)
            .expect("the plan writes each period in its kind's canonical form"),
        program_code: p.program_code,
        amount_fen: p.amount_fen,
        bank_hash: bank.hash(&p.bank_account),
        bank_masked: p.bank_masked,
    }
}
