//! A report's photos: a real-name report's in the attachment store, written
//! inside the report's transaction and removed again if it does not commit;
//! an anonymous report's in the database, because a file would date it. With
//! an object store configured, an anonymous report's photos move there when
//! their day is sealed ([`Whistle::move_sealed_photos`]).

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
}

impl PhotoHome {
    pub(crate) fn of(anonymous: bool) -> Self {
        if anonymous {
            Self::Database
        } else {
            Self::Files
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
            let key = format!(
                "reports/{report_id}/{}.{}",
                hex::encode(photo.sha256),
                photo.kind.extension()
            );
            let content = (home == PhotoHome::Database).then_some(photo.bytes.as_slice());
            let result = async {
                // A photo sent again for the same report is kept once: by its key
                // while it is here, by report and hash once a seal has moved it to
                // the object store under a random key.
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

    /// Moves the photos of sealed anonymous reports (days that are over) from the
    /// database into the object store, in random order, each under a random key
    /// with nothing set on the object but its bytes. Uploaded after its day is
    /// over, together with the rest of that day's, an object's Last-Modified (which
    /// no client can set) tells no time within the day. Returns how many moved.
    ///
    /// Each photo is moved on its own: upload, then point the row at the object and
    /// drop its bytes. A crash between the two leaves an object no row names (a
    /// random key, removed by the bucket's lifecycle or never read), never a row
    /// without its photo.
    pub async fn move_sealed_photos(&self) -> Result<usize, WhistleError> {
        if !self.anonymous_photos_in_store {
            return Ok(0);
        }
        let today = huimin_kit::clock::china_today();
        let waiting: Vec<i64> = sqlx::query_scalar(
            "SELECT p.id FROM report_photos p JOIN reports r ON r.id = p.report_id
             WHERE r.anonymous AND p.content IS NOT NULL AND p.added_on < $1
             ORDER BY random()",
        )
        .bind(today)
        .fetch_all(&self.pool)
        .await?;
        let mut moved = 0;
        for id in waiting {
            let content: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT content FROM report_photos WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .flatten();
            let Some(content) = content else { continue };
            let key = format!("photos/{}", uuid::Uuid::new_v4().simple());
            let path = ObjectPath::from(key.as_str());
            self.attachments
                .put(&path, bytes::Bytes::from(content).into())
                .await?;
            let updated = sqlx::query(
                "UPDATE report_photos SET object_key = $2, content = NULL WHERE id = $1 AND content IS NOT NULL",
            )
            .bind(id)
            .bind(&key)
            .execute(&self.pool)
            .await;
            match updated {
                Ok(done) if done.rows_affected() == 1 => moved += 1,
                other => {
                    self.remove_objects(&[path]).await;
                    other?;
                }
            }
        }
        Ok(moved)
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
