use super::*;

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
