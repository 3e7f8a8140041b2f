//! Just enough multipart/form-data to read the `media` file of an upload:
//! the sim's only multipart endpoint, so a whole parser crate is not worth it.

/// One file field of a form.
#[derive(Debug, PartialEq, Eq)]
pub struct Part {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
}

/// The field called `name` in a `multipart/form-data` body, if there is one.
pub fn field(content_type: &str, body: &[u8], name: &str) -> Option<Part> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let mut rest = body;
    loop {
        let start = find(rest, delimiter.as_bytes())? + delimiter.len();
        rest = &rest[start..];
        if rest.starts_with(b"--") {
            return None;
        }
        let rest_after_crlf = rest.strip_prefix(b"\r\n")?;
        let headers_end = find(rest_after_crlf, b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&rest_after_crlf[..headers_end]);
        let content = &rest_after_crlf[headers_end + 4..];
        let end = find(content, format!("\r\n{delimiter}").as_bytes())?;
        let wanted = format!("name=\"{name}\"");
        if headers.lines().any(|l| {
            l.to_ascii_lowercase().starts_with("content-disposition") && l.contains(&wanted)
        }) {
            let content_type = headers.lines().find_map(|l| {
                let (key, value) = l.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case("content-type")
                    .then(|| value.trim().to_owned())
            });
            return Some(Part {
                bytes: content[..end].to_vec(),
                content_type,
            });
        }
        rest = &content[end..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Builds a body with one file field, as WeChat's upload expects.
pub fn encode(
    boundary: &str,
    name: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> Vec<u8> {
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_field_is_found_among_others() {
        let mut body =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\nimage\r\n".to_vec();
        body.extend(encode(
            "XyZ",
            "media",
            "a.png",
            "image/png",
            b"\x89PNG\r\n--X\r\nbytes",
        ));
        let part = field("multipart/form-data; boundary=XyZ", &body, "media").expect("media field");
        assert_eq!(part.bytes, b"\x89PNG\r\n--X\r\nbytes");
        assert_eq!(part.content_type.as_deref(), Some("image/png"));
    }

    #[test]
    fn a_missing_field_or_boundary_is_none() {
        let body = encode("b", "other", "a", "image/png", b"x");
        assert_eq!(
            field("multipart/form-data; boundary=b", &body, "media"),
            None
        );
        assert_eq!(field("multipart/form-data", &body, "other"), None);
    }
}
