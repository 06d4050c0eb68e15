//! `multipart/form-data`, as far as OpenAI's file upload needs it: the `purpose`
//! field and the `file` part.

use hyper::HeaderMap;

/// The uploaded file of a `multipart/form-data` body: its name and bytes, after
/// checking `purpose=batch`.
pub(super) fn file(headers: &HeaderMap, body: &[u8]) -> Result<(String, Vec<u8>), String> {
    let kind = headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    parts(kind, body)
}

/// The `file` part (name, bytes) of a multipart body of content type `kind`.
fn parts(kind: &str, body: &[u8]) -> Result<(String, Vec<u8>), String> {
    let boundary = kind
        .strip_prefix("multipart/form-data")
        .and_then(|rest| rest.split("boundary=").nth(1))
        .map(|b| b.split(';').next().unwrap_or(b).trim().trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or("the body must be multipart/form-data with a boundary")?;
    let delimiter = format!("--{boundary}");
    let (mut purpose, mut file) = (None, None);
    for part in split(body, delimiter.as_bytes()).skip(1) {
        if part.starts_with(b"--") {
            break;
        }
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let Some(head_end) = find(part, b"\r\n\r\n") else {
            return Err("a multipart part has no header".into());
        };
        let head = String::from_utf8_lossy(&part[..head_end]).to_ascii_lowercase();
        let content = &part[head_end + 4..];
        let param = |name: &str| {
            head.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(str::to_owned)
        };
        match param("name").as_deref() {
            Some("purpose") => purpose = Some(String::from_utf8_lossy(content).trim().to_owned()),
            Some("file") => {
                let name = param("filename").unwrap_or_else(|| "upload.jsonl".into());
                file = Some((name, content.to_vec()));
            }
            _ => {}
        }
    }
    match purpose.as_deref() {
        Some("batch") => {}
        Some(other) => {
            return Err(format!(
                "Invalid value for 'purpose': serve takes 'batch' files only, not '{other}'."
            ));
        }
        None => return Err("Missing required parameter: 'purpose'.".into()),
    }
    file.ok_or_else(|| "Missing required parameter: 'file'.".into())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split<'a>(mut body: &'a [u8], delimiter: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match find(body, delimiter) {
            Some(i) => {
                let head = &body[..i];
                body = &body[i + delimiter.len()..];
                Some(head)
            }
            None => {
                done = true;
                Some(body)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(purpose: &str, file: &[u8]) -> Vec<u8> {
        let mut body = format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n\
             Content-Type: application/jsonl\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(file);
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        body
    }

    #[test]
    fn multipart_uploads_give_their_file() {
        let kind = "multipart/form-data; boundary=XyZ";
        let file = b"{\"a\":1}\n{\"b\":\"--X\"}\n";
        let (name, bytes) = parts(kind, &upload("batch", file)).expect("parsed");
        assert_eq!((name.as_str(), bytes.as_slice()), ("in.jsonl", &file[..]));
        let quoted = "multipart/form-data; boundary=\"XyZ\"; charset=utf-8";
        assert!(parts(quoted, &upload("batch", file)).is_ok());
        let wrong = parts(kind, &upload("fine-tune", file)).expect_err("wrong purpose");
        assert!(
            wrong.contains("'purpose'") && wrong.contains("fine-tune"),
            "{wrong}"
        );
        assert!(parts("application/json", b"{}").is_err());
        let no_file =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--XyZ--\r\n";
        assert!(
            parts(kind, no_file)
                .expect_err("no file")
                .contains("'file'")
        );
        let no_purpose = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\nx\r\n--XyZ--\r\n";
        assert!(
            parts(kind, no_purpose)
                .expect_err("no purpose")
                .contains("'purpose'")
        );
        assert!(parts(kind, b"--XyZ\r\nno header end").is_err());
    }
}
