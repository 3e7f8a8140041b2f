//! The enrolment rules of the payment plan: who in a household gets which program, from
//! when, for how long and how much, at rates tuned so ten years come to ≈ 10 payments per
//! person (see [`super`]).

use rand::Rng;
use rand::rngs::StdRng;

use super::{Calendar, Known, Life, Program, SeedPayment, SeedPerson, starts};

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

/// The payments of one household being assembled.
pub(super) struct Sink<'a> {
    pub(super) calendar: &'a Calendar,
    pub(super) programs: &'a [Program],
    pub(super) bank: String,
    pub(super) account: String,
    pub(super) rows: Vec<SeedPayment>,
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
            bank_account: self.account.clone(),
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
        for month in starts(self.programs[program].kind, lo, hi) {
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
        for month in starts(self.programs[program].kind, lo.max(0), hi) {
            if let Some(payee) = payee_at(self.calendar, lives, month) {
                self.push(&members[payee], program, month, amount);
            }
        }
    }
}

/// The first member, head first, who is a living adult when `month` starts.
pub(super) fn payee_at(calendar: &Calendar, lives: &[Life], month: i32) -> Option<usize> {
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

/// The enrolment rules: who in this household gets which program, when and how much.
pub(super) fn enrol(
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
    // A household the registers rule out (a public employee, a cadre, a car...) gets none
    // of the means-tested help: the cross-checks find only what is planted.
    let ruled_out = members.iter().any(|m| !m.holds.is_empty());
    let mut on_dibao = false;
    if let Some(dibao) = known.dibao
        && rng.gen_bool(DIBAO_HOUSEHOLDS)
        && !ruled_out
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
        && !ruled_out
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

    // 危房改造: once in the window, varying by the work done, in steps of 1,000 yuan; never to
    // a household that split off another (its members may have lived under a roof renovated
    // before, which the grant rule rightly counts as the same household's).
    let split_off = members.iter().any(|m| m.member_since.is_some());
    if let Some(renovation) = known.renovation
        && rng.gen_bool(RENOVATION_HOUSEHOLDS)
        && !ruled_out
        && !split_off
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
