//! What a citizen's text means: pure parsing, no I/O.

use std::fmt;

use huimin_kit::money::halfwidth;

/// An ID number as typed; never shown, never logged (not even masked).
#[derive(Clone, PartialEq, Eq)]
pub struct TypedIdNumber(pub String);

impl fmt::Debug for TypedIdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TypedIdNumber(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    /// 查询, 查询 7月, 查询 低保.
    Query {
        month: Option<u32>,
        program: Option<String>,
    },
    /// 绑定 身份证号 姓名.
    Bind {
        id_number: TypedIdNumber,
        name: String,
    },
    /// 绑定 without both parts.
    BindUsage,
    Unbind,
    /// 政策, 政策 低保.
    Policy(Option<String>),
    Projects,
    /// 公示 村名; `None` asks which village.
    Disclosure(Option<String>),
    Subscribe,
    Unsubscribe,
    Report,
    Submit,
    Cancel,
    Anonymous,
    RealName,
    /// 进度 回执码.
    Progress(Option<String>),
    /// A number alone: picks from the last numbered choice.
    Pick(usize),
    /// Anything else (a report draft takes it as text; otherwise help).
    Unknown(String),
}

/// Parses one text message. Full-width letters, digits and spaces (a Chinese
/// input method) count as their ASCII forms.
pub fn parse(text: &str) -> Command {
    let normalized = halfwidth(text);
    let trimmed = normalized.trim();
    let mut words = trimmed.split_whitespace();
    let Some(first) = words.next() else {
        return Command::Help;
    };
    let rest: Vec<&str> = words.collect();
    let arg = || (!rest.is_empty()).then(|| rest.join(" "));
    match first {
        "帮助" | "help" | "?" | "菜单" => Command::Help,
        "查询" => query(&rest),
        "绑定" => match rest.as_slice() {
            [id, name] => Command::Bind {
                id_number: TypedIdNumber(id.to_ascii_uppercase()),
                name: (*name).to_owned(),
            },
            _ => Command::BindUsage,
        },
        "解绑" | "解除绑定" => Command::Unbind,
        "政策" => Command::Policy(arg()),
        "项目" => Command::Projects,
        "公示" => Command::Disclosure(arg()),
        "订阅" => Command::Subscribe,
        "退订" => Command::Unsubscribe,
        "举报" => Command::Report,
        "提交" => Command::Submit,
        "取消" => Command::Cancel,
        "匿名" => Command::Anonymous,
        "实名" => Command::RealName,
        "进度" => Command::Progress(arg().map(|code| code.to_ascii_uppercase())),
        number if rest.is_empty() && number.len() <= 3 => match number.parse::<usize>() {
            Ok(n) if n > 0 => Command::Pick(n),
            _ => Command::Unknown(trimmed.to_owned()),
        },
        _ => Command::Unknown(trimmed.to_owned()),
    }
}

fn query(rest: &[&str]) -> Command {
    let mut month = None;
    let mut program = None;
    for word in rest {
        match month_of(word) {
            Some(m) => month = Some(m),
            None => program = Some((*word).to_owned()),
        }
    }
    Command::Query { month, program }
}

/// Whether `wanted`, as a citizen typed it, names the program `name` (code `code`): its
/// code, part of its name, or a short name. Chinese short names keep characters of the
/// full name in order (低保 for 农村最低生活保障金, 危改 for 农村危房改造补助), which a
/// plain substring test misses.
pub fn names_program(wanted: &str, name: &str, code: &str) -> bool {
    if wanted.is_empty() {
        return false;
    }
    if code == wanted || name.contains(wanted) {
        return true;
    }
    let mut rest = name.chars();
    wanted.chars().count() >= 2 && wanted.chars().all(|c| rest.any(|n| n == c))
}

/// "7月", "07月", "7" → 7.
fn month_of(word: &str) -> Option<u32> {
    let digits = word.strip_suffix('月').unwrap_or(word);
    if digits.is_empty() || digits.len() > 2 {
        return None;
    }
    digits.parse().ok().filter(|m| (1..=12).contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(parse("帮助"), Command::Help);
        assert_eq!(parse("  "), Command::Help);
        assert_eq!(
            parse("查询"),
            Command::Query {
                month: None,
                program: None
            }
        );
        assert_eq!(
            parse("查询 7月"),
            Command::Query {
                month: Some(7),
                program: None
            }
        );
        assert_eq!(
            parse("查询　低保"),
            Command::Query {
                month: None,
                program: Some("低保".into())
            }
        );
        assert_eq!(parse("政策"), Command::Policy(None));
        assert_eq!(parse("政策 低保"), Command::Policy(Some("低保".into())));
        assert_eq!(
            parse("公示 大旺村"),
            Command::Disclosure(Some("大旺村".into()))
        );
        assert_eq!(
            parse("进度 abcd-efgh"),
            Command::Progress(Some("ABCD-EFGH".into()))
        );
        assert_eq!(parse("2"), Command::Pick(2));
        assert_eq!(parse("0"), Command::Unknown("0".into()));
        assert_eq!(parse("你好"), Command::Unknown("你好".into()));
        assert_eq!(parse("绑定"), Command::BindUsage);
        assert_eq!(parse("绑定 11010519491231002x"), Command::BindUsage);
    }

    #[test]
    fn programs_are_named_by_code_part_of_the_name_or_short_name() {
        let dibao = ("农村最低生活保障金", "DIBAO_RURAL");
        for wanted in ["低保", "最低生活保障", "农村低保", "DIBAO_RURAL", "保障金"] {
            assert!(names_program(wanted, dibao.0, dibao.1), "{wanted}");
        }
        for wanted in ["", "保低", "高龄", "dibao_rural", "低保户口"] {
            assert!(!names_program(wanted, dibao.0, dibao.1), "{wanted}");
        }
        assert!(names_program(
            "危改",
            "农村危房改造补助",
            "HOUSE_RENOVATION"
        ));
    }

    #[test]
    fn bind_keeps_the_id_number_out_of_debug_output() {
        let command = parse("绑定 ４５０１０２１９５００１０１００１Ｘ 张三");
        let Command::Bind { id_number, name } = &command else {
            panic!("not a bind");
        };
        assert_eq!(id_number.0, "45010219500101001X");
        assert_eq!(name, "张三");
        let shown = format!("{command:?}");
        assert!(!shown.contains("450102"), "{shown}");
    }
}
