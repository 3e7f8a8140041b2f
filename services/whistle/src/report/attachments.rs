//! A report's photos in the attachment store: written inside the report's
//! transaction, removed again if it does not commit, and for an anonymous
//! report stripped of the file time that would date it.

use chrono::NaiveDate;
use object_store::{ObjectStoreExt as _, path::Path as ObjectPath};

use super::midnight;
use crate::{Whistle, error::WhistleError, photos::CleanPhoto};

impl Whistle {
    /// Puts photos in the attachment store and records them; on failure the
    /// objects already written are removed again.
    pub(crate) async fn store_photos(
        &self,
        tx: &mut sqlx::PgConnection,
        report_id: i64,
        photos: &[CleanPhoto],
        day: NaiveDate,
    ) -> Result<Vec<ObjectPath>, WhistleError> {
        let mut written = Vec::new();
        for photo in photos {
            let key = format!(
                "reports/{report_id}/{}.{}",
                hex::encode(photo.sha256),
                photo.kind.extension()
            );
            let result = async {
                let inserted = sqlx::query(
                    "INSERT INTO report_photos (report_id, object_key, sha256, kind, width, height, bytes, added_on)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (object_key) DO NOTHING",
                )
                .bind(report_id)
                .bind(&key)
                .bind(photo.sha256.as_slice())
                .bind(photo.kind.as_str())
                .bind(i32::try_from(photo.width).unwrap_or(i32::MAX))
                .bind(i32::try_from(photo.height).unwrap_or(i32::MAX))
                .bind(i64::try_from(photo.bytes.len()).unwrap_or(i64::MAX))
                .bind(day)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // The same photo sent again is already stored: leave that file alone.
                if inserted == 0 {
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

    /// Sets an anonymous report's photo files' modification time to the
    /// day's midnight: the file system would otherwise keep the instant.
    pub(super) fn blur_file_times(&self, written: &[ObjectPath], day: NaiveDate) {
        let midnight: std::time::SystemTime = midnight(day).into();
        for path in written {
            let file = self.attachments_dir.join(path.as_ref());
            let blurred = std::fs::File::options()
                .write(true)
                .open(&file)
                .and_then(|f| f.set_modified(midnight));
            if let Err(error) = blurred {
                tracing::warn!(%error, "could not clear an anonymous photo's file time");
            }
        }
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
