//! Receiving a file over a client stream: the first chunk names it, every
//! chunk carries bytes, and the whole must stay under a limit.

use tonic::{Status, Streaming};

use crate::status::{FieldViolation, invalid_argument};

/// Collects a streamed file into its name and bytes; `parts` takes a chunk
/// apart into `(file_name, data)`. Refuses, naming the limit, a file larger
/// than `max_bytes`, before holding more than that in memory.
pub async fn collect<C>(
    mut stream: Streaming<C>,
    max_bytes: usize,
    parts: fn(C) -> (String, Vec<u8>),
) -> Result<(String, Vec<u8>), Status> {
    let mut file_name = String::new();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await? {
        let (name, data) = parts(chunk);
        if file_name.is_empty() {
            file_name = name;
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
    Ok((file_name, bytes))
}
