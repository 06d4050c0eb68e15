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

#[test]
fn input_lines_are_validated_as_a_whole() {
    let good =
        br#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}

{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{}}
"#;
    let requests = lines(good).expect("valid");
    assert_eq!(requests.len(), 2);
    assert_eq!(
        (requests[0].0.as_str(), &requests[0].1["model"]),
        ("a", &json!("m"))
    );
    let bad = br#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{}}
not json
{"method":"POST","url":"/v1/chat/completions","body":{}}
{"custom_id":"c","method":"GET","url":"/v1/chat/completions","body":{}}
{"custom_id":"d","method":"POST","url":"/v1/embeddings","body":{}}
{"custom_id":"e","method":"POST","url":"/v1/chat/completions"}
{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{}}
"#;
    let errors = lines(bad).expect_err("invalid");
    let codes: Vec<(&str, Option<usize>)> = errors.iter().map(|e| (e.code, e.line)).collect();
    assert_eq!(
        codes,
        [
            ("invalid_json_line", Some(2)),
            ("missing_required_parameter", Some(3)),
            ("invalid_request", Some(4)),
            ("invalid_url", Some(5)),
            ("missing_required_parameter", Some(6)),
            ("duplicate_custom_id", Some(7)),
        ]
    );
    let empty = lines(b"\n\n").expect_err("empty");
    assert_eq!((empty[0].code, empty[0].line), ("empty_file", None));
}
