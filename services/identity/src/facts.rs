//! Person facts (比对数据): what other registers know about a person that bears on
//! eligibility, dated, with the department that said so — imported from their files
//! (`parse`, `store`), derived from the register itself (household membership over
//! dated spans and birth, `households`), and streamed in version order to ledger's
//! cross-checks (`stream`).
//!
//! Every fact has a version from one sequence, taken on insert and again on every
//! change (a trigger, migration 0023): a follower resumes after the last version it
//! saw and gets every new or corrected fact once more, never an old one twice.

pub mod households;
pub mod parse;
pub mod store;
pub mod stream;

pub use stream::StreamedFact;

/// The advisory lock every transaction that writes person facts takes first, held to
/// its commit: writers go one at a time, so versions become visible in the order they
/// were taken and a follower reading "after version N" never passes one still being
/// written. Fact writes are rare (imports, the seed), so serialising them costs nothing.
pub const WRITE_LOCK: i64 = 0x6875_696d_696e_0f01;

/// Takes [`WRITE_LOCK`] for the rest of `tx`.
pub async fn lock_for_writing(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(WRITE_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

/// The source recorded on the facts identity derives from its own register.
pub const REGISTER_SOURCE: &str = "户籍登记";

/// The kinds of reference dataset (比对数据) a department's file holds, one kind a file.
/// Two more kinds of fact come from the register itself and are only streamed:
/// `household_member` and `born`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// 死亡人员
    Deceased,
    /// 财政供养人员
    PublicEmployee,
    /// 村干部
    VillageCadre,
    /// 干部近亲属
    CadreRelative,
    /// 车辆登记
    VehicleOwner,
    /// 工商登记
    CompanyOwner,
    /// 不动产登记
    PropertyOwner,
    /// 户籍迁出
    MovedOut,
}

impl DatasetKind {
    /// Every kind a file may hold.
    pub const ALL: [DatasetKind; 8] = [
        DatasetKind::Deceased,
        DatasetKind::PublicEmployee,
        DatasetKind::VillageCadre,
        DatasetKind::CadreRelative,
        DatasetKind::VehicleOwner,
        DatasetKind::CompanyOwner,
        DatasetKind::PropertyOwner,
        DatasetKind::MovedOut,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            DatasetKind::Deceased => "deceased",
            DatasetKind::PublicEmployee => "public_employee",
            DatasetKind::VillageCadre => "village_cadre",
            DatasetKind::CadreRelative => "cadre_relative",
            DatasetKind::VehicleOwner => "vehicle_owner",
            DatasetKind::CompanyOwner => "company_owner",
            DatasetKind::PropertyOwner => "property_owner",
            DatasetKind::MovedOut => "moved_out",
        }
    }

    /// The dataset's Chinese name, as staff call it.
    pub fn as_zh(&self) -> &'static str {
        match self {
            DatasetKind::Deceased => "死亡人员",
            DatasetKind::PublicEmployee => "财政供养人员",
            DatasetKind::VillageCadre => "村干部",
            DatasetKind::CadreRelative => "干部近亲属",
            DatasetKind::VehicleOwner => "车辆登记",
            DatasetKind::CompanyOwner => "工商登记",
            DatasetKind::PropertyOwner => "不动产登记",
            DatasetKind::MovedOut => "户籍迁出",
        }
    }

    /// The kind named `text` (`deceased`, ...), if any.
    pub fn parse(text: &str) -> Option<DatasetKind> {
        DatasetKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for kind in DatasetKind::ALL {
            assert_eq!(DatasetKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(DatasetKind::parse("household_member"), None);
    }
}
