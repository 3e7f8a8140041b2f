//! How ledger's value types are stored: as their text in PostgreSQL and in cached JSON,
//! read back strictly through `from_stored`. This is the SQL (and cache) boundary where
//! text becomes a domain type; past it nothing compares kinds as strings.
//!
//! A value that names no kind is an error where it is read (a column decode error, a
//! cache miss), never a default: a widened CHECK constraint without the code to match
//! must fail loudly rather than turn, say, a new half-yearly program into a one-off.

use sqlx::{
    Decode, Postgres, Type,
    error::BoxDynError,
    postgres::{PgTypeInfo, PgValueRef},
};

use crate::domain::{EntryKind, PeriodKind};

/// `Type`, `Decode` and serde for a type with `as_str` and `from_stored`.
macro_rules! stored_as_text {
    ($kind:ty) => {
        impl Type<Postgres> for $kind {
            fn type_info() -> PgTypeInfo {
                <&str as Type<Postgres>>::type_info()
            }

            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as Type<Postgres>>::compatible(ty)
            }
        }

        impl<'r> Decode<'r, Postgres> for $kind {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<Postgres>>::decode(value)?;
                Ok(<$kind>::from_stored(text)?)
            }
        }

        impl serde::Serialize for $kind {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $kind {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                <$kind>::from_stored(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

stored_as_text!(PeriodKind);
stored_as_text!(EntryKind);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_cached_as_their_stored_text() {
        assert_eq!(
            serde_json::to_string(&PeriodKind::OneOff).unwrap(),
            r#""one_off""#
        );
        assert_eq!(
            serde_json::to_string(&EntryKind::Reversal).unwrap(),
            r#""reversal""#
        );
        for kind in PeriodKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(serde_json::from_str::<PeriodKind>(&json).unwrap(), kind);
        }
    }

    #[test]
    fn a_cached_unknown_kind_is_refused_not_defaulted() {
        assert!(serde_json::from_str::<PeriodKind>(r#""weekly""#).is_err());
        assert!(serde_json::from_str::<PeriodKind>(r#""按月""#).is_err());
        assert!(serde_json::from_str::<EntryKind>(r#""发放""#).is_err());
        assert!(serde_json::from_str::<EntryKind>(r#""refund""#).is_err());
    }
}
