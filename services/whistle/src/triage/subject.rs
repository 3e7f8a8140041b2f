//! What a report is about, and the key that makes two reports "about the
//! same subject" for linking and escalation.

/// What a report is about, as far as the reporter or the ledger could tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// Subsidy program code, e.g. DIBAO_RURAL.
    pub program_code: Option<String>,
    /// 12-digit village (community) division code.
    pub village_code: Option<String>,
    /// The ledger's stable key for a person (not an ID number).
    pub person_key: Option<String>,
    pub project_code: Option<String>,
    /// Name of the official the report is about.
    pub official: Option<String>,
}

/// Identity of "the same subject" for linking reports and counting them towards escalation.
///
/// Prefers the most specific identifier: a person, then a project, then an official in a
/// village, then a program in a village. `None` when nothing identifies a subject; such
/// reports are never linked. The prefix keeps kinds apart (a person key can never equal a
/// project code).
pub fn subject_key(subject: &Subject) -> Option<String> {
    let field = |value: &Option<String>| {
        value
            .as_deref()
            .map(|v| v.split_whitespace().collect::<String>())
            .filter(|v| !v.is_empty())
    };
    let village = field(&subject.village_code);
    if let Some(person) = field(&subject.person_key) {
        return Some(format!("person:{person}"));
    }
    if let Some(project) = field(&subject.project_code) {
        return Some(format!("project:{project}"));
    }
    if let (Some(official), Some(village)) = (field(&subject.official), &village) {
        return Some(format!("official:{village}:{official}"));
    }
    if let (Some(program), Some(village)) = (field(&subject.program_code), &village) {
        return Some(format!("village-program:{village}:{program}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_key_prefers_the_most_specific_identifier() {
        let full = Subject {
            program_code: Some("DIBAO_RURAL".to_owned()),
            village_code: Some("450923101201".to_owned()),
            person_key: Some("p-7f3a".to_owned()),
            project_code: Some("XM-2026-017".to_owned()),
            official: Some("张 三".to_owned()),
        };
        let without = |edit: fn(&mut Subject)| {
            let mut subject = full.clone();
            edit(&mut subject);
            subject_key(&subject)
        };

        assert_eq!(subject_key(&full).as_deref(), Some("person:p-7f3a"));
        assert_eq!(
            without(|s| s.person_key = Some("  ".to_owned())).as_deref(),
            Some("project:XM-2026-017")
        );
        assert_eq!(
            without(|s| {
                s.person_key = None;
                s.project_code = None;
            })
            .as_deref(),
            Some("official:450923101201:张三")
        );
        assert_eq!(
            without(|s| {
                s.person_key = None;
                s.project_code = None;
                s.official = None;
            })
            .as_deref(),
            Some("village-program:450923101201:DIBAO_RURAL")
        );
    }

    #[test]
    fn subject_key_is_none_without_an_identifiable_subject() {
        let official_without_village = Subject {
            official: Some("张三".to_owned()),
            program_code: Some("DIBAO_RURAL".to_owned()),
            ..Subject::default()
        };
        assert_eq!(subject_key(&Subject::default()), None);
        assert_eq!(subject_key(&official_without_village), None);
    }
}
