//! The checks of a roll's rows on their own: each row's cells, then rows
//! repeated within the file.

use std::collections::HashMap;

use huimin_kit::{
    auth::{Caller, Role},
    pii::IdNumber,
};

use crate::{
    bank::BankKeyer,
    domain::{EntryKind, Fen, Period, PeriodKind, RollKind, mask_bank_account},
    programs::Program,
    rollfile::RawRow,
};

use super::{Checked, Entry, Problems};

/// File-level checks of each row; rows that pass become entries.
pub(super) fn check_rows(
    caller: &Caller,
    roll_kind: RollKind,
    bank: &BankKeyer,
    raw: Vec<RawRow>,
    programs: &HashMap<String, Program>,
    problems: &mut Problems,
) -> Vec<Entry> {
    let mut entries = Vec::with_capacity(raw.len());
    for row in raw {
        let before = problems.total();
        let line = row.line;
        let kind = EntryKind::parse(&row.kind)
            .map_err(|e| problems.add(line, "类型", e.message_zh()))
            .ok();
        let name = row.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 50 {
            problems.add(line, "姓名", "姓名不能为空，且不超过50个字");
        }
        let id_number = IdNumber::parse(&row.id_number)
            .map_err(|e| problems.add(line, "身份证号", e.message_zh()))
            .ok();
        let village_ok =
            row.village_code.len() == 12 && row.village_code.bytes().all(|b| b.is_ascii_digit());
        if !village_ok {
            problems.add(line, "村代码", "村代码应为12位数字");
        }
        let program = programs.get(row.program_code.trim());
        let period = match program {
            None => {
                problems.add(line, "项目代码", "项目代码不存在");
                None
            }
            Some(p) if !p.active => {
                problems.add(line, "项目代码", "该项目已停止发放");
                None
            }
            Some(p)
                if caller.role == Role::Department
                    && caller.scope.as_deref() != Some(p.department.as_str()) =>
            {
                problems.add(line, "项目代码", "该项目不属于您所在的部门");
                None
            }
            Some(p) => Period::parse(p.period_kind, &row.period)
                .map_err(|e| problems.add(line, "发放期间", e.message_zh()))
                .ok(),
        };
        let amount = match Fen::parse_yuan(&row.amount) {
            Ok(fen) if fen.fen() <= 0 => {
                problems.add(line, "金额", "金额必须大于0");
                None
            }
            Ok(fen) => match program {
                // A record keeps what was paid; above the ceiling is a finding then.
                Some(p) if fen.fen() > p.ceiling_fen && roll_kind.refuses_breaches() => {
                    problems.add(
                        line,
                        "金额",
                        format!("金额超过该项目每期上限{}元", Fen::from_fen(p.ceiling_fen)),
                    );
                    None
                }
                _ => Some(fen.fen()),
            },
            Err(e) => {
                problems.add(line, "金额", e.message_zh());
                None
            }
        };
        let bank_masked = if row.bank_account.trim().is_empty() {
            Some(String::new())
        } else {
            mask_bank_account(&row.bank_account)
                .map_err(|e| problems.add(line, "银行账号", e.message_zh()))
                .ok()
        };
        if problems.total() != before {
            continue;
        }
        if let (
            Some(kind),
            Some(id_number),
            Some(program),
            Some(period),
            Some(amount),
            Some(bank_masked),
        ) = (kind, id_number, program, period, amount, bank_masked)
        {
            entries.push(Entry {
                line,
                kind,
                id_number,
                name,
                village_code: row.village_code,
                program: program.code.clone(),
                period,
                amount,
                bank_hash: bank.hash(&row.bank_account),
                bank_masked,
            });
        }
    }
    entries
}

/// The same person, program, period and kind twice in one file; or, for a
/// per-household program, two members of one household.
pub(super) fn check_duplicates(
    checked: &[Checked],
    programs: &HashMap<String, Program>,
    problems: &mut Problems,
) {
    let mut first_line: HashMap<(&str, &str, &str, EntryKind), usize> = HashMap::new();
    let keys: Vec<String> = checked.iter().map(|c| c.person_key.to_hex()).collect();
    for (c, key) in checked.iter().zip(&keys) {
        let program = programs.get(&c.entry.program);
        let per_household = program.is_some_and(|p| p.per_household);
        let once = program.is_some_and(|p| p.period_kind == PeriodKind::OneOff);
        let who = if per_household {
            c.household_code.as_str()
        } else {
            key.as_str()
        };
        let period = if once { "" } else { c.entry.period.text() };
        if let Some(first) = first_line.insert(
            (who, c.entry.program.as_str(), period, c.entry.kind),
            c.entry.line,
        ) {
            let what = if per_household {
                "同一户、项目、期间"
            } else {
                "同一人员、项目、期间"
            };
            problems.add(
                c.entry.line,
                "身份证号",
                format!("与第{first}行重复（{what}）"),
            );
        }
    }
}
