//! A synthetic population of 博白县 for demos and load tests: households, members with valid
//! ID numbers, and the facts (deaths, public jobs, cadre ties...) that supervision checks find.
//!
//! Pure and deterministic: the same villages, target, seed and `today` give the same stream.
//! Households are generated one at a time so millions of persons never sit in memory at once.

use chrono::{Datelike, Duration, NaiveDate};
use huimin_kit::pii::IdNumber;
use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The county's region code (地址码) used in every generated ID number.
const REGION: &str = "450923";

/// Household sequence numbers are four digits within a village.
const MAX_HOUSEHOLDS_PER_VILLAGE: u32 = 9999;

/// Mean household size of [`SIZE_WEIGHTS`], used to spread cadre households over villages.
const MEAN_HOUSEHOLD_SIZE: f64 = 3.18;

/// Weights of household sizes 1..=6 (rural Guangxi: many couples and three-generation homes).
const SIZE_WEIGHTS: [u32; 6] = [15, 22, 22, 20, 13, 8];

/// A village (村委会) that households are spread over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Village {
    /// 12-digit division code.
    pub code: String,
    /// 9-digit code of the town the village belongs to.
    pub town_code: String,
}

/// A member's relation to the head of household (与户主关系).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relation {
    /// 户主
    Head,
    /// 配偶
    Spouse,
    /// 子
    Son,
    /// 女
    Daughter,
    /// 父母
    Parent,
    /// 孙子女
    Grandchild,
    /// 其他
    Other,
}

impl Relation {
    pub fn as_str(&self) -> &'static str {
        match self {
            Relation::Head => "head",
            Relation::Spouse => "spouse",
            Relation::Son => "son",
            Relation::Daughter => "daughter",
            Relation::Parent => "parent",
            Relation::Grandchild => "grandchild",
            Relation::Other => "other",
        }
    }

    /// The term used on a household register (户口簿).
    pub fn as_zh(&self) -> &'static str {
        match self {
            Relation::Head => "户主",
            Relation::Spouse => "配偶",
            Relation::Son => "子",
            Relation::Daughter => "女",
            Relation::Parent => "父母",
            Relation::Grandchild => "孙子女",
            Relation::Other => "其他",
        }
    }
}

/// Something other registers know about a person that bears on eligibility.
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthFact {
    pub kind: FactKind,
    pub since: NaiveDate,
    /// A short Chinese description, as the source register would give it.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthPerson {
    pub name: String,
    pub id_number: IdNumber,
    pub relation: Relation,
    pub facts: Vec<SynthFact>,
}

/// A household (户) registered in one village.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthHousehold {
    /// Village code followed by a 4-digit sequence number, e.g. `4509231002010007`.
    pub code: String,
    pub village_code: String,
    /// The head comes first.
    pub members: Vec<SynthPerson>,
}

/// Generates households of about `target_persons` persons spread over `villages`, as of
/// `today` (the upper bound for birth dates and facts). See [`Population`].
pub fn households(
    villages: &[Village],
    target_persons: usize,
    seed: u64,
    today: NaiveDate,
) -> Population {
    Population::new(villages, target_persons, seed, today)
}

/// The household stream: an iterator that stops once `target_persons` persons have been
/// yielded (the last household is cut to fit, so the total is exact), or earlier if every
/// village has used up its 9999 household numbers.
///
/// ID numbers are unique across the stream by construction: each (birth date, sex) has its own
/// counter of the 500 sequence numbers available, so no set of issued numbers is kept.
pub struct Population {
    rng: StdRng,
    today: NaiveDate,
    target: usize,
    yielded: usize,
    villages: Vec<VillageState>,
    village_pick: Option<WeightedIndex<u32>>,
    size_pick: WeightedIndex<u32>,
    surname_pick: WeightedIndex<u32>,
    /// Sequence numbers used per day since [`epoch`], for women and men.
    issued: Vec<[u16; 2]>,
}

struct VillageState {
    code: String,
    households: u32,
    /// Household sequence numbers whose head is a village cadre (村干部).
    cadre_slots: [u32; 2],
}

/// A member being assembled, before the ID number is issued.
struct Draft {
    surname: &'static str,
    male: bool,
    age: u32,
    relation: Relation,
}

impl Population {
    pub fn new(
        villages: &[Village],
        target_persons: usize,
        seed: u64,
        today: NaiveDate,
    ) -> Population {
        let mut rng = StdRng::seed_from_u64(seed);
        // Villages differ in size: between half and twice the average.
        let weights: Vec<u32> = villages.iter().map(|_| rng.gen_range(50..=200)).collect();
        let total_weight: u32 = weights.iter().sum();
        let villages = villages
            .iter()
            .zip(&weights)
            .map(|(village, &weight)| {
                let expected = target_persons as f64 * f64::from(weight)
                    / f64::from(total_weight.max(1))
                    / MEAN_HOUSEHOLD_SIZE;
                let span = (expected as u32).clamp(2, MAX_HOUSEHOLDS_PER_VILLAGE);
                let first = rng.gen_range(1..=span);
                let mut second = rng.gen_range(1..=span);
                while second == first {
                    second = rng.gen_range(1..=span);
                }
                VillageState {
                    code: village.code.clone(),
                    households: 0,
                    cadre_slots: [first, second],
                }
            })
            .collect();
        let days = (today - epoch()).num_days().max(0) as usize + 1;
        Population {
            rng,
            today,
            target: target_persons,
            yielded: 0,
            villages,
            village_pick: WeightedIndex::new(&weights).ok(),
            size_pick: WeightedIndex::new(SIZE_WEIGHTS).expect("size weights are positive"),
            surname_pick: WeightedIndex::new(SURNAMES.iter().map(|(_, w)| *w))
                .expect("surname weights are positive"),
            issued: vec![[0; 2]; days],
        }
    }

    /// Persons yielded so far.
    pub fn persons_yielded(&self) -> usize {
        self.yielded
    }

    /// A village with household numbers left, near the weighted pick.
    fn pick_village(&mut self) -> Option<usize> {
        let pick = self.village_pick.as_ref()?.sample(&mut self.rng);
        let n = self.villages.len();
        (0..n)
            .map(|offset| (pick + offset) % n)
            .find(|&i| self.villages[i].households < MAX_HOUSEHOLDS_PER_VILLAGE)
    }

    fn household(&mut self, village: usize) -> SynthHousehold {
        let state = &mut self.villages[village];
        state.households += 1;
        let seq = state.households;
        let is_cadre = state.cadre_slots.contains(&seq);
        let cadre_post = if seq == state.cadre_slots[0] {
            "村党总支书记"
        } else {
            "村委会主任"
        };
        let code = format!("{}{seq:04}", state.code);
        let village_code = state.code.clone();

        let remaining = self.target - self.yielded;
        let mut size = self.size_pick.sample(&mut self.rng) + 1;
        if is_cadre {
            size = size.max(3);
        }
        let size = size.min(remaining);
        let drafts = self.compose(size, is_cadre);
        self.yielded += drafts.len();

        let cadre_since = if is_cadre {
            Some(self.past_date(self.today - Duration::days(365 * 10), self.today))
        } else {
            None
        };
        let members = drafts
            .into_iter()
            .map(|draft| {
                let mut person = self.person(&draft);
                if let Some(since) = cadre_since {
                    match draft.relation {
                        Relation::Head => person.facts.push(SynthFact {
                            kind: FactKind::VillageCadre,
                            since,
                            detail: cadre_post.to_owned(),
                        }),
                        Relation::Spouse | Relation::Son | Relation::Daughter => {
                            person.facts.push(SynthFact {
                                kind: FactKind::CadreRelative,
                                // A child born after the post was taken is a relative from birth.
                                since: since.max(person.id_number.birth_date()),
                                detail: format!("户主任{cadre_post}"),
                            })
                        }
                        _ => {}
                    }
                }
                person
            })
            .collect();
        SynthHousehold {
            code,
            village_code,
            members,
        }
    }

    /// Who lives in a household of `size`: head, then spouse, parents, children, grandchildren.
    fn compose(&mut self, size: usize, cadre: bool) -> Vec<Draft> {
        let rng = &mut self.rng;
        let mut members = Vec::with_capacity(size);
        let head_male = rng.gen_bool(if cadre { 0.85 } else { 0.8 });
        let head_age = if cadre {
            rng.gen_range(32..=62)
        } else {
            head_age(rng)
        };
        let surname = pick_surname(rng, &self.surname_pick);
        members.push(Draft {
            surname,
            male: head_male,
            age: head_age,
            relation: Relation::Head,
        });

        // Women heading a household are often widowed or their husband works away.
        let spouse_chance = if head_male { 0.9 } else { 0.5 };
        if members.len() < size && rng.gen_bool(spouse_chance) {
            let gap: i32 = rng.gen_range(-2..=6);
            let age = if head_male {
                (head_age as i32 - gap).max(20)
            } else {
                (head_age as i32 + gap).clamp(22, 95)
            };
            let mut spouse_surname = pick_surname(rng, &self.surname_pick);
            if spouse_surname == surname {
                spouse_surname = pick_surname(rng, &self.surname_pick);
            }
            members.push(Draft {
                surname: spouse_surname,
                male: !head_male,
                age: age as u32,
                relation: Relation::Spouse,
            });
        }

        // Elderly parents live with younger heads now and then.
        if members.len() < size && head_age <= 58 && rng.gen_bool(0.25) {
            let father_age = head_age + rng.gen_range(22..=34);
            let both = size - members.len() >= 2 && rng.gen_bool(0.5);
            if both && father_age <= 95 {
                members.push(Draft {
                    surname,
                    male: true,
                    age: father_age,
                    relation: Relation::Parent,
                });
            }
            if members.len() < size {
                let mother_age = father_age.saturating_sub(rng.gen_range(0..=5)).min(98);
                members.push(Draft {
                    surname: pick_surname(rng, &self.surname_pick),
                    male: false,
                    age: mother_age,
                    relation: Relation::Parent,
                });
            }
        }

        // Children, oldest first; older heads keep at most two at home and have grandchildren.
        let max_children = if head_age >= 55 { 2 } else { 4 };
        let mut child_age = head_age as i32 - rng.gen_range(21..=32);
        let mut children = 0;
        while members.len() < size && children < max_children && child_age >= 0 {
            let male = rng.gen_bool(0.53);
            members.push(Draft {
                surname,
                male,
                age: child_age as u32,
                relation: if male {
                    Relation::Son
                } else {
                    Relation::Daughter
                },
            });
            children += 1;
            child_age -= rng.gen_range(1..=4);
        }
        let mut grandchild_age = head_age as i32 - rng.gen_range(44..=60);
        while members.len() < size && grandchild_age >= 0 {
            members.push(Draft {
                surname,
                male: rng.gen_bool(0.53),
                age: grandchild_age as u32,
                relation: Relation::Grandchild,
            });
            grandchild_age -= rng.gen_range(1..=4);
        }

        // Whoever else fills the household: siblings, nephews and nieces.
        while members.len() < size {
            let age = (head_age as i32 + rng.gen_range(-15..=10)).clamp(0, 90);
            members.push(Draft {
                surname,
                male: rng.gen_bool(0.5),
                age: age as u32,
                relation: Relation::Other,
            });
        }
        members
    }

    fn person(&mut self, draft: &Draft) -> SynthPerson {
        let birth = self.birth_date(draft.age);
        let id_number = self.issue(birth, draft.male);
        let name = given_name(&mut self.rng, draft.surname, draft.male);
        let facts = self.facts(draft, birth);
        SynthPerson {
            name,
            id_number,
            relation: draft.relation,
            facts,
        }
    }

    /// A birth date that makes the person `age` today.
    fn birth_date(&mut self, age: u32) -> NaiveDate {
        let latest = years_before(self.today, age);
        let earliest = years_before(self.today, age + 1) + Duration::days(1);
        self.past_date(earliest, latest).max(epoch())
    }

    /// A fresh ID number: the (birth date, sex) counter picks one of its 500 sequence numbers,
    /// moving to the day before when a date is used up.
    fn issue(&mut self, birth: NaiveDate, male: bool) -> IdNumber {
        let mut birth = birth;
        loop {
            let day = (birth - epoch()).num_days() as usize;
            let count = &mut self.issued[day][usize::from(male)];
            if *count < 500 {
                // Multiplying by 193 (coprime to 500) scatters numbers instead of 001, 003...
                let slot = (u32::from(*count) * 193 + day as u32 * 37) % 500;
                *count += 1;
                let seq = slot as u16 * 2 + u16::from(male);
                return IdNumber::from_parts(REGION, birth, seq);
            }
            birth = birth
                .pred_opt()
                .expect("dates after 1900 have a predecessor");
            assert!(
                birth >= epoch(),
                "more than 500 persons of one sex per day since 1900"
            );
        }
    }

    fn facts(&mut self, draft: &Draft, birth: NaiveDate) -> Vec<SynthFact> {
        let rng = &mut self.rng;
        let today = self.today;
        let age = draft.age;
        let mut facts = Vec::new();

        // Older people die more often; the county-wide mean comes out near 0.7%.
        let death_rate = match age {
            0..=59 => 0.002,
            60..=74 => 0.016,
            _ => 0.06,
        };
        if rng.gen_bool(death_rate) {
            let since = random_date(rng, (today - Duration::days(365 * 4)).max(birth), today);
            facts.push(SynthFact {
                kind: FactKind::Deceased,
                since,
                detail: "死亡注销".to_owned(),
            });
        }
        if (22..=60).contains(&age) && rng.gen_bool(0.0165) {
            let since = random_date(rng, years_after(birth, 22), today);
            let detail = PUBLIC_EMPLOYERS[rng.gen_range(0..PUBLIC_EMPLOYERS.len())];
            facts.push(SynthFact {
                kind: FactKind::PublicEmployee,
                since,
                detail: detail.to_owned(),
            });
        }
        if (20..=72).contains(&age) && rng.gen_bool(0.08) {
            let since = random_date(
                rng,
                years_after(birth, 20).max(years_before(today, 12)),
                today,
            );
            facts.push(SynthFact {
                kind: FactKind::VehicleOwner,
                since,
                detail: plate(rng),
            });
        }
        if (22..=70).contains(&age) && rng.gen_bool(0.014) {
            let since = random_date(
                rng,
                years_after(birth, 22).max(years_before(today, 15)),
                today,
            );
            facts.push(SynthFact {
                kind: FactKind::CompanyOwner,
                since,
                detail: company(rng),
            });
        }
        if age >= 16 && rng.gen_bool(0.0117) {
            let since = random_date(
                rng,
                years_after(birth, 16).max(years_before(today, 10)),
                today,
            );
            let detail = format!("迁往{}", DESTINATIONS[rng.gen_range(0..DESTINATIONS.len())]);
            facts.push(SynthFact {
                kind: FactKind::MovedOut,
                since,
                detail,
            });
        }
        facts
    }

    fn past_date(&mut self, earliest: NaiveDate, latest: NaiveDate) -> NaiveDate {
        random_date(&mut self.rng, earliest, latest)
    }
}

impl Iterator for Population {
    type Item = SynthHousehold;

    fn next(&mut self) -> Option<SynthHousehold> {
        if self.yielded >= self.target {
            return None;
        }
        let village = self.pick_village()?;
        Some(self.household(village))
    }
}

/// The earliest birth date an ID number may carry.
fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).expect("1900-01-01 is a date")
}

/// The same day `years` earlier; 29 February falls back to the 28th.
fn years_before(date: NaiveDate, years: u32) -> NaiveDate {
    let year = date.year() - years as i32;
    date.with_year(year)
        .or_else(|| NaiveDate::from_ymd_opt(year, date.month(), 28))
        .expect("the 28th exists in every month")
}

fn years_after(date: NaiveDate, years: u32) -> NaiveDate {
    let year = date.year() + years as i32;
    date.with_year(year)
        .or_else(|| NaiveDate::from_ymd_opt(year, date.month(), 28))
        .expect("the 28th exists in every month")
}

/// A uniformly random date in `earliest..=latest` (`latest` when the range is empty).
fn random_date(rng: &mut StdRng, earliest: NaiveDate, latest: NaiveDate) -> NaiveDate {
    let span = (latest - earliest).num_days();
    if span <= 0 {
        return latest;
    }
    earliest + Duration::days(rng.gen_range(0..=span))
}

/// Heads of household are 25 to 85, most of them middle-aged.
fn head_age(rng: &mut StdRng) -> u32 {
    const BANDS: [(u32, u32, u32); 6] = [
        (25, 34, 15),
        (35, 44, 20),
        (45, 54, 25),
        (55, 64, 20),
        (65, 74, 13),
        (75, 85, 7),
    ];
    let mut roll = rng.gen_range(0..100);
    for (low, high, weight) in BANDS {
        if roll < weight {
            return rng.gen_range(low..=high);
        }
        roll -= weight;
    }
    unreachable!("band weights add up to 100")
}

fn pick_surname(rng: &mut StdRng, pick: &WeightedIndex<u32>) -> &'static str {
    SURNAMES[pick.sample(rng)].0
}

/// A full name: the surname and one or two given-name characters.
fn given_name(rng: &mut StdRng, surname: &str, male: bool) -> String {
    let chars = if male { MALE_CHARS } else { FEMALE_CHARS };
    let mut name = String::with_capacity(surname.len() + 6);
    name.push_str(surname);
    name.push(chars[rng.gen_range(0..chars.len())]);
    if rng.gen_bool(0.75) {
        name.push(chars[rng.gen_range(0..chars.len())]);
    }
    name
}

/// A 玉林 (桂K) number plate.
fn plate(rng: &mut StdRng) -> String {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut plate = String::from("小型汽车 桂K");
    plate.push(char::from(LETTERS[rng.gen_range(0..LETTERS.len())]));
    for _ in 0..4 {
        plate.push(char::from(b'0' + rng.gen_range(0..10u8)));
    }
    plate
}

fn company(rng: &mut StdRng) -> String {
    const WORDS: [&str; 12] = [
        "绿源", "宏达", "兴旺", "金穗", "博海", "顺发", "永盛", "桂丰", "鑫隆", "润农", "华茂",
        "南粤",
    ];
    const TRADES: [&str; 8] = [
        "商贸",
        "农业开发",
        "建材",
        "养殖",
        "编织工艺品",
        "物流",
        "建筑工程",
        "食品",
    ];
    format!(
        "博白县{}{}有限公司",
        WORDS[rng.gen_range(0..WORDS.len())],
        TRADES[rng.gen_range(0..TRADES.len())]
    )
}

/// Surnames common in 博白 and south-east Guangxi, with rough relative frequencies.
const SURNAMES: [(&str, u32); 30] = [
    ("陈", 90),
    ("王", 70),
    ("黄", 70),
    ("李", 65),
    ("刘", 60),
    ("庞", 55),
    ("朱", 50),
    ("梁", 50),
    ("钟", 45),
    ("张", 40),
    ("林", 35),
    ("杨", 35),
    ("邓", 30),
    ("吴", 25),
    ("何", 25),
    ("周", 20),
    ("罗", 20),
    ("谢", 18),
    ("冯", 16),
    ("曾", 16),
    ("赖", 14),
    ("廖", 14),
    ("彭", 12),
    ("苏", 12),
    ("宋", 10),
    ("韦", 10),
    ("莫", 10),
    ("叶", 10),
    ("蒙", 6),
    ("覃", 6),
];

const MALE_CHARS: &[char] = &[
    '伟', '强', '军', '华', '明', '建', '国', '志', '勇', '杰', '俊', '文', '斌', '海', '林', '东',
    '波', '辉', '荣', '德', '福', '贵', '生', '成', '康', '宏', '宇', '浩', '鹏', '飞', '超', '锋',
    '家', '振', '永', '光', '兴', '平', '昌', '耀',
];

const FEMALE_CHARS: &[char] = &[
    '芳', '丽', '娟', '英', '秀', '梅', '玲', '燕', '红', '霞', '艳', '萍', '琴', '兰', '凤', '珍',
    '桂', '莲', '静', '敏', '婷', '雪', '慧', '月', '春', '美', '金', '玉', '翠', '欣', '怡', '佳',
];

const PUBLIC_EMPLOYERS: [&str; 8] = [
    "博白县教育局",
    "博白县人民医院",
    "博白县财政局",
    "博白县农业农村局",
    "博白县公安局",
    "博白县民政局",
    "乡镇人民政府",
    "博白县中学",
];

const DESTINATIONS: [&str; 7] = [
    "广东省东莞市",
    "广东省深圳市",
    "广东省广州市",
    "广东省佛山市",
    "广西南宁市",
    "广西玉林市玉州区",
    "广东省湛江市",
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
    }

    /// 28 towns of 12 or 13 villages, coded like the divisions migration.
    fn villages() -> Vec<Village> {
        (0..358)
            .map(|i| {
                let town = format!("450923{:03}", 100 + i % 28);
                Village {
                    code: format!("{town}{:03}", 201 + i / 28),
                    town_code: town,
                }
            })
            .collect()
    }

    #[test]
    fn same_seed_gives_the_same_households() {
        let villages = villages();
        let a: Vec<_> = households(&villages, 500, 7, today()).take(20).collect();
        let b: Vec<_> = households(&villages, 500, 7, today()).take(20).collect();
        assert_eq!(a, b);
        let c = households(&villages, 500, 8, today()).next().unwrap();
        assert_ne!(a[0], c);
    }

    #[test]
    fn the_stream_yields_exactly_the_target_in_households_of_one_to_six() {
        let villages = villages();
        let mut total = 0;
        let mut sizes = [0usize; 7];
        for household in households(&villages, 20_000, 1, today()) {
            let n = household.members.len();
            assert!((1..=6).contains(&n), "household of {n}");
            sizes[n] += 1;
            total += n;
            assert_eq!(household.members[0].relation, Relation::Head);
            assert!(household.code.starts_with(&household.village_code));
            assert_eq!(household.code.len(), 16);
        }
        assert_eq!(total, 20_000);
        let households: usize = sizes.iter().sum();
        let mean = total as f64 / households as f64;
        assert!((2.9..3.4).contains(&mean), "mean household size {mean}");
        assert!(sizes[1..].iter().all(|&n| n > 100), "sizes {sizes:?}");
    }

    #[test]
    fn every_id_number_parses_and_is_unique() {
        let villages = villages();
        let mut seen = HashSet::new();
        for household in households(&villages, 50_000, 2, today()) {
            for person in household.members {
                let parsed = IdNumber::parse_as_of(person.id_number.expose(), today()).unwrap();
                assert_eq!(parsed.region_code(), "450923");
                assert!(seen.insert(parsed), "duplicate ID number");
            }
        }
        assert_eq!(seen.len(), 50_000);
    }

    #[test]
    fn families_look_like_families() {
        let villages = villages();
        for household in households(&villages, 20_000, 3, today()) {
            let head = &household.members[0];
            let head_age = age(head, today());
            assert!((25..=85).contains(&head_age), "head aged {head_age}");
            let surname = head.name.chars().next().unwrap();
            for member in &household.members[1..] {
                assert!(member.name.chars().count() >= 2 && member.name.chars().count() <= 3);
                match member.relation {
                    Relation::Spouse => {
                        assert_ne!(member.id_number.is_male(), head.id_number.is_male());
                        assert!(age(member, today()).abs_diff(head_age) <= 8);
                    }
                    Relation::Son | Relation::Daughter => {
                        assert_eq!(member.name.chars().next(), Some(surname));
                        assert_eq!(member.id_number.is_male(), member.relation == Relation::Son);
                        assert!(age(member, today()) + 21 <= head_age);
                    }
                    Relation::Parent => assert!(age(member, today()) >= head_age + 16),
                    Relation::Grandchild => assert!(age(member, today()) + 44 <= head_age),
                    Relation::Head => panic!("two heads in {}", household.code),
                    Relation::Other => {}
                }
            }
        }
    }

    #[test]
    fn facts_come_at_plausible_rates() {
        let villages = villages();
        let target = 200_000;
        let mut counts: HashMap<FactKind, usize> = HashMap::new();
        let mut cadres_per_village: HashMap<String, usize> = HashMap::new();
        for household in households(&villages, target, 4, today()) {
            for person in &household.members {
                for fact in &person.facts {
                    *counts.entry(fact.kind).or_default() += 1;
                    assert!(fact.since <= today());
                    assert!(fact.since >= person.id_number.birth_date());
                    if fact.kind == FactKind::VillageCadre {
                        assert_eq!(person.relation, Relation::Head);
                        *cadres_per_village
                            .entry(household.village_code.clone())
                            .or_default() += 1;
                    }
                }
            }
        }
        let rate = |kind| counts.get(&kind).copied().unwrap_or(0) as f64 / target as f64;
        let expect = [
            (FactKind::Deceased, 0.004, 0.011),
            (FactKind::PublicEmployee, 0.006, 0.015),
            (FactKind::VehicleOwner, 0.045, 0.075),
            (FactKind::CompanyOwner, 0.006, 0.015),
            (FactKind::MovedOut, 0.006, 0.015),
        ];
        for (kind, low, high) in expect {
            let r = rate(kind);
            assert!((low..=high).contains(&r), "{} rate {r}", kind.as_str());
        }
        // Two cadre slots per village; a village that falls short of its slots has fewer.
        let cadres: usize = cadres_per_village.values().sum();
        assert!(cadres >= 2 * villages.len() * 9 / 10, "{cadres} cadres");
        assert!(cadres_per_village.values().all(|&n| n <= 2));
        assert!(rate(FactKind::CadreRelative) > 0.0);
    }

    #[test]
    fn an_empty_county_yields_nothing() {
        assert_eq!(households(&[], 100, 1, today()).count(), 0);
    }

    fn age(person: &SynthPerson, today: NaiveDate) -> u32 {
        let birth = person.id_number.birth_date();
        let mut years = (today.year() - birth.year()) as u32;
        if (today.month(), today.day()) < (birth.month(), birth.day()) {
            years -= 1;
        }
        years
    }
}
