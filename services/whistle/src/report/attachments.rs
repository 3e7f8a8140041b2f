//! A report's photos: a real-name report's in the attachment store, written
//! inside the report's transaction and removed again if it does not commit;
//! an anonymous report's in the database, because a file would date it, or,
//! with an object store configured, in the store under a random key.

use chrono::NaiveDate;
use object_store::{ObjectStoreExt as _, path::Path as ObjectPath};

use crate::{Whistle, error::WhistleError, photos::CleanPhoto};

/// Where a report's photos are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PhotoHome {
    /// Files in the attachment store (a volume or an object store).
    Files,
    /// `report_photos.content`, for an anonymous report. We tried setting
    /// the files' times back to midnight: mtime can be set, but ctime and
    /// birth time cannot, nor the directory's, and an object store keeps
    /// its own upload time. Holding the bytes until the day is sealed and
    /// writing files then would need a second store path for the same day;
    /// at a few hundred reports a year of at most 9 × 10 MB the database
    /// carries them easily.
    Database,
    /// An object store (S3), for an anonymous report when one is configured: the
    /// key is random (no report id, no hash, no time) and nothing is set on the
    /// object but its bytes. The store's own Last-Modified still holds the
    /// upload's instant; docs/scaling.md says what an operator must do about it.
    UndatedObjects,
}

impl PhotoHome {
    pub(crate) fn of(anonymous: bool, store_holds_anonymous: bool) -> Self {
        match (anonymous, store_holds_anonymous) {
            (false, _) => Self::Files,
            (true, false) => Self::Database,
            (true, true) => Self::UndatedObjects,
        }
    }

    /// The object key of `photo` of `report_id`.
    fn key(self, report_id: i64, photo: &CleanPhoto) -> String {
        match self {
            Self::Files | Self::Database => format!(
                "reports/{report_id}/{}.{}",
                hex::encode(photo.sha256),
                photo.kind.extension()
            ),
            Self::UndatedObjects => {
                format!("photos/{}", uuid::Uuid::new_v4().simple())
            }
        }
    }
}

impl Whistle {
    /// Puts photos in the attachment store and records them; on failure the
    /// objects already written are removed again.
    pub(crate) async fn store_photos(
        &self,
        tx: &mut sqlx::PgConnection,
        report_id: i64,
        photos: &[CleanPhoto],
        day: NaiveDate,
        home: PhotoHome,
    ) -> Result<Vec<ObjectPath>, WhistleError> {
        let mut written = Vec::new();
        for photo in photos {
            let key = home.key(report_id, photo);
            let content = (home == PhotoHome::Database).then_some(photo.bytes.as_slice());
            let result = async {
                // A photo sent again for the same report is kept once; with random
                // keys the key cannot tell, so the report and the hash do.
                let inserted = sqlx::query(
                    "INSERT INTO report_photos (report_id, object_key, sha256, kind, width, height, bytes, added_on, content)
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
                     WHERE NOT EXISTS (SELECT 1 FROM report_photos WHERE report_id = $1 AND sha256 = $3)
                     ON CONFLICT (object_key) DO NOTHING",
                )
                .bind(report_id)
                .bind(&key)
                .bind(photo.sha256.as_slice())
                .bind(photo.kind.as_str())
                .bind(i32::try_from(photo.width).unwrap_or(i32::MAX))
                .bind(i32::try_from(photo.height).unwrap_or(i32::MAX))
                .bind(i64::try_from(photo.bytes.len()).unwrap_or(i64::MAX))
                .bind(day)
                .bind(content)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // The same photo sent again is already stored: leave that file alone.
                if inserted == 0 || home == PhotoHome::Database {
                    return Ok(None);
                }
                let path = ObjectPath::from(key.as_str());
                self.attachments.put(&path, bytes::Bytes::from(photo.bytes.clone()).into()).await?;
                Ok::<_, WhistleError>(Some(path))
            }
            .await;
            match result {
                Ok(Some(path)) => written.push(path),
                Ok(None) => {}
                Err(error) => {
                    self.remove_objects(&written).await;
                    return Err(error);
                }
            }
        }
        Ok(written)
    }

    /// Removes files written for a transaction that did not commit.
    pub(crate) async fn remove_objects(&self, written: &[ObjectPath]) {
        for path in written {
            if let Err(error) = self.attachments.delete(path).await {
                tracing::warn!(%error, "photo of a failed submission left in the attachment store");
            }
        }
    }

    /// Passes on `finished` (the writes after the photos, and the commit);
    /// when it failed, the photos' files are removed first.
    pub(super) async fn keep_if_committed(
        &self,
        written: &[ObjectPath],
        finished: Result<(), WhistleError>,
    ) -> Result<(), WhistleError> {
        if finished.is_err() {
            self.remove_objects(written).await;
        }
        finished
    }
}
