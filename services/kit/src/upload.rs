//! Receiving a file over a client stream: the first chunk names it, every
//! chunk carries bytes, and the whole must stay under a limit.

use tonic::{Status, Streaming};

use crate::status::{FieldViolation, invalid_argument};

/// Collects a streamed file into its header and bytes; `parts` takes a chunk
/// apart into `(header, data)`, and the header (the file's name, and whatever
/// else describes the file) is the first chunk's. Refuses, naming the limit,
/// a file larger than `max_bytes`, before holding more than that in memory.
pub async fn collect<C, H: Default>(
    mut stream: Streaming<C>,
    max_bytes: usize,
    parts: fn(C) -> (H, Vec<u8>),
) -> Result<(H, Vec<u8>), Status> {
    let mut header = None;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await? {
        let (head, data) = parts(chunk);
        if header.is_none() {
            header = Some(head);
        }
        if bytes.len() + data.len() > max_bytes {
            let message = format!(
                "文件过大（上限{}MB），请分批导入",
                max_bytes / (1024 * 1024)
            );
            return Err(invalid_argument(
                message.clone(),
                &[FieldViolation::new("文件", message)],
            ));
        }
        bytes.extend_from_slice(&data);
    }
    Ok((header.unwrap_or_default(), bytes))
}
