//! A synthetic population of 博白县 for demos and load tests: households, members with valid
//! ID numbers, and the facts (deaths, public jobs, cadre ties...) that supervision checks find.
//!
//! Pure and deterministic: the same villages, target, seed and `today` give the same stream.
//! Households are generated one at a time so millions of persons never sit in memory at once.

use chrono::{Duration, NaiveDate};
use huimin_kit::pii::IdNumber;
use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use huimin_identity::bulk::{Fact, FactKind, PastMembership, Property, Village};

use self::pick::{
    DESTINATIONS, PUBLIC_EMPLOYERS, SURNAMES, company, epoch, given_name, head_age, pick_surname,
    plate, random_date, years_after, years_before,
};

mod pick;

/// The county's region code (地址码) used in every generated ID number.
const REGION: &str = "450923";

/// Mixed into the seed for [`Population::later`]'s draws.
const LATER_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Share of households whose head owns a registered building, and of those buildings
/// the share above 150 m².
const PROPERTY_SHARE: f64 = 0.06;
const LARGE_PROPERTY_SHARE: f64 = 0.2;

/// Share of eligible young couples (head 22 to 35, with a spouse, the village's
/// previous head old enough to be a parent) who split from that previous household.
const SPLIT_SHARE: f64 = 0.15;

/// Household sequence numbers are four digits within a village.
const MAX_HOUSEHOLDS_PER_VILLAGE: u32 = 9999;

/// Mean household size of [`SIZE_WEIGHTS`], used to spread cadre households over villages.
const MEAN_HOUSEHOLD_SIZE: f64 = 3.18;

/// Weights of household sizes 1..=6 (rural Guangxi: many couples and three-generation homes).
const SIZE_WEIGHTS: [u32; 6] = [15, 22, 22, 20, 13, 8];

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthPerson {
    pub name: String,
    pub id_number: IdNumber,
    pub relation: Relation,
    pub facts: Vec<Fact>,
    /// Buildings the person owns (不动产登记); a head's only.
    pub properties: Vec<Property>,
    /// When the person joined this household; `None` for since birth.
    pub member_since: Option<NaiveDate>,
    /// The household the person belonged to before, if it split off from it.
    pub past_households: Vec<PastMembership>,
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

impl SynthHousehold {
    /// The household as identity registers it.
    pub fn into_register(self) -> huimin_identity::bulk::Household {
        huimin_identity::bulk::Household {
            code: self.code,
            village_code: self.village_code,
            members: self
                .members
                .into_iter()
                .map(|person| huimin_identity::bulk::Person {
                    name: person.name,
                    id_number: person.id_number,
                    relation: person.relation.as_zh().to_owned(),
                    facts: person.facts,
                    properties: person.properties,
                    member_since: person.member_since,
                    past_households: person.past_households,
                })
                .collect(),
        }
    }
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
    /// Draws for what came after the first version of the county (property, household
    /// history), apart from `rng` so that every household, person and fact drawn before
    /// stays exactly as it was.
    later: StdRng,
}

struct VillageState {
    code: String,
    households: u32,
    /// Household sequence numbers whose head is a village cadre (村干部).
    cadre_slots: [u32; 2],
    /// The birth date of the head of the village's previous household: a young couple
    /// may have split from it (see [`Population::history`]).
    previous_head_birth: Option<NaiveDate>,
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
                    previous_head_birth: None,
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
            later: StdRng::seed_from_u64(seed ^ LATER_SEED),
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
        let mut members: Vec<SynthPerson> = drafts
            .into_iter()
            .map(|draft| {
                let mut person = self.person(&draft);
                if let Some(since) = cadre_since {
                    match draft.relation {
                        Relation::Head => person.facts.push(Fact {
                            kind: FactKind::VillageCadre,
                            since,
                            detail: cadre_post.to_owned(),
                        }),
                        Relation::Spouse | Relation::Son | Relation::Daughter => {
                            person.facts.push(Fact {
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
        self.property(&village_code, seq, &mut members);
        let previous_head = self.villages[village].previous_head_birth;
        self.villages[village].previous_head_birth =
            members.first().map(|head| head.id_number.birth_date());
        if let Some(previous_head) = previous_head {
            self.history(&village_code, seq, previous_head, &mut members);
        }
        SynthHousehold {
            code,
            village_code,
            members,
        }
    }

    /// A small share of heads own a registered building (不动产登记), most of them under
    /// 150 m², some above.
    fn property(&mut self, village_code: &str, seq: u32, members: &mut [SynthPerson]) {
        let rng = &mut self.later;
        let Some(head) = members.first_mut() else {
            return;
        };
        if !rng.gen_bool(PROPERTY_SHARE) {
            return;
        }
        let birth = head.id_number.birth_date();
        let since = random_date(
            rng,
            years_after(birth, 20).max(years_before(self.today, 20)),
            self.today,
        );
        let area_centi_m2 = if rng.gen_bool(LARGE_PROPERTY_SHARE) {
            rng.gen_range(15_001..=32_000)
        } else {
            rng.gen_range(6_000..=14_999)
        };
        head.properties.push(Property {
            since,
            location: format!("博白县{village_code}村第{}组{seq}号", rng.gen_range(1..=12)),
            area_centi_m2,
        });
    }

    /// A small share of young couples split off, in a given year, from the village's
    /// previous household (户籍分户): the head was its son or daughter from birth until
    /// the day before the split, and every member joined the new household on that day
    /// (or at birth, if later). Everyone else has been in their household since birth.
    fn history(
        &mut self,
        village_code: &str,
        seq: u32,
        previous_head_birth: NaiveDate,
        members: &mut [SynthPerson],
    ) {
        let rng = &mut self.later;
        let [head, spouse, ..] = members else { return };
        let birth = head.id_number.birth_date();
        let age = (self.today - birth).num_days() / 365;
        let young_couple = (22..=35).contains(&age) && spouse.relation == Relation::Spouse;
        // The earlier head must be old enough to be this head's parent.
        let parent = years_after(previous_head_birth, 18) <= birth;
        // A head the registers rule out of help never split off: in the household before,
        // they would make its help a finding the seed did not plant.
        let ruled_out = !head.facts.is_empty() || !head.properties.is_empty();
        if !young_couple || !parent || seq < 2 || ruled_out || !rng.gen_bool(SPLIT_SHARE) {
            return;
        }
        let split = random_date(
            rng,
            years_after(birth, 20).max(years_before(self.today, 10)),
            self.today - Duration::days(30),
        );
        head.past_households.push(PastMembership {
            household_code: format!("{village_code}{:04}", seq - 1),
            relation: if head.id_number.is_male() {
                "子"
            } else {
                "女"
            }
            .to_owned(),
            since: birth,
            until: split - Duration::days(1),
        });
        for member in members.iter_mut() {
            member.member_since = Some(split.max(member.id_number.birth_date()));
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
            properties: Vec::new(),
            member_since: None,
            past_households: Vec::new(),
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

    fn facts(&mut self, draft: &Draft, birth: NaiveDate) -> Vec<Fact> {
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
            facts.push(Fact {
                kind: FactKind::Deceased,
                since,
                detail: "死亡注销".to_owned(),
            });
        }
        if (22..=60).contains(&age) && rng.gen_bool(0.0165) {
            let since = random_date(rng, years_after(birth, 22), today);
            let detail = PUBLIC_EMPLOYERS[rng.gen_range(0..PUBLIC_EMPLOYERS.len())];
            facts.push(Fact {
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
            facts.push(Fact {
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
            facts.push(Fact {
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
            facts.push(Fact {
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

#[cfg(test)]
mod tests;
