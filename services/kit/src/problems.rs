//! The problems found in a file county staff upload (a persons file, a payment roll, a
//! project file), each named by spreadsheet row and column, and the one report every import
//! sends back: a Chinese summary that counts them all, and BadRequest violations that list
//! as many as fit a gRPC trailer.

use crate::status::{self, FieldViolation};

/// A problem with the whole file rather than a cell.
pub const FILE: &str = "文件";
/// A problem with a whole row.
pub const ROW: &str = "整行";

/// At most this many problems are listed (fewer if their text is long); the rest are counted.
const MAX_LISTED: usize = 200;

/// Something wrong with a file, for county staff to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    /// The row number a spreadsheet shows; 0 for the file as a whole.
    pub line: usize,
    /// The column's Chinese header, or [`FILE`] / [`ROW`].
    pub column: String,
    /// What is wrong, in Simplified Chinese. Never repeats a cell's content.
    pub message: String,
}

impl FileProblem {
    pub fn new(line: usize, column: &str, message: impl Into<String>) -> FileProblem {
        FileProblem {
            line,
            column: column.to_owned(),
            message: message.into(),
        }
    }

    /// The violation's field: `第12行/身份证号`, or the column alone for the whole file.
    pub fn field(&self) -> String {
        if self.line == 0 {
            self.column.clone()
        } else {
            format!("第{}行/{}", self.line, self.column)
        }
    }
}

/// The problems of one file: the first ones listed while their text fits
/// [`status::DETAILS_BUDGET`], every one counted.
#[derive(Debug, Default)]
pub struct Problems {
    listed: Vec<FileProblem>,
    listed_bytes: usize,
    total: usize,
}

impl Problems {
    /// The one problem of a file that cannot be read at all.
    pub fn file(message: impl Into<String>) -> Problems {
        let mut problems = Problems::default();
        problems.add(0, FILE, message);
        problems
    }

    pub fn add(&mut self, line: usize, column: &str, message: impl Into<String>) {
        self.push(FileProblem::new(line, column, message));
    }

    fn push(&mut self, problem: FileProblem) {
        self.total += 1;
        if self.listed.len() < MAX_LISTED
            && status::fits(&mut self.listed_bytes, &problem.field(), &problem.message)
        {
            self.listed.push(problem);
        }
    }

    /// Adds another check's problems, listed ones while they fit, all counted.
    pub fn append(&mut self, other: Problems) {
        let unlisted = other.total - other.listed.len();
        for problem in other.listed {
            self.push(problem);
        }
        self.total += unlisted;
    }

    /// How many problems were added, listed or not.
    pub fn total(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The problems a report lists, in the order found.
    pub fn listed(&self) -> &[FileProblem] {
        &self.listed
    }

    /// `value` when there were no problems; otherwise the problems.
    pub fn into_result<T>(self, value: T) -> Result<T, Problems> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// The report of a refused file; `subject` names it in the summary (`花名册`, `项目表`).
    /// A file that cannot be read at all says so in the message itself; otherwise the
    /// message counts every problem and says how many it lists.
    pub fn report(self, subject: &str) -> Report {
        if let ([only], 1) = (self.listed.as_slice(), self.total)
            && only.line == 0
        {
            return Report {
                message: only.message.clone(),
                violations: vec![FieldViolation::new(only.field(), only.message.clone())],
            };
        }
        let mut message = format!("{subject}有{}处错误，未导入任何数据", self.total);
        if self.total > self.listed.len() {
            message.push_str(&format!("（仅列出前{}处）", self.listed.len()));
        }
        let violations = self
            .listed
            .into_iter()
            .map(|p| FieldViolation::new(p.field(), p.message))
            .collect();
        Report {
            message,
            violations,
        }
    }
}

/// What a refused import tells the caller: INVALID_ARGUMENT with this message and these
/// BadRequest violations (through [`crate::error::CoreError`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub message: String,
    pub violations: Vec<FieldViolation>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn problems_beyond_what_a_response_carries_are_counted_not_listed() {
        let mut problems = Problems::default();
        for line in 0..250 {
            problems.add(line + 2, ROW, "无法解析该行");
        }
        assert_eq!(problems.total(), 250);
        let shown = problems.listed().len();
        assert!(shown < 250, "{shown} listed");
        let report = problems.report("文件");
        assert_eq!(
            report.message,
            format!("文件有250处错误，未导入任何数据（仅列出前{shown}处）")
        );
        assert_eq!(report.violations.len(), shown);
        assert_eq!(report.violations[0].field, "第2行/整行");
    }

    #[test]
    fn listed_text_stays_within_a_trailer_budget() {
        let mut problems = Problems::default();
        for line in 1..=1000 {
            problems.add(line, "身份证号", "身份证号校验位错误，请核对".repeat(3));
        }
        let report = problems.report("花名册");
        let bytes: usize = report
            .violations
            .iter()
            .map(|v| v.field.len() + v.description.len())
            .sum();
        assert!(bytes <= status::DETAILS_BUDGET, "{bytes} bytes listed");
        assert!(report.message.starts_with("花名册有1000处错误"));
    }

    #[test]
    fn an_unreadable_file_says_so_in_the_message() {
        let report = Problems::file("文件是空的，没有表头").report("项目表");
        assert_eq!(report.message, "文件是空的，没有表头");
        assert_eq!(
            report.violations,
            [FieldViolation::new(FILE, "文件是空的，没有表头")]
        );
    }

    #[test]
    fn appended_problems_keep_their_unlisted_count() {
        let mut file = Problems::default();
        for line in 1..=500 {
            file.add(line, ROW, "无法解析该行");
        }
        let mut all = Problems::default();
        all.add(3, "姓名", "姓名不能为空");
        all.append(file);
        assert_eq!(all.total(), 501);
        assert_eq!(all.listed()[0].field(), "第3行/姓名");
        assert!(all.listed().len() <= MAX_LISTED);
    }
}
