//! The random picks the population is made of: dates, ages, names, number plates,
//! companies, employers and destinations, with the tables they draw from.

use chrono::{Datelike, Duration, NaiveDate};
use rand::Rng;
use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::StdRng;

/// The earliest birth date an ID number may carry.
pub(super) fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).expect("1900-01-01 is a date")
}

/// The same day `years` earlier; 29 February falls back to the 28th.
pub(super) fn years_before(date: NaiveDate, years: u32) -> NaiveDate {
    let year = date.year() - years as i32;
    date.with_year(year)
        .or_else(|| NaiveDate::from_ymd_opt(year, date.month(), 28))
        .expect("the 28th exists in every month")
}

pub(super) fn years_after(date: NaiveDate, years: u32) -> NaiveDate {
    let year = date.year() + years as i32;
    date.with_year(year)
        .or_else(|| NaiveDate::from_ymd_opt(year, date.month(), 28))
        .expect("the 28th exists in every month")
}

/// A uniformly random date in `earliest..=latest` (`latest` when the range is empty).
pub(super) fn random_date(rng: &mut StdRng, earliest: NaiveDate, latest: NaiveDate) -> NaiveDate {
    let span = (latest - earliest).num_days();
    if span <= 0 {
        return latest;
    }
    earliest + Duration::days(rng.gen_range(0..=span))
}

/// Heads of household are 25 to 85, most of them middle-aged.
pub(super) fn head_age(rng: &mut StdRng) -> u32 {
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

pub(super) fn pick_surname(rng: &mut StdRng, pick: &WeightedIndex<u32>) -> &'static str {
    SURNAMES[pick.sample(rng)].0
}

/// A full name: the surname and one or two given-name characters.
pub(super) fn given_name(rng: &mut StdRng, surname: &str, male: bool) -> String {
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
pub(super) fn plate(rng: &mut StdRng) -> String {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut plate = String::from("小型汽车 桂K");
    plate.push(char::from(LETTERS[rng.gen_range(0..LETTERS.len())]));
    for _ in 0..4 {
        plate.push(char::from(b'0' + rng.gen_range(0..10u8)));
    }
    plate
}

pub(super) fn company(rng: &mut StdRng) -> String {
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
pub(super) const SURNAMES: [(&str, u32); 30] = [
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

pub(super) const MALE_CHARS: &[char] = &[
    '伟', '强', '军', '华', '明', '建', '国', '志', '勇', '杰', '俊', '文', '斌', '海', '林', '东',
    '波', '辉', '荣', '德', '福', '贵', '生', '成', '康', '宏', '宇', '浩', '鹏', '飞', '超', '锋',
    '家', '振', '永', '光', '兴', '平', '昌', '耀',
];

pub(super) const FEMALE_CHARS: &[char] = &[
    '芳', '丽', '娟', '英', '秀', '梅', '玲', '燕', '红', '霞', '艳', '萍', '琴', '兰', '凤', '珍',
    '桂', '莲', '静', '敏', '婷', '雪', '慧', '月', '春', '美', '金', '玉', '翠', '欣', '怡', '佳',
];

pub(super) const PUBLIC_EMPLOYERS: [&str; 8] = [
    "博白县教育局",
    "博白县人民医院",
    "博白县财政局",
    "博白县农业农村局",
    "博白县公安局",
    "博白县民政局",
    "乡镇人民政府",
    "博白县中学",
];

pub(super) const DESTINATIONS: [&str; 7] = [
    "广东省东莞市",
    "广东省深圳市",
    "广东省广州市",
    "广东省佛山市",
    "广西南宁市",
    "广西玉林市玉州区",
    "广东省湛江市",
];
