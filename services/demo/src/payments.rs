//! Ten years of synthetic payments for `huimin seed`: what 博白县's programs would have paid a
//! synthetic population, one household at a time, plus a documented handful of planted
//! irregularities for the cross-checks to find.
//!
//! Pure and deterministic: the same programs, window, seed and household stream give the same
//! payments. Nothing is kept per household, so a county of 2,000,000 persons streams through.
//!
//! Volume: about 10 payments per person over ten years (≈ 20 million for the county, ≈ 200,000
//! for the 20,000-person demo). 城乡居民基础养老金 (`PENSION_RURAL`) is deliberately not
//! generated: paid monthly to everyone over 60 it alone would add ≈ 30 million rows and drown
//! the means-tested programs the checks are about.
//!
//! Every run plants [`PLANTED_PER_KIND`] of each [`Irregularity`], whatever its scale, lists
//! them in [`PaymentPlan::planted`] and marks the irregular rows (the extra or altered ones,
//! never the regular payment they copy).

use chrono::{Datelike, NaiveDate};
use rand::rngs::StdRng;
use rand::seq::index;
use rand::{Rng, SeedableRng};

use huimin_ledger::domain::PeriodKind;

use self::enrol::{Sink, enrol, payee_at};

mod enrol;

/// How many of each irregularity a run plants, whatever its scale.
pub const PLANTED_PER_KIND: usize = 5;

/// A person as identity's synthetic population gives them, masked for the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedPerson {
    pub person_key: [u8; 32],
    pub name_masked: String,
    pub id_masked: String,
    pub household_code: String,
    pub village_code: String,
    pub birth_date: NaiveDate,
    pub male: bool,
    pub is_head: bool,
    pub deceased_since: Option<NaiveDate>,
    /// When they moved out of the county (户籍迁出), if they did.
    pub moved_out_since: Option<NaiveDate>,
    /// When they joined this household, if not at birth (a household split off from
    /// another): nothing is paid to or through them here before.
    pub member_since: Option<NaiveDate>,
    /// What the registers say that rules out means-tested help, from when.
    pub holds: Vec<(Holding, NaiveDate)>,
}

/// A fact that rules a person (and their household) out of 低保, 特困 and 危房改造: the
/// plan pays none of these to such a household, except where it plants an irregularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Holding {
    PublicEmployee,
    VillageCadre,
    CadreRelative,
    VehicleOwner,
    CompanyOwner,
    PropertyOwner,
}

/// A program as the `programs` table has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedProgram {
    pub code: String,
    pub period_kind: PeriodKind,
    pub standard_fen: i64,
    pub ceiling_fen: i64,
    pub per_household: bool,
}

/// One payment row, ready for COPY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedPayment {
    pub person_key: [u8; 32],
    pub name_masked: String,
    pub id_masked: String,
    pub household_code: String,
    pub village_code: String,
    pub program_code: String,
    /// `2026-07` (monthly), `2026-Q3` (quarterly), `2026` (yearly and one-off).
    pub period: String,
    /// The first day of the period.
    pub period_start: NaiveDate,
    pub amount_fen: i64,
    /// Like `6228********5678`, one account per household.
    pub bank_masked: String,
    /// The whole synthetic account number `bank_masked` masks (what the bank's list holds;
    /// the ledger keeps only its keyed hash).
    pub bank_account: String,
    /// Set on the rows that are planted irregularities.
    pub irregularity: Option<Irregularity>,
}

/// An irregularity planted on purpose, for supervision to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Irregularity {
    /// 死亡后继续发放: 2–3 more monthly payments after the month of death.
    PaidAfterDeath,
    /// 重复发放: a 低保 or 高龄津贴 payment paid twice for the same person and period.
    TwiceInOnePeriod,
    /// 超标准发放: one payment above the program's ceiling.
    AboveStandard,
    /// 重复享受危房改造: a household renovated with public money in two different years.
    RenovationTwice,
    /// 财政供养人员吃低保: a public employee paid 低保 for the last three months.
    PublicEmployeeOnDibao,
    /// 优亲厚友: a serving village cadre paid 低保 for the last three months.
    CadreOnDibao,
    /// 有车吃低保: a vehicle owner paid 低保 for the last three months.
    VehicleOwnerOnDibao,
    /// 迁出后继续发放: 低保 for the two months after the month of moving out.
    PaidAfterMovingOut,
    /// 年龄不符: 高龄津贴 for the last three months to someone aged 75–79.
    ElderlyUnderAge,
    /// 低保与特困同时享受: 低保 paid in a month the person was paid 特困.
    DibaoWithTekun,
    /// 一卡多户: a household's payments into the previous household's account.
    SharedAccount,
}

impl Irregularity {
    pub const ALL: [Irregularity; 11] = [
        Irregularity::PaidAfterDeath,
        Irregularity::TwiceInOnePeriod,
        Irregularity::AboveStandard,
        Irregularity::RenovationTwice,
        Irregularity::PublicEmployeeOnDibao,
        Irregularity::CadreOnDibao,
        Irregularity::VehicleOwnerOnDibao,
        Irregularity::PaidAfterMovingOut,
        Irregularity::ElderlyUnderAge,
        Irregularity::DibaoWithTekun,
        Irregularity::SharedAccount,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Irregularity::PaidAfterDeath => "paid_after_death",
            Irregularity::TwiceInOnePeriod => "twice_in_one_period",
            Irregularity::AboveStandard => "above_standard",
            Irregularity::RenovationTwice => "renovation_twice",
            Irregularity::PublicEmployeeOnDibao => "public_employee_on_dibao",
            Irregularity::CadreOnDibao => "cadre_on_dibao",
            Irregularity::VehicleOwnerOnDibao => "vehicle_owner_on_dibao",
            Irregularity::PaidAfterMovingOut => "paid_after_moving_out",
            Irregularity::ElderlyUnderAge => "elderly_under_age",
            Irregularity::DibaoWithTekun => "dibao_with_tekun",
            Irregularity::SharedAccount => "shared_account",
        }
    }

    /// The cross-check rule that must find it.
    pub fn rule(&self) -> &'static str {
        match self {
            Irregularity::PaidAfterDeath => "paid_after_death",
            Irregularity::TwiceInOnePeriod => "paid_twice",
            Irregularity::AboveStandard => "above_standard",
            Irregularity::RenovationTwice => "grant_repeated",
            Irregularity::PublicEmployeeOnDibao => "public_employee",
            Irregularity::CadreOnDibao => "cadre_favoritism",
            Irregularity::VehicleOwnerOnDibao => "vehicle_owner",
            Irregularity::PaidAfterMovingOut => "paid_after_moving_out",
            Irregularity::ElderlyUnderAge => "age_out_of_range",
            Irregularity::DibaoWithTekun => "exclusive_programs",
            Irregularity::SharedAccount => "shared_bank_account",
        }
    }
}

/// One planted irregularity: what, whose person key, which program, and the period of the
/// irregular row (for `PaidAfterDeath`, the first month paid after death).
pub type Planted = (Irregularity, [u8; 32], String, String);

/// Planting picks its victims among the first this-many candidates of each kind, so the
/// handful is spread a little yet complete even at the 20,000-person scale (which sees ≈ 28,
/// 36, 900 and 4,700 candidates of each).
const AFTER_DEATH_WINDOW: usize = 15;
const RENOVATION_WINDOW: usize = 9;
const TWICE_WINDOW: usize = 60;
const ABOVE_WINDOW: usize = 150;
/// The fact-based kinds: their candidates are rarer, so the windows are small.
const FACT_WINDOW: usize = 12;

/// Card number prefixes (BIN) of the banks that pay subsidies in rural Guangxi.
const BANK_PREFIXES: [&str; 5] = ["6228", "6217", "6230", "6221", "6231"];

/// Eight digits for the hidden middle of a household's synthetic account, fixed by its
/// code (so the plan's random stream is the same as before accounts were whole).
fn middle_digits(household_code: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let digest = Sha256::digest(household_code.as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().expect("eight bytes"));
    format!("{:08}", n % 100_000_000)
}

/// The month indices at which periods of `kind` start within `lo..=hi`.
fn starts(kind: PeriodKind, lo: i32, hi: i32) -> impl Iterator<Item = i32> {
    let (step, hi) = match kind {
        PeriodKind::Monthly => (1, hi),
        PeriodKind::Quarterly => (3, hi),
        PeriodKind::Yearly => (12, hi),
        // Paid once, in the first month of the span.
        PeriodKind::OneOff => (1, hi.min(lo)),
    };
    let first = (lo + step - 1).div_euclid(step) * step;
    (first..=hi).step_by(step as usize)
}

struct Program {
    code: String,
    kind: PeriodKind,
    standard: i64,
    ceiling: i64,
}

/// Where the programs this generator enrols people in sit in `PaymentPlan::programs`.
struct Known {
    dibao: Option<usize>,
    tekun: Option<usize>,
    elderly: Option<usize>,
    living: Option<usize>,
    nursing: Option<usize>,
    farmland: Option<usize>,
    forest: Option<usize>,
    yulu: Option<usize>,
    renovation: Option<usize>,
    relief: Option<usize>,
    family_planning: Option<usize>,
    veteran: Option<usize>,
    orphan: Option<usize>,
}

/// The window's periods, with their texts formatted once. Months are indexed from January of
/// the first year; a quarter or year is found from the index of its first month.
struct Calendar {
    first_year: i32,
    months: Vec<(String, NaiveDate)>,
    quarters: Vec<(String, NaiveDate)>,
    years: Vec<(String, NaiveDate)>,
}

impl Calendar {
    fn new(first_year: i32, last_period: NaiveDate) -> Calendar {
        let first_day = |year, month| {
            NaiveDate::from_ymd_opt(year, month, 1).expect("the 1st of a month is a date")
        };
        let mut calendar = Calendar {
            first_year,
            months: Vec::new(),
            quarters: Vec::new(),
            years: Vec::new(),
        };
        let count = calendar.month_index(last_period.year(), last_period.month()) + 1;
        for index in 0..count.max(0) {
            let year = first_year + index / 12;
            let month = (index % 12) as u32 + 1;
            calendar
                .months
                .push((format!("{year}-{month:02}"), first_day(year, month)));
            if month % 3 == 1 {
                let quarter = month / 3 + 1;
                calendar
                    .quarters
                    .push((format!("{year}-Q{quarter}"), first_day(year, month)));
            }
            if month == 1 {
                calendar.years.push((year.to_string(), first_day(year, 1)));
            }
        }
        calendar
    }

    fn last_month(&self) -> i32 {
        self.months.len() as i32 - 1
    }

    fn month_index(&self, year: i32, month: u32) -> i32 {
        (year - self.first_year) * 12 + month as i32 - 1
    }

    /// The first month whose 1st falls on or after the given day.
    fn first_month_from(&self, year: i32, month: u32, day: u32) -> i32 {
        self.month_index(year, month) + i32::from(day > 1)
    }

    fn period(&self, kind: PeriodKind, month: i32) -> &(String, NaiveDate) {
        let month = month as usize;
        match kind {
            PeriodKind::Monthly => &self.months[month],
            PeriodKind::Quarterly => &self.quarters[month / 3],
            PeriodKind::Yearly | PeriodKind::OneOff => &self.years[month / 12],
        }
    }

    /// The months a person can be paid for: from the first month starting after birth (or
    /// after joining the household) to the month of death or moving out. A period is paid
    /// when its first day falls in this span.
    fn life(&self, person: &SeedPerson) -> Life {
        let birth = person.birth_date;
        let month_of = |day: NaiveDate| self.month_index(day.year(), day.month());
        let to = [person.deceased_since, person.moved_out_since]
            .into_iter()
            .flatten()
            .map(month_of)
            .min()
            .unwrap_or(i32::MAX);
        let joined = person.member_since.unwrap_or(birth).max(birth);
        Life {
            from: self.first_month_from(joined.year(), joined.month(), joined.day()),
            to,
            birth: (birth.year(), birth.month(), birth.day()),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Life {
    from: i32,
    to: i32,
    birth: (i32, u32, u32),
}

impl Life {
    /// The first month starting on or after the birthday of `age`.
    fn month_aged(&self, calendar: &Calendar, age: i32) -> i32 {
        let (year, month, day) = self.birth;
        calendar.first_month_from(year + age, month, day)
    }

    fn alive_adult_at(&self, calendar: &Calendar, month: i32) -> bool {
        self.from <= month && month <= self.to && self.month_aged(calendar, 18) <= month
    }
}

/// Picks which candidates of one kind get planted.
struct Quota {
    targets: Vec<usize>,
    seen: usize,
}

impl Quota {
    fn new(rng: &mut StdRng, window: usize) -> Quota {
        let mut targets = index::sample(rng, window, PLANTED_PER_KIND).into_vec();
        targets.sort_unstable();
        Quota { targets, seen: 0 }
    }

    /// Counts one more candidate; true when it is one to plant.
    fn take(&mut self) -> bool {
        let hit = self.targets.binary_search(&self.seen).is_ok();
        self.seen += 1;
        hit
    }
}

/// Who gets what over the window, decided household by household from one seeded stream.
pub struct PaymentPlan {
    rng: StdRng,
    calendar: Calendar,
    programs: Vec<Program>,
    known: Known,
    after_death: Quota,
    renovation_twice: Quota,
    twice: Quota,
    above: Quota,
    /// One quota per fact-based kind, in [`Irregularity::ALL`] order from index 4.
    by_fact: Vec<Quota>,
    /// The previous household's account (number, masked), for [`Irregularity::SharedAccount`].
    previous_account: Option<(String, String)>,
    /// False for a clean county: nothing is planted.
    plants: bool,
    planted: Vec<Planted>,
}

impl PaymentPlan {
    /// Plans payments for the years `first_year` to `last_period`'s year, months up to and
    /// including `last_period`'s month. Programs the generator has no rule for are ignored.
    pub fn new(
        programs: Vec<SeedProgram>,
        first_year: i32,
        last_period: NaiveDate,
        seed: u64,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let programs: Vec<Program> = programs
            .into_iter()
            .map(|program| Program {
                kind: program.period_kind,
                code: program.code,
                standard: program.standard_fen,
                ceiling: program.ceiling_fen,
            })
            .collect();
        let find = |code: &str| programs.iter().position(|program| program.code == code);
        let known = Known {
            dibao: find("DIBAO_RURAL"),
            tekun: find("TEKUN"),
            elderly: find("ELDERLY"),
            living: find("DISABILITY_LIVING"),
            nursing: find("DISABILITY_NURSING"),
            farmland: find("FARMLAND"),
            forest: find("FOREST_ECO"),
            yulu: find("YULU"),
            renovation: find("HOUSE_RENOVATION"),
            relief: find("TEMP_RELIEF"),
            family_planning: find("FAMILY_PLANNING"),
            veteran: find("VETERAN_CARE"),
            orphan: find("ORPHAN"),
        };
        let after_death = Quota::new(&mut rng, AFTER_DEATH_WINDOW);
        let renovation_twice = Quota::new(&mut rng, RENOVATION_WINDOW);
        let twice = Quota::new(&mut rng, TWICE_WINDOW);
        let above = Quota::new(&mut rng, ABOVE_WINDOW);
        // A stream of its own, so the first four kinds land where they always did.
        let mut fact_rng = StdRng::seed_from_u64(seed ^ 0x6661_6374);
        let by_fact = (4..Irregularity::ALL.len())
            .map(|_| Quota::new(&mut fact_rng, FACT_WINDOW))
            .collect();
        PaymentPlan {
            after_death,
            renovation_twice,
            twice,
            above,
            by_fact,
            previous_account: None,
            plants: true,
            rng,
            calendar: Calendar::new(first_year, last_period),
            programs,
            known,
            planted: Vec::new(),
        }
    }

    /// The same plan without planted irregularities: a clean county.
    pub fn clean(mut self) -> Self {
        self.plants = false;
        self
    }

    /// All payments of one household's members (call once per household, members in order,
    /// head first).
    pub fn household_payments(&mut self, members: &[SeedPerson]) -> Vec<SeedPayment> {
        if members.is_empty() || self.calendar.months.is_empty() {
            return Vec::new();
        }
        let (prefix, last) = (
            BANK_PREFIXES[self.rng.gen_range(0..BANK_PREFIXES.len())],
            self.rng.gen_range(0..10_000),
        );
        let bank = format!("{prefix}********{last:04}");
        let account = format!(
            "{prefix}{}{last:04}",
            middle_digits(&members[0].household_code)
        );
        let lives: Vec<Life> = members.iter().map(|m| self.calendar.life(m)).collect();
        let mut sink = Sink {
            calendar: &self.calendar,
            programs: &self.programs,
            bank,
            account,
            rows: Vec::new(),
        };
        enrol(&mut self.rng, &self.known, &mut sink, members, &lives);
        let mut rows = sink.rows;
        let account = (sink.account, sink.bank);
        if self.plants {
            self.plant(members, &lives, &mut rows);
        }
        if !rows.is_empty() {
            self.previous_account = Some(account);
        }
        rows
    }

    /// The irregularities planted so far, in the order they were planted.
    pub fn planted(&self) -> &[Planted] {
        &self.planted
    }

    /// Plants at most one irregularity in this household, if it is a chosen candidate.
    fn plant(&mut self, members: &[SeedPerson], lives: &[Life], rows: &mut Vec<SeedPayment>) {
        if self.planted.len() == Irregularity::ALL.len() * PLANTED_PER_KIND || rows.is_empty() {
            return;
        }
        let calendar = &self.calendar;
        let last = calendar.last_month();

        // Paid after death: the first member who was paid monthly in the month they died,
        // with three months left in the window.
        let after_death = members.iter().zip(lives).find_map(|(person, life)| {
            person.deceased_since?;
            if life.to < 0 || life.to + 3 > last {
                return None;
            }
            let start = calendar.months[life.to as usize].1;
            rows.iter().position(|row| {
                row.person_key == person.person_key
                    && row.period_start == start
                    && self.program(&row.program_code).kind == PeriodKind::Monthly
            })
        });
        if let Some(row) = after_death
            && self.after_death.take()
        {
            let death_month = calendar.month_index(
                rows[row].period_start.year(),
                rows[row].period_start.month(),
            );
            let extra = self.rng.gen_range(2..=3);
            for month in death_month + 1..=death_month + extra {
                let (period, start) = &calendar.months[month as usize];
                let mut late = rows[row].clone();
                late.period = period.clone();
                late.period_start = *start;
                late.irregularity = Some(Irregularity::PaidAfterDeath);
                rows.push(late);
            }
            self.record(
                Irregularity::PaidAfterDeath,
                &rows[rows.len() - extra as usize],
            );
            return;
        }

        // Renovated twice: a household renovated once, paid again in another year.
        if let Some(renovation) = self.known.renovation
            && let Some(row) = rows
                .iter()
                .position(|row| row.program_code == self.programs[renovation].code)
        {
            let first_year = rows[row].period_start.year() - calendar.first_year;
            let years: Vec<i32> = (0..calendar.years.len() as i32)
                .filter(|&year| {
                    year != first_year && payee_at(calendar, lives, year * 12).is_some()
                })
                .collect();
            if !years.is_empty() && self.renovation_twice.take() {
                let year = years[self.rng.gen_range(0..years.len())];
                let payee = payee_at(calendar, lives, year * 12)
                    .expect("the year was kept for having a payee");
                let (period, start) = &calendar.years[year as usize];
                let mut again = rows[row].clone();
                let payee = &members[payee];
                again.person_key = payee.person_key;
                again.name_masked.clone_from(&payee.name_masked);
                again.id_masked.clone_from(&payee.id_masked);
                again.period = period.clone();
                again.period_start = *start;
                again.irregularity = Some(Irregularity::RenovationTwice);
                self.record(Irregularity::RenovationTwice, &again);
                rows.push(again);
                return;
            }
        }

        // Paid twice: a 低保 or 高龄津贴 payment duplicated.
        let twice_codes = [self.known.dibao, self.known.elderly]
            .map(|program| program.map(|program| self.programs[program].code.as_str()));
        let candidates: Vec<usize> = (0..rows.len())
            .filter(|&row| twice_codes.contains(&Some(rows[row].program_code.as_str())))
            .collect();
        if !candidates.is_empty() && self.twice.take() {
            let row = candidates[self.rng.gen_range(0..candidates.len())];
            let mut again = rows[row].clone();
            again.irregularity = Some(Irregularity::TwiceInOnePeriod);
            self.record(Irregularity::TwiceInOnePeriod, &again);
            rows.push(again);
            return;
        }

        // Above the ceiling: any payment of the household, raised by 10–50%.
        if self.above.take() {
            let row = self.rng.gen_range(0..rows.len());
            let ceiling = self.program(&rows[row].program_code).ceiling;
            let raise = (ceiling * self.rng.gen_range(10..=50) / 100 / 1000 * 1000).max(1000);
            rows[row].amount_fen = ceiling + raise;
            rows[row].irregularity = Some(Irregularity::AboveStandard);
            self.record(Irregularity::AboveStandard, &rows[row]);
            return;
        }
        self.plant_by_fact(members, lives, rows);
    }

    /// The kinds that hang on a fact of the registers (or on the household before): the
    /// first candidate kind of this household that its quota picks.
    fn plant_by_fact(
        &mut self,
        members: &[SeedPerson],
        lives: &[Life],
        rows: &mut Vec<SeedPayment>,
    ) {
        let last = self.calendar.last_month();
        if last < 3 {
            return;
        }
        let month_of = |day: NaiveDate| self.calendar.month_index(day.year(), day.month());
        // A public employee in the household makes the household's 低保 a finding of its own.
        let employee_at = |at: usize| {
            members
                .iter()
                .enumerate()
                .any(|(j, m)| j != at && m.holds.iter().any(|&(h, _)| h == Holding::PublicEmployee))
        };
        let holder = |holding: Holding| {
            members
                .iter()
                .zip(lives)
                .enumerate()
                .position(|(at, (person, life))| {
                    !employee_at(at)
                    && life.to >= last
                    && life.from <= last - 2
                    && person
                        .holds
                        .iter()
                        .any(|&(h, since)| h == holding && month_of(since) <= last - 2)
                    // Nothing else on the registers, so the plant is found by its one rule
                    // (a payee who also owns a large building would be a second finding).
                    && person.holds.iter().all(|&(h, _)| h == holding)
                })
        };
        let candidates: [Option<(Irregularity, usize)>; 7] = [
            holder(Holding::PublicEmployee).map(|m| (Irregularity::PublicEmployeeOnDibao, m)),
            holder(Holding::VillageCadre).map(|m| (Irregularity::CadreOnDibao, m)),
            holder(Holding::VehicleOwner).map(|m| (Irregularity::VehicleOwnerOnDibao, m)),
            members
                .iter()
                .zip(lives)
                .position(|(person, life)| {
                    person.moved_out_since.is_some_and(|day| {
                        let m = month_of(day);
                        m >= life.from.max(0) && m + 2 <= last && life.to == m
                    })
                })
                .map(|m| (Irregularity::PaidAfterMovingOut, m)),
            lives
                .iter()
                .position(|life| {
                    life.to >= last
                        && life.from <= last - 2
                        && life.month_aged(&self.calendar, 75) <= last - 2
                        && life.month_aged(&self.calendar, 80) > last
                })
                .map(|m| (Irregularity::ElderlyUnderAge, m)),
            self.known.tekun.and_then(|tekun| {
                let code = &self.programs[tekun].code;
                rows.iter()
                    .position(|row| &row.program_code == code)
                    .map(|row| (Irregularity::DibaoWithTekun, row))
            }),
            self.previous_account
                .as_ref()
                .map(|_| (Irregularity::SharedAccount, 0)),
        ];
        for (kind, at) in candidates.into_iter().flatten() {
            let quota = Irregularity::ALL
                .iter()
                .position(|k| *k == kind)
                .expect("every kind is listed")
                - 4;
            if !self.by_fact[quota].take() {
                continue;
            }
            let Some(dibao) = self.known.dibao else {
                return;
            };
            let dibao_standard = self.programs[dibao].standard;
            let pay = |person: &SeedPerson,
                       program: &Program,
                       month: i32,
                       sink_rows: &mut Vec<SeedPayment>,
                       template: &SeedPayment| {
                let (period, start) = self.calendar.period(program.kind, month);
                let mut row = template.clone();
                row.person_key = person.person_key;
                row.name_masked.clone_from(&person.name_masked);
                row.id_masked.clone_from(&person.id_masked);
                row.program_code.clone_from(&program.code);
                row.period.clone_from(period);
                row.period_start = *start;
                row.amount_fen = program.standard;
                row.irregularity = Some(kind);
                sink_rows.push(row);
            };
            let template = rows[0].clone();
            let before = rows.len();
            match kind {
                Irregularity::PublicEmployeeOnDibao
                | Irregularity::CadreOnDibao
                | Irregularity::VehicleOwnerOnDibao => {
                    for month in last - 2..=last {
                        pay(&members[at], &self.programs[dibao], month, rows, &template);
                    }
                }
                Irregularity::PaidAfterMovingOut => {
                    let m = lives[at].to;
                    for month in m + 1..=m + 2 {
                        pay(&members[at], &self.programs[dibao], month, rows, &template);
                    }
                }
                Irregularity::ElderlyUnderAge => {
                    let Some(elderly) = self.known.elderly else {
                        return;
                    };
                    for month in last - 2..=last {
                        pay(
                            &members[at],
                            &self.programs[elderly],
                            month,
                            rows,
                            &template,
                        );
                    }
                }
                Irregularity::DibaoWithTekun => {
                    let mut again = rows[at].clone();
                    again.program_code.clone_from(&self.programs[dibao].code);
                    again.amount_fen = dibao_standard;
                    again.irregularity = Some(kind);
                    rows.push(again);
                }
                Irregularity::SharedAccount => {
                    let (account, masked) =
                        self.previous_account.clone().expect("a candidate has one");
                    for row in rows.iter_mut() {
                        row.bank_account.clone_from(&account);
                        row.bank_masked.clone_from(&masked);
                    }
                    rows[0].irregularity = Some(kind);
                    let first = rows[0].clone();
                    self.record(kind, &first);
                    return;
                }
                _ => unreachable!("only fact-based kinds are candidates here"),
            }
            let first = rows[before].clone();
            self.record(kind, &first);
            return;
        }
    }

    fn program(&self, code: &str) -> &Program {
        self.programs
            .iter()
            .find(|program| program.code == code)
            .expect("every row's program is one of the plan's")
    }

    fn record(&mut self, kind: Irregularity, row: &SeedPayment) {
        self.planted.push((
            kind,
            row.person_key,
            row.program_code.clone(),
            row.period.clone(),
        ));
    }
}

#[cfg(test)]
mod tests;
