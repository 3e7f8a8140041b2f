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
    /// `monthly`, `quarterly`, `yearly` or `one_off`; a program of any other kind is skipped.
    pub period_kind: &'static str,
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

// Enrolment rates, tuned so ten years come to ≈ 10 payments per person (see the module doc).
/// Households whose 2–10 year stretch on rural 低保 falls at least partly in the window. Stretches
/// may have begun before it, so the share on 低保 is steady at ≈ 4% of households a month,
/// near Guangxi's ≈ 5% of rural people.
const DIBAO_HOUSEHOLDS: f64 = 0.1;
/// Persons with a disability certificate (残疾人证) from some year on; with the splits below
/// ≈ 0.9% of persons get 护理补贴 and ≈ 1.1% 生活补贴, near Guangxi's shares.
const DISABLED_PERSONS: f64 = 0.016;
/// Of them, 一级 and 二级 (重度).
const SEVERE_DISABLED: f64 = 0.55;
/// Old people living alone who are 特困 (≈ 0.3% of all persons).
const TEKUN_OLD_SINGLES: f64 = 0.45;
const FARMLAND_HOUSEHOLDS: f64 = 0.7;
const FOREST_HOUSEHOLDS: f64 = 0.15;
/// Persons who at some time are 16–22 and study at a vocational school for three years.
const YULU_YOUTHS: f64 = 0.045;
/// Most of them before 2021, when 脱贫攻坚 made every 建档立卡 household's house safe.
const RENOVATION_HOUSEHOLDS: f64 = 0.006;
const TEMP_RELIEF_HOUSEHOLDS: f64 = 0.005;
const FAMILY_PLANNING_HOUSEHOLDS: f64 = 0.06;
/// Men over 60 who are 优抚对象 (old demobilised soldiers).
const VETERAN_OLD_MEN: f64 = 0.004;
const ORPHAN_CHILDREN: f64 = 0.0008;

/// Planting picks its victims among the first this-many candidates of each kind, so the
/// handful is spread a little yet complete even at the 20,000-person scale (which sees ≈ 28,
/// 36, 900 and 4,700 candidates of each).
const AFTER_DEATH_WINDOW: usize = 15;
const RENOVATION_WINDOW: usize = 9;
const TWICE_WINDOW: usize = 60;
const ABOVE_WINDOW: usize = 150;

/// Card number prefixes (BIN) of the banks that pay subsidies in rural Guangxi.
const BANK_PREFIXES: [&str; 5] = ["6228", "6217", "6230", "6221", "6231"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeriodKind {
    Monthly,
    Quarterly,
    Yearly,
    OneOff,
}

impl PeriodKind {
    fn parse(text: &str) -> Option<PeriodKind> {
        match text {
            "monthly" => Some(PeriodKind::Monthly),
            "quarterly" => Some(PeriodKind::Quarterly),
            "yearly" => Some(PeriodKind::Yearly),
            "one_off" => Some(PeriodKind::OneOff),
            _ => None,
        }
    }

    /// The month indices at which periods of this kind start within `lo..=hi`.
    fn starts(self, lo: i32, hi: i32) -> impl Iterator<Item = i32> {
        let (step, hi) = match self {
            PeriodKind::Monthly => (1, hi),
            PeriodKind::Quarterly => (3, hi),
            PeriodKind::Yearly => (12, hi),
            // Paid once, in the first month of the span.
            PeriodKind::OneOff => (1, hi.min(lo)),
        };
        let first = (lo + step - 1).div_euclid(step) * step;
        (first..=hi).step_by(step as usize)
    }
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

/// The payments of one household being assembled.
struct Sink<'a> {
    calendar: &'a Calendar,
    programs: &'a [Program],
    bank: String,
    rows: Vec<SeedPayment>,
}

impl Sink<'_> {
    fn push(&mut self, person: &SeedPerson, program: usize, month: i32, amount: i64) {
        let Program { code, kind, .. } = &self.programs[program];
        let (period, start) = self.calendar.period(*kind, month);
        self.rows.push(SeedPayment {
            person_key: person.person_key,
            name_masked: person.name_masked.clone(),
            id_masked: person.id_masked.clone(),
            household_code: person.household_code.clone(),
            village_code: person.village_code.clone(),
            program_code: code.clone(),
            period: period.clone(),
            period_start: *start,
            amount_fen: amount,
            bank_masked: self.bank.clone(),
            irregularity: None,
        });
    }

    /// Pays `person` every period of the program starting within `lo..=hi` and their life.
    /// With `grows`, `base` is today's amount and earlier years get less (see [`grown`]).
    fn span(
        &mut self,
        person: &SeedPerson,
        life: Life,
        program: usize,
        (lo, hi): (i32, i32),
        base: i64,
        grows: bool,
    ) {
        let lo = lo.max(life.from).max(0);
        let hi = hi.min(life.to).min(self.calendar.last_month());
        let years = self.calendar.years.len() as i32;
        let ceiling = self.programs[program].ceiling;
        for month in self.programs[program].kind.starts(lo, hi) {
            let amount = if grows {
                grown(base, years - 1 - month / 12)
            } else {
                base
            };
            self.push(person, program, month, amount.min(ceiling));
        }
    }

    /// Pays a household program for the periods starting within `lo..=hi`, each to the first
    /// member (the head, while alive) who is a living adult when the period starts.
    fn household(
        &mut self,
        members: &[SeedPerson],
        lives: &[Life],
        program: usize,
        (lo, hi): (i32, i32),
        amount: i64,
    ) {
        let hi = hi.min(self.calendar.last_month());
        let amount = amount.min(self.programs[program].ceiling);
        for month in self.programs[program].kind.starts(lo.max(0), hi) {
            if let Some(payee) = payee_at(self.calendar, lives, month) {
                self.push(&members[payee], program, month, amount);
            }
        }
    }
}

/// The first member, head first, who is a living adult when `month` starts.
fn payee_at(calendar: &Calendar, lives: &[Life], month: i32) -> Option<usize> {
    lives
        .iter()
        .position(|life| life.alive_adult_at(calendar, month))
}

/// Means-tested standards rose about 4% a year: `years_ago` years back, `base` was that much
/// less, rounded to 10 yuan.
fn grown(base: i64, years_ago: i32) -> i64 {
    if years_ago <= 0 {
        return base;
    }
    let percent = i64::from((100 - 4 * years_ago).max(50));
    let amount = (base * percent / 100 + 500) / 1000 * 1000;
    amount.clamp(1000, base)
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
            .filter_map(|program| {
                Some(Program {
                    kind: PeriodKind::parse(program.period_kind)?,
                    code: program.code,
                    standard: program.standard_fen,
                    ceiling: program.ceiling_fen,
                })
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
        let bank = format!(
            "{}********{:04}",
            BANK_PREFIXES[self.rng.gen_range(0..BANK_PREFIXES.len())],
            self.rng.gen_range(0..10_000)
        );
        let lives: Vec<Life> = members.iter().map(|m| self.calendar.life(m)).collect();
        let mut sink = Sink {
            calendar: &self.calendar,
            programs: &self.programs,
            bank,
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

/// The enrolment rules: who in this household gets which program, when and how much.
fn enrol(
    rng: &mut StdRng,
    known: &Known,
    sink: &mut Sink<'_>,
    members: &[SeedPerson],
    lives: &[Life],
) {
    let calendar = sink.calendar;
    let programs = sink.programs;
    let last = calendar.last_month();
    let years = calendar.years.len() as i32;
    let whole = (0, last);
    let head = lives[0];

    // 低保: the whole household, from January of some year for 2–10 years, at least one of
    // them in the window; the amount is the household's gap to the standard, in steps of 10
    // yuan.
    let mut on_dibao = false;
    if let Some(dibao) = known.dibao
        && rng.gen_bool(DIBAO_HOUSEHOLDS)
    {
        on_dibao = true;
        let length = rng.gen_range(2..=10);
        let start = rng.gen_range(1 - length..years);
        let span = (start * 12, (start + length) * 12 - 1);
        let program = &programs[dibao];
        let gap = (program.standard + rng.gen_range(-15..=14) * 1000).clamp(1000, program.ceiling);
        for (person, &life) in members.iter().zip(lives) {
            sink.span(person, life, dibao, span, gap, true);
        }
    }

    // 特困: an old person living alone, never at the same time as 低保.
    if let Some(tekun) = known.tekun
        && members.len() == 1
        && !on_dibao
        && head.month_aged(calendar, 60) <= last
        && rng.gen_bool(TEKUN_OLD_SINGLES)
    {
        // Many were 五保户 long before the window.
        let start = (rng.gen_range(-5..years) * 12).max(head.month_aged(calendar, 60));
        // 照料护理补贴 on top for those who cannot look after themselves.
        let care = [0, 0, 0, 10_000, 30_000][rng.gen_range(0..5)];
        let amount = programs[tekun].standard + care;
        sink.span(&members[0], head, tekun, (start, last), amount, true);
    }

    for (person, &life) in members.iter().zip(lives) {
        // 高龄津贴: everyone from 80, more from 90 and most from 100.
        if let Some(elderly) = known.elderly {
            let program = &programs[elderly];
            let (at80, at90, at100) = (
                life.month_aged(calendar, 80),
                life.month_aged(calendar, 90),
                life.month_aged(calendar, 100),
            );
            let nineties = (program.standard * 2).min(program.ceiling);
            sink.span(
                person,
                life,
                elderly,
                (at80, at90 - 1),
                program.standard,
                false,
            );
            sink.span(person, life, elderly, (at90, at100 - 1), nineties, false);
            sink.span(person, life, elderly, (at100, last), program.ceiling, false);
        }

        // 残疾人两项补贴: from the year the certificate was issued (maybe before the window).
        if rng.gen_bool(DISABLED_PERSONS) {
            let span = (rng.gen_range(-3..years) * 12, last);
            let severe = rng.gen_bool(SEVERE_DISABLED);
            let poor = on_dibao || rng.gen_bool(0.5);
            if let Some(nursing) = known.nursing
                && severe
            {
                let program = &programs[nursing];
                // Grade 一级 gets the ceiling rate.
                let amount = if rng.gen_bool(0.4) {
                    program.ceiling
                } else {
                    program.standard
                };
                sink.span(person, life, nursing, span, amount, false);
            }
            if let Some(living) = known.living
                && (poor || !severe)
            {
                sink.span(person, life, living, span, programs[living].standard, false);
            }
        }

        // 雨露计划: three school years at a vocational school, starting at 16 to 19.
        if let Some(yulu) = known.yulu
            && life.month_aged(calendar, 16) <= last
            && life.month_aged(calendar, 23) > 0
            && rng.gen_bool(YULU_YOUTHS)
        {
            let start = life.month_aged(calendar, rng.gen_range(16..=19));
            sink.span(
                person,
                life,
                yulu,
                (start, start + 35),
                programs[yulu].standard,
                false,
            );
        }

        // 优抚: old demobilised soldiers, the whole window.
        if let Some(veteran) = known.veteran
            && person.male
            && life.month_aged(calendar, 60) <= 0
            && rng.gen_bool(VETERAN_OLD_MEN)
        {
            sink.span(
                person,
                life,
                veteran,
                whole,
                programs[veteran].standard,
                false,
            );
        }

        // 孤儿: from some month of childhood until 18.
        if let Some(orphan) = known.orphan
            && life.month_aged(calendar, 18) > life.from.max(0)
            && life.from <= last
            && rng.gen_bool(ORPHAN_CHILDREN)
        {
            let at18 = life.month_aged(calendar, 18);
            let start = rng.gen_range(life.from.max(0)..at18);
            let program = &programs[orphan];
            // 机构集中养育 is paid the higher rate.
            let amount = if rng.gen_bool(0.3) {
                program.ceiling
            } else {
                program.standard
            };
            sink.span(person, life, orphan, (start, at18 - 1), amount, false);
        }
    }

    // 计划生育奖励扶助: the head and spouse from 60.
    if let Some(planning) = known.family_planning
        && rng.gen_bool(FAMILY_PLANNING_HOUSEHOLDS)
    {
        let couple = if members.len() > 1 && members[1].male != members[0].male {
            2
        } else {
            1
        };
        for (person, &life) in members.iter().zip(lives).take(couple) {
            let span = (life.month_aged(calendar, 60), last);
            sink.span(
                person,
                life,
                planning,
                span,
                programs[planning].standard,
                false,
            );
        }
    }

    // 耕地地力保护补贴: per 亩 of contracted land; the standard is a 5-亩 household's.
    if let Some(farmland) = known.farmland
        && rng.gen_bool(FARMLAND_HOUSEHOLDS)
    {
        let tenths_of_mu: i64 = if rng.gen_bool(0.95) {
            rng.gen_range(10..=90)
        } else {
            rng.gen_range(90..=500)
        };
        let amount = tenths_of_mu * programs[farmland].standard / 50;
        sink.household(members, lives, farmland, whole, amount);
    }

    // 生态公益林补偿: per 亩 of forest; the standard is a 30-亩 household's.
    if let Some(forest) = known.forest
        && rng.gen_bool(FOREST_HOUSEHOLDS)
    {
        let mu: i64 = if rng.gen_bool(0.95) {
            rng.gen_range(5..=60)
        } else {
            rng.gen_range(60..=200)
        };
        let amount = mu * programs[forest].standard / 30;
        sink.household(members, lives, forest, whole, amount);
    }

    // 危房改造: once in the window, varying by the work done, in steps of 1,000 yuan.
    if let Some(renovation) = known.renovation
        && rng.gen_bool(RENOVATION_HOUSEHOLDS)
    {
        let month = if rng.gen_bool(0.6) {
            rng.gen_range(0..=last.min(4 * 12 - 1))
        } else {
            rng.gen_range(0..=last)
        };
        let amount = programs[renovation].standard + rng.gen_range(-5..=25) * 100_000;
        sink.household(
            members,
            lives,
            renovation,
            (month, month),
            amount.max(100_000),
        );
    }

    // 临时救助: once, 500 to 5,000 yuan in steps of 100.
    if let Some(relief) = known.relief
        && rng.gen_bool(TEMP_RELIEF_HOUSEHOLDS)
    {
        let month = rng.gen_range(0..=last);
        let amount = rng.gen_range(5..=50) * 10_000;
        sink.household(members, lives, relief, (month, month), amount);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::OnceLock;

    use chrono::Duration;

    use super::*;

    const FIRST_YEAR: i32 = 2017;

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    fn last_period() -> NaiveDate {
        date(2026, 10, 1)
    }

    fn program(code: &str, period_kind: &'static str, standard: i64, ceiling: i64) -> SeedProgram {
        SeedProgram {
            code: code.to_owned(),
            period_kind,
            standard_fen: standard,
            ceiling_fen: ceiling,
            per_household: matches!(code, "FARMLAND" | "FOREST_ECO" | "HOUSE_RENOVATION"),
        }
    }

    /// The programs of migrations/0002_programs_seed.sql.
    fn programs() -> Vec<SeedProgram> {
        vec![
            program("DIBAO_RURAL", "monthly", 30_000, 44_000),
            program("DIBAO_URBAN", "monthly", 50_000, 85_000),
            program("TEKUN", "monthly", 57_200, 150_000),
            program("DISABILITY_LIVING", "monthly", 9_000, 10_000),
            program("DISABILITY_NURSING", "monthly", 9_000, 12_000),
            program("ELDERLY", "monthly", 5_000, 50_000),
            program("FARMLAND", "yearly", 50_000, 500_000),
            program("FOREST_ECO", "yearly", 48_000, 320_000),
            program("YULU", "yearly", 300_000, 300_000),
            program("PENSION_RURAL", "monthly", 16_300, 30_000),
            program("ORPHAN", "monthly", 130_000, 180_000),
            program("FAMILY_PLANNING", "yearly", 96_000, 144_000),
            program("VETERAN_CARE", "quarterly", 300_000, 900_000),
            program("TEMP_RELIEF", "one_off", 100_000, 528_000),
            program("HOUSE_RENOVATION", "one_off", 2_000_000, 4_500_000),
        ]
    }

    /// A made-up population shaped like identity's: household sizes 1–6, heads mostly
    /// middle-aged, some old parents, deaths in the last four years (≈ 0.7% of persons).
    fn population(persons: usize, seed: u64) -> Vec<Vec<SeedPerson>> {
        let mut rng = StdRng::seed_from_u64(seed);
        let today = last_period();
        let mut households = Vec::new();
        let mut count = 0;
        let mut key = 0u64;
        while count < persons {
            let serial = households.len();
            let village_code = format!("450923{:03}{:03}", 100 + serial % 28, 200 + serial % 17);
            let household_code = format!("{village_code}{:04}", serial % 9999 + 1);
            let size =
                [1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 6, 6][rng.gen_range(0..20)];
            let head_age: i64 = match rng.gen_range(0..100) {
                0..15 => rng.gen_range(25..=34),
                15..35 => rng.gen_range(35..=44),
                35..60 => rng.gen_range(45..=54),
                60..80 => rng.gen_range(55..=64),
                80..93 => rng.gen_range(65..=74),
                _ => rng.gen_range(75..=85),
            };
            let mut ages = vec![head_age];
            if size > 1 && rng.gen_bool(0.8) {
                ages.push((head_age + rng.gen_range(-4..=4)).max(20));
            }
            if ages.len() < size && head_age <= 58 && rng.gen_bool(0.25) {
                ages.push((head_age + rng.gen_range(22..=34)).min(98));
            }
            let mut child = head_age - rng.gen_range(21..=32);
            while ages.len() < size {
                ages.push(child.max(0));
                child -= rng.gen_range(1..=4);
            }
            let members = ages
                .iter()
                .enumerate()
                .map(|(i, &age)| {
                    key += 1;
                    let mut person_key = [0; 32];
                    person_key[..8].copy_from_slice(&key.to_be_bytes());
                    let birth_date = today - Duration::days(age * 365 + rng.gen_range(0..365));
                    let death_rate = match age {
                        0..60 => 0.002,
                        60..75 => 0.016,
                        _ => 0.06,
                    };
                    let deceased_since = rng.gen_bool(death_rate).then(|| {
                        let earliest = (today - Duration::days(4 * 365)).max(birth_date);
                        earliest + Duration::days(rng.gen_range(0..=(today - earliest).num_days()))
                    });
                    SeedPerson {
                        person_key,
                        name_masked: "陈*".to_owned(),
                        id_masked: format!("450923********{:04}", key % 10_000),
                        household_code: household_code.clone(),
                        village_code: village_code.clone(),
                        birth_date,
                        male: rng.gen_bool(0.5),
                        is_head: i == 0,
                        deceased_since,
                    }
                })
                .collect::<Vec<_>>();
            count += members.len();
            households.push(members);
        }
        households
    }

    struct Run {
        persons: HashMap<[u8; 32], SeedPerson>,
        rows: Vec<SeedPayment>,
        planted: Vec<Planted>,
    }

    fn run(persons: usize, seed: u64) -> Run {
        let households = population(persons, seed);
        let mut plan = PaymentPlan::new(programs(), FIRST_YEAR, last_period(), seed);
        let rows = households
            .iter()
            .flat_map(|members| plan.household_payments(members))
            .collect();
        Run {
            persons: households
                .into_iter()
                .flatten()
                .map(|person| (person.person_key, person))
                .collect(),
            rows,
            planted: plan.planted().to_vec(),
        }
    }

    /// The demo scale: 20,000 persons, generated once for the tests that only read it.
    fn small() -> &'static Run {
        static SMALL: OnceLock<Run> = OnceLock::new();
        SMALL.get_or_init(|| run(20_000, 450_923))
    }

    fn ceiling(code: &str) -> i64 {
        programs()
            .into_iter()
            .find(|p| p.code == code)
            .unwrap()
            .ceiling_fen
    }

    #[test]
    fn the_same_seed_gives_the_same_payments() {
        let (first, second, other) = (run(3_000, 7), run(3_000, 7), run(3_000, 8));
        assert_eq!(first.rows, second.rows);
        assert_eq!(first.planted, second.planted);
        assert_ne!(first.rows, other.rows);
    }

    #[test]
    fn ten_years_come_to_about_ten_payments_per_person() {
        let small = small();
        let mut by_program: HashMap<&str, usize> = HashMap::new();
        for row in &small.rows {
            *by_program.entry(row.program_code.as_str()).or_default() += 1;
        }
        let mut counts: Vec<_> = by_program.into_iter().collect();
        counts.sort();
        println!("payments for 20,000 persons over 2017-01..2026-10: {counts:?}");
        println!("total {} (×100 for the county)", small.rows.len());
        assert!(
            (140_000..=260_000).contains(&small.rows.len()),
            "{} payments",
            small.rows.len()
        );
        assert!(!counts.iter().any(|(code, _)| *code == "PENSION_RURAL"));
    }

    #[test]
    fn each_irregularity_is_planted_exactly_five_times() {
        let small = small();
        for kind in Irregularity::ALL {
            let planted: Vec<_> = small.planted.iter().filter(|p| p.0 == kind).collect();
            assert_eq!(planted.len(), PLANTED_PER_KIND, "{}", kind.as_str());
            let flagged = small
                .rows
                .iter()
                .filter(|row| row.irregularity == Some(kind))
                .count();
            let expected = match kind {
                Irregularity::PaidAfterDeath => 2 * PLANTED_PER_KIND..=3 * PLANTED_PER_KIND,
                _ => PLANTED_PER_KIND..=PLANTED_PER_KIND,
            };
            assert!(
                expected.contains(&flagged),
                "{} rows {flagged}",
                kind.as_str()
            );
            for (_, person_key, program, period) in planted {
                assert!(small.rows.iter().any(|row| row.irregularity == Some(kind)
                    && row.person_key == *person_key
                    && row.program_code == *program
                    && row.period == *period));
            }
        }
        // One irregularity per household at most, so each stands out on its own.
        let households: HashSet<_> = small
            .rows
            .iter()
            .filter(|row| row.irregularity.is_some())
            .map(|row| row.household_code.as_str())
            .collect();
        assert_eq!(households.len(), 4 * PLANTED_PER_KIND);
    }

    #[test]
    fn nobody_is_paid_after_death_except_where_planted() {
        let small = small();
        let mut late = 0;
        for row in &small.rows {
            let person = &small.persons[&row.person_key];
            if person
                .deceased_since
                .is_some_and(|death| row.period_start > death)
            {
                assert_eq!(
                    row.irregularity,
                    Some(Irregularity::PaidAfterDeath),
                    "{row:?}"
                );
                late += 1;
            }
            assert!(row.period_start >= person.birth_date, "{row:?}");
        }
        assert!(late >= 2 * PLANTED_PER_KIND);
    }

    #[test]
    fn amounts_stay_within_the_ceiling_except_where_planted() {
        for row in &small().rows {
            assert!(row.amount_fen > 0);
            let above = row.amount_fen > ceiling(&row.program_code);
            assert_eq!(
                above,
                row.irregularity == Some(Irregularity::AboveStandard),
                "{row:?}"
            );
        }
    }

    #[test]
    fn a_person_is_paid_once_a_period_unless_planted_twice() {
        let mut seen = HashSet::new();
        for row in &small().rows {
            let first = seen.insert((row.person_key, &row.program_code, &row.period));
            assert_eq!(
                !first,
                row.irregularity == Some(Irregularity::TwiceInOnePeriod),
                "{row:?}"
            );
        }
    }

    #[test]
    fn periods_read_like_their_kind() {
        let kinds: HashMap<_, _> = programs()
            .into_iter()
            .map(|p| (p.code, p.period_kind))
            .collect();
        let mut seen_kinds = HashSet::new();
        for row in &small().rows {
            let start = row.period_start;
            let expected = match kinds[&row.program_code] {
                "monthly" => format!("{}-{:02}", start.year(), start.month()),
                "quarterly" => {
                    assert_eq!(start.month() % 3, 1);
                    format!("{}-Q{}", start.year(), start.month() / 3 + 1)
                }
                _ => {
                    assert_eq!(start.month(), 1);
                    start.year().to_string()
                }
            };
            assert_eq!(row.period, expected);
            assert_eq!(start.day(), 1);
            assert!(
                (date(FIRST_YEAR, 1, 1)..=last_period()).contains(&start),
                "{row:?}"
            );
            seen_kinds.insert(kinds[&row.program_code]);
        }
        assert_eq!(seen_kinds.len(), 4, "every period kind is exercised");
    }

    #[test]
    fn a_household_keeps_one_bank_account() {
        let mut accounts: HashMap<&str, &str> = HashMap::new();
        for row in &small().rows {
            let account = accounts
                .entry(&row.household_code)
                .or_insert(&row.bank_masked);
            assert_eq!(*account, row.bank_masked);
            assert_eq!(row.bank_masked.chars().count(), 16);
            assert_eq!(&row.bank_masked[4..12], "********");
        }
    }

    #[test]
    fn rural_dibao_pays_in_steps_of_ten_yuan() {
        let dibao = small()
            .rows
            .iter()
            .filter(|row| row.program_code == "DIBAO_RURAL");
        for row in dibao.filter(|row| row.irregularity.is_none()) {
            assert_eq!(row.amount_fen % 1000, 0, "{row:?}");
        }
    }
}
