//! The county an installation serves (division code, name, discipline
//! commission), read from configuration so a second county is a change of
//! environment, not of code. 博白县 is the default.

use crate::config::{ConfigError, Env};

/// 博白县's county-level division code (GB/T 2260).
pub const DEFAULT_CODE: &str = "450923";
/// The default county's name.
pub const DEFAULT_NAME: &str = "博白县";
/// The default county's discipline inspection and supervision commission (纪委监委).
pub const DEFAULT_COMMISSION: &str = "博白县纪委监委";

/// The county this installation serves. Built only through [`County::from_env`]
/// or [`County::default`], so its code is always six ASCII digits and its
/// names are never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct County {
    code: String,
    name: String,
    commission: String,
}

impl Default for County {
    /// 博白县, the county huimin was first built for.
    fn default() -> Self {
        Self {
            code: DEFAULT_CODE.to_owned(),
            name: DEFAULT_NAME.to_owned(),
            commission: DEFAULT_COMMISSION.to_owned(),
        }
    }
}

impl County {
    /// Reads `HUIMIN_COUNTY_CODE` (default 450923), `HUIMIN_COUNTY_NAME` and
    /// `HUIMIN_COUNTY_COMMISSION` (博白县's names by default, required for
    /// any other code).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let code = env
            .optional_str("HUIMIN_COUNTY_CODE")
            .map(|c| c.trim().to_owned())
            .unwrap_or_else(|| DEFAULT_CODE.to_owned());
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::Malformed {
                name: "HUIMIN_COUNTY_CODE",
                reason: format!("a county division code is 6 ASCII digits (got {code:?})"),
            });
        }
        // 博白县's names only go with 博白县's code: another county must name
        // itself and its commission, or reports would be routed to 博白县.
        // (`Env` reads a blank value as unset, so a name is never empty.)
        let named = |variable: &'static str, default: &str| match env.optional_str(variable) {
            Some(value) => Ok(value.trim().to_owned()),
            None if code == DEFAULT_CODE => Ok(default.to_owned()),
            None => Err(ConfigError::Missing(variable)),
        };
        let name = named("HUIMIN_COUNTY_NAME", DEFAULT_NAME)?;
        let commission = named("HUIMIN_COUNTY_COMMISSION", DEFAULT_COMMISSION)?;
        Ok(Self {
            code,
            name,
            commission,
        })
    }

    /// The 6-digit county division code, e.g. 450923.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The county's name, e.g. 博白县.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The county's discipline inspection and supervision commission
    /// (纪委监委), where escalated reports go.
    pub fn commission(&self) -> &str {
        &self.commission
    }

    /// Whether a division code (town: 9 digits, village: 12) lies in this
    /// county. Only the prefix is compared; the code's shape is the caller's.
    pub fn contains(&self, division_code: &str) -> bool {
        division_code.len() > self.code.len() && division_code.starts_with(&self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variables_mean_bobai() {
        let county = County::from_env(&Env::default()).expect("defaults are valid");

        assert_eq!(county, County::default());
        assert_eq!(
            (county.code(), county.name(), county.commission()),
            ("450923", "博白县", "博白县纪委监委")
        );
    }

    #[test]
    fn a_second_county_is_configuration() {
        let env = Env::from_pairs([
            ("HUIMIN_COUNTY_CODE", "450921"),
            ("HUIMIN_COUNTY_NAME", "容县"),
            ("HUIMIN_COUNTY_COMMISSION", " 容县纪委监委 "),
        ]);

        let county = County::from_env(&env).expect("valid county");

        assert_eq!(
            (county.code(), county.name(), county.commission()),
            ("450921", "容县", "容县纪委监委")
        );
        assert!(county.contains("450921100"));
        assert!(!county.contains("450923100"));
        assert!(
            !county.contains("450921"),
            "the county itself is no division in it"
        );
    }

    #[test]
    fn another_county_must_name_itself_and_its_commission() {
        let unnamed = Env::from_pairs([("HUIMIN_COUNTY_CODE", "450921")]);
        let no_commission = Env::from_pairs([
            ("HUIMIN_COUNTY_CODE", "450921"),
            ("HUIMIN_COUNTY_NAME", "容县"),
            ("HUIMIN_COUNTY_COMMISSION", "  "),
        ]);

        let unnamed = County::from_env(&unnamed).expect_err("name missing");
        let no_commission = County::from_env(&no_commission).expect_err("commission blank");

        assert_eq!(
            unnamed.to_string(),
            "configuration: HUIMIN_COUNTY_NAME is required but not set"
        );
        assert_eq!(
            no_commission.to_string(),
            "configuration: HUIMIN_COUNTY_COMMISSION is required but not set"
        );
    }

    #[test]
    fn a_malformed_code_is_refused_naming_the_variable() {
        for bad in ["45092", "4509231", "45092x", "４５０９２３"] {
            let env = Env::from_pairs([("HUIMIN_COUNTY_CODE", bad)]);

            let error = County::from_env(&env).expect_err("not 6 ASCII digits");

            assert!(
                error
                    .to_string()
                    .starts_with("configuration: HUIMIN_COUNTY_CODE is malformed"),
                "{error}"
            );
        }
    }
}
