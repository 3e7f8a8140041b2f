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
}

impl Irregularity {
    pub const ALL: [Irregularity; 4] = [
        Irregularity::PaidAfterDeath,
        Irregularity::TwiceInOnePeriod,
        Irregularity::AboveStandard,
        Irregularity::RenovationTwice,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Irregularity::PaidAfterDeath => "paid_after_death",
            Irregularity::TwiceInOnePeriod => "twice_in_one_period",
            Irregularity::AboveStandard => "above_standard",
            Irregularity::RenovationTwice => "renovation_twice",
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

    /// The months a person can be paid for: from the first month starting after birth to the
    /// month of death. A period is paid when its first day falls in this span.
    fn life(&self, person: &SeedPerson) -> Life {
        let birth = person.birth_date;
        let to = match person.deceased_since {
            Some(death) => self.month_index(death.year(), death.month()),
            None => i32::MAX,
        };
        Life {
            from: self.first_month_from(birth.year(), birth.month(), birth.day()),
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
        PaymentPlan {
            after_death: Quota::new(&mut rng, AFTER_DEATH_WINDOW),
            renovation_twice: Quota::new(&mut rng, RENOVATION_WINDOW),
            twice: Quota::new(&mut rng, TWICE_WINDOW),
            above: Quota::new(&mut rng, ABOVE_WINDOW),
            rng,
            calendar: Calendar::new(first_year, last_period),
            programs,
            known,
            planted: Vec::new(),
        }
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
        self.plant(members, &lives, &mut rows);
        rows
    }

    /// The irregularities planted so far, in the order they were planted.
    pub fn planted(&self) -> &[Planted] {
        &self.planted
    }

    /// Plants at most one irregularity in this household, if it is a chosen candidate.
    fn plant(&mut self, members: &[SeedPerson], lives: &[Life], rows: &mut Vec<SeedPayment>) {
        if self.planted.len() == 4 * PLANTED_PER_KIND || rows.is_empty() {
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
