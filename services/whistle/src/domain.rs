//! whistle's value types: where a report came from, the status machine of
//! its workflow with each state's time limit, the staff actions that move it,
//! and the kinds of audit entry and event a report leaves. Pure: the gRPC
//! edge and the SQL rows convert to and from these, nothing below them sees
//! a status as a string.
//!
//! received → triaged → assigned → verifying → substantiated (立案) or
//! unsubstantiated (办结, with a reply to the reporter); a report can be
//! transferred while assigned or verifying, and a closed one reopened.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Duration, Utc};

/// A stored or sent value that names none of a type's variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind}: {value:?}")]
pub struct UnknownValue {
    kind: &'static str,
    value: String,
}

/// Finds the variant whose stored form is `text`.
fn lookup<T: Copy>(
    kind: &'static str,
    all: &[T],
    as_str: fn(T) -> &'static str,
    text: &str,
) -> Result<T, UnknownValue> {
    all.iter()
        .copied()
        .find(|v| as_str(*v) == text)
        .ok_or_else(|| UnknownValue {
            kind,
            value: text.to_owned(),
        })
}

/// Implements `FromStr`, `TryFrom<String>` (for `#[sqlx(try_from = "String")]`
/// on rows) and `Display` through `ALL` and `as_str`.
macro_rules! stored_as_text {
    ($type:ty, $kind:literal) => {
        impl FromStr for $type {
            type Err = UnknownValue;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                lookup($kind, &<$type>::ALL, <$type>::as_str, text)
            }
        }

        impl TryFrom<String> for $type {
            type Error = UnknownValue;
            fn try_from(text: String) -> Result<Self, Self::Error> {
                text.parse()
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Where a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A citizen through the gateway.
    Citizen,
    /// A cross-check finding of another service.
    System,
}

impl Source {
    pub const ALL: [Source; 2] = [Source::Citizen, Source::System];

    /// The stored and sent form.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Citizen => "citizen",
            Source::System => "system",
        }
    }
}

stored_as_text!(Source, "report source");

/// A report's state in the workflow (办理状态).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Received,
    /// Triaged on arrival, waiting to be assigned (待交办).
    Triaged,
    /// Assigned to a department or town (已交办).
    Assigned,
    Verifying,
    /// Found true; a case is opened (已查实，已立案).
    Substantiated,
    /// Not found true; closed with a reply (未查实，已办结).
    Unsubstantiated,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Received,
        Status::Triaged,
        Status::Assigned,
        Status::Verifying,
        Status::Substantiated,
        Status::Unsubstantiated,
    ];

    /// The stored and sent form.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Triaged => "triaged",
            Status::Assigned => "assigned",
            Status::Verifying => "verifying",
            Status::Substantiated => "substantiated",
            Status::Unsubstantiated => "unsubstantiated",
        }
    }

    /// What the reporter and staff read.
    pub fn label_zh(self) -> &'static str {
        match self {
            Status::Received => "已收到",
            Status::Triaged => "已研判，待交办",
            Status::Assigned => "已交办",
            Status::Verifying => "核查中",
            Status::Substantiated => "已查实，已立案",
            Status::Unsubstantiated => "经核查未查实，已办结",
        }
    }

    /// How long a report may stay in this state before it is overdue;
    /// `None` for the closed states.
    pub fn time_limit(self) -> Option<Duration> {
        match self {
            Status::Received | Status::Triaged => Some(Duration::days(1)),
            Status::Assigned => Some(Duration::days(3)),
            Status::Verifying => Some(Duration::days(30)),
            Status::Substantiated | Status::Unsubstantiated => None,
        }
    }

    /// When a report that entered this state at `since` becomes overdue.
    pub fn deadline(self, since: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.time_limit().map(|limit| since + limit)
    }

    /// The state `action` leads to from this one, or `None` when the
    /// workflow does not allow it from here.
    pub fn after(self, action: Action) -> Option<Status> {
        use Status::*;
        let to = match (action, self) {
            (Action::Assign, Received | Triaged) => Assigned,
            (Action::Transfer, Assigned | Verifying) => Assigned,
            (Action::StartVerifying, Assigned) => Verifying,
            (Action::Substantiate, Verifying) => Substantiated,
            (Action::Unsubstantiate, Verifying) => Unsubstantiated,
            (Action::Reopen, Substantiated | Unsubstantiated) => Verifying,
            _ => return None,
        };
        Some(to)
    }
}

stored_as_text!(Status, "report status");

/// A staff step of the workflow (办理操作).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Assign,
    StartVerifying,
    Substantiate,
    Unsubstantiate,
    Transfer,
    Reopen,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Assign,
        Action::StartVerifying,
        Action::Substantiate,
        Action::Unsubstantiate,
        Action::Transfer,
        Action::Reopen,
    ];

    /// The sent and audited form.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Assign => "assign",
            Action::StartVerifying => "start_verifying",
            Action::Substantiate => "substantiate",
            Action::Unsubstantiate => "unsubstantiate",
            Action::Transfer => "transfer",
            Action::Reopen => "reopen",
        }
    }
}

stored_as_text!(Action, "workflow action");

/// What an audit entry records. The stored form is part of each entry's
/// hash, so a name here is never changed once entries carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    ReportSubmitted,
    ReportTriaged,
    ReportEscalated,
    ReportFollowedUp,
    ReportInformationAdded,
    ReportsListed,
    ReportRead,
    PhotoRead,
    ReportTransition,
    TriageRulesUpdated,
}

impl AuditAction {
    pub const ALL: [AuditAction; 10] = [
        AuditAction::ReportSubmitted,
        AuditAction::ReportTriaged,
        AuditAction::ReportEscalated,
        AuditAction::ReportFollowedUp,
        AuditAction::ReportInformationAdded,
        AuditAction::ReportsListed,
        AuditAction::ReportRead,
        AuditAction::PhotoRead,
        AuditAction::ReportTransition,
        AuditAction::TriageRulesUpdated,
    ];

    /// The stored (and hashed) form.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::ReportSubmitted => "report.submitted",
            AuditAction::ReportTriaged => "report.triaged",
            AuditAction::ReportEscalated => "report.escalated",
            AuditAction::ReportFollowedUp => "report.followed_up",
            AuditAction::ReportInformationAdded => "report.information_added",
            AuditAction::ReportsListed => "reports.listed",
            AuditAction::ReportRead => "report.read",
            AuditAction::PhotoRead => "photo.read",
            AuditAction::ReportTransition => "report.transition",
            AuditAction::TriageRulesUpdated => "triage_rules.updated",
        }
    }
}

stored_as_text!(AuditAction, "audit action");

/// What an outbox event announces; followers (notify) match on the stored form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    ReportReceived,
    ReportStatusChanged,
}

impl EventKind {
    pub const ALL: [EventKind; 2] = [EventKind::ReportReceived, EventKind::ReportStatusChanged];

    /// The stored and streamed form.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ReportReceived => "report.received",
            EventKind::ReportStatusChanged => "report.status_changed",
        }
    }
}

stored_as_text!(EventKind, "event kind");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stored_form_reads_back_as_its_variant() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse(), Ok(status));
        }
        for source in Source::ALL {
            assert_eq!(Source::try_from(source.as_str().to_owned()), Ok(source));
        }
        for action in Action::ALL {
            assert_eq!(action.as_str().parse(), Ok(action));
        }
        for action in AuditAction::ALL {
            assert_eq!(action.as_str().parse(), Ok(action));
        }
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse(), Ok(kind));
        }
    }

    #[test]
    fn an_unknown_value_is_refused_naming_what_it_should_be() {
        let error = "closed".parse::<Status>().expect_err("not a status");

        assert_eq!(error.to_string(), r#"unknown report status: "closed""#);
        assert!(
            " triaged".parse::<Status>().is_err(),
            "stored forms are exact"
        );
        assert!("Citizen".parse::<Source>().is_err());
    }

    #[test]
    fn the_workflow_allows_exactly_its_edges() {
        use Action::*;
        use Status::*;
        let edges = [
            (Received, Assign, Assigned),
            (Triaged, Assign, Assigned),
            (Assigned, Transfer, Assigned),
            (Verifying, Transfer, Assigned),
            (Assigned, StartVerifying, Verifying),
            (Verifying, Substantiate, Substantiated),
            (Verifying, Unsubstantiate, Unsubstantiated),
            (Substantiated, Reopen, Verifying),
            (Unsubstantiated, Reopen, Verifying),
        ];
        for from in Status::ALL {
            for action in Action::ALL {
                let expected = edges
                    .iter()
                    .find(|(f, a, _)| *f == from && *a == action)
                    .map(|(_, _, to)| *to);
                assert_eq!(from.after(action), expected, "{from} --{action}-->");
            }
        }
    }

    #[test]
    fn open_states_have_deadlines_and_closed_ones_none() {
        let since = DateTime::from_timestamp(1_700_000_000, 0).expect("valid instant");

        assert_eq!(
            Status::Triaged.deadline(since),
            Some(since + Duration::days(1))
        );
        assert_eq!(
            Status::Assigned.deadline(since),
            Some(since + Duration::days(3))
        );
        assert_eq!(
            Status::Verifying.deadline(since),
            Some(since + Duration::days(30))
        );
        assert_eq!(Status::Substantiated.deadline(since), None);
        assert_eq!(Status::Unsubstantiated.deadline(since), None);
    }

    #[test]
    fn labels_are_those_the_reporter_reads() {
        assert_eq!(Status::Triaged.label_zh(), "已研判，待交办");
        assert_eq!(Status::Unsubstantiated.label_zh(), "经核查未查实，已办结");
    }
}
