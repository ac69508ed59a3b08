#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use super::*;
use crate::engine::catalog::Catalog;
use crate::engine::model::PipelineMode;
use crate::engine::pipeline::{Guardrail, Message, Request, Rewrite, Verdict};
use crate::engine::pyre::*;
use crate::engine::testing::GuardrailProvider;

fn build(extra: Value) -> ContentFilter {
    build_with(extra, &CategoryData::new())
}

fn build_with(extra: Value, data: &CategoryData) -> ContentFilter {
    let mut params = json!({"guardrail": "litellm_content_filter", "mode": "pre_call"});
    for (k, v) in extra.as_object().unwrap() {
        params[k] = v.clone();
    }
    ContentFilter::from_params("t", &params, data).unwrap()
}

fn load_err(extra: Value) -> String {
    let mut params = json!({"guardrail": "litellm_content_filter", "mode": "pre_call"});
    for (k, v) in extra.as_object().unwrap() {
        params[k] = v.clone();
    }
    ContentFilter::from_params("t", &params, &CategoryData::new()).unwrap_err()
}

/// The masked text, or the pipeline's error detail.
fn run(f: &ContentFilter, text: &str) -> Result<String, String> {
    f.filter_text(text).map_err(|e| match e {
        FilterError::Blocked(b) => b.python_str(),
        FilterError::Internal(m) => m,
    })
}

fn prebuilt_rule(name: &str, action: &str) -> Value {
    json!({"pattern_type": "prebuilt", "pattern_name": name, "action": action})
}

fn regex_rule(pattern: &str, name: Option<&str>, action: &str) -> Value {
    let mut v = json!({"pattern_type": "regex", "pattern": pattern, "action": action});
    if let Some(n) = name {
        v["name"] = json!(n);
    }
    v
}

/// The reference's configuration C1.
fn c1() -> ContentFilter {
    build(json!({
        "patterns": [
            prebuilt_rule("email", "MASK"),
            prebuilt_rule("us_ssn", "BLOCK"),
            prebuilt_rule("credit_card", "BLOCK"),
            regex_rule(r"EMP-\d{5}", Some("employee_id"), "MASK"),
            regex_rule(r"TKT-\d{4}", None, "MASK"),
        ],
        "blocked_words": [
            {"keyword": "Project Titan", "action": "BLOCK", "description": "internal codename"},
            {"keyword": "confidential", "action": "MASK"},
            {"keyword": "pass*word", "action": "MASK"},
            {"keyword": "forbidden", "action": "BLOCK"},
        ],
    }))
}

#[test]
fn c1_masks_and_blocks_like_litellm() {
    let f = c1();
    let cases: &[(&str, Result<&str, &str>)] = &[
        (
            "Contact me at John.Doe@Example.com please",
            Ok("Contact me at [EMAIL_REDACTED] please"),
        ),
        (
            "a@x.io and b@y.org",
            Ok("[EMAIL_REDACTED] and [EMAIL_REDACTED]"),
        ),
        (
            "My SSN is 123-45-6789",
            Err("{'error': 'Content blocked: us_ssn pattern detected', 'pattern': 'us_ssn'}"),
        ),
        (
            "Card: 4111-1111-1111-1112",
            Err(
                "{'error': 'Content blocked: credit_card pattern detected', 'pattern': 'credit_card'}",
            ),
        ),
        (
            "Tell me about PROJECT TITAN now",
            Err(
                "{'error': \"Content blocked: keyword 'project titan' detected (internal codename)\", 'keyword': 'project titan', 'description': 'internal codename'}",
            ),
        ),
        (
            "This is CONFIDENTIAL info, Confidential!",
            Ok("This is [KEYWORD_REDACTED] info, [KEYWORD_REDACTED]!"),
        ),
        ("nonconfidentiality", Ok("non[KEYWORD_REDACTED]ity")),
        (
            "my passXword and password and pass-word and passwd",
            Ok("my [KEYWORD_REDACTED] and [KEYWORD_REDACTED] and [KEYWORD_REDACTED] and passwd"),
        ),
        (
            "ticket for EMP-12345",
            Ok("ticket for [EMPLOYEE_ID_REDACTED]"),
        ),
        ("see tkt-0042", Ok("see [CUSTOM_REGEX_REDACTED]")),
        (
            "a@x.io 123-45-6789",
            Err("{'error': 'Content blocked: us_ssn pattern detected', 'pattern': 'us_ssn'}"),
        ),
        (
            "١٢٣-٤٥-٦٧٨٩",
            Err("{'error': 'Content blocked: us_ssn pattern detected', 'pattern': 'us_ssn'}"),
        ),
        (
            "confidential and forbidden",
            Err(
                "{'error': \"Content blocked: keyword 'forbidden' detected\", 'keyword': 'forbidden', 'description': None}",
            ),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            run(&f, input),
            want.map(str::to_string).map_err(str::to_string),
            "{input:?}"
        );
    }
}

#[test]
fn redaction_settings_from_yaml_are_ignored() {
    let f = build(json!({
        "patterns": [prebuilt_rule("email", "MASK")],
        "blocked_words": [{"keyword": "secret", "action": "MASK"}],
        "pattern_redaction_format": "<<{pattern_name}>>",
        "keyword_redaction_tag": "***",
    }));
    assert_eq!(
        run(&f, "x@y.com secret").unwrap(),
        "[EMAIL_REDACTED] [KEYWORD_REDACTED]"
    );
}

#[test]
fn block_patterns_see_only_earlier_masks() {
    let mask_first = build(json!({"patterns": [
        prebuilt_rule("email", "MASK"), regex_rule("@", Some("at_sign"), "BLOCK")]}));
    assert_eq!(run(&mask_first, "a@x.io").unwrap(), "[EMAIL_REDACTED]");
    let block_first = build(json!({"patterns": [
        regex_rule("@", Some("at_sign"), "BLOCK"), prebuilt_rule("email", "MASK")]}));
    assert!(run(&block_first, "a@x.io").unwrap_err().contains("at_sign"));
    // A BLOCK regex after a MASK fires on the tag itself.
    let tag = build(json!({"patterns": [
        prebuilt_rule("email", "MASK"), regex_rule("REDACTED", Some("tagword"), "BLOCK")]}));
    assert!(run(&tag, "a@x.io").unwrap_err().contains("tagword"));
}

#[test]
fn blocked_words_scan_tags_and_earlier_masks() {
    let f = build(json!({
        "patterns": [prebuilt_rule("email", "MASK")],
        "blocked_words": [{"keyword": "redacted", "action": "BLOCK"}],
    }));
    assert!(
        run(&f, "mail a@x.io")
            .unwrap_err()
            .contains("keyword 'redacted'")
    );
    let g = build(json!({"blocked_words": [
        {"keyword": "secret", "action": "MASK"}, {"keyword": "keyword", "action": "BLOCK"}]}));
    assert!(
        run(&g, "a secret")
            .unwrap_err()
            .contains("keyword 'keyword'")
    );
}

#[test]
fn duplicate_keywords_keep_first_position_and_last_values() {
    let f = build(json!({"blocked_words": [
        {"keyword": "Alpha", "action": "BLOCK"}, {"keyword": "ALPHA", "action": "MASK"}]}));
    assert_eq!(run(&f, "alpha").unwrap(), "[KEYWORD_REDACTED]");
}

#[test]
fn keyword_wildcard_is_one_optional_char_but_not_a_newline() {
    let f = build(json!({"blocked_words": [{"keyword": "x*y", "action": "MASK"}]}));
    assert_eq!(run(&f, "x\ny xzy").unwrap(), "x\ny [KEYWORD_REDACTED]");
}

#[test]
fn spans_of_one_pattern_merge_when_touching_and_groups_take_the_first_name() {
    let digit = build(json!({"patterns": [regex_rule(r"\d", Some("digit"), "MASK")]}));
    assert_eq!(run(&digit, "abc 123").unwrap(), "abc [DIGIT_REDACTED]");
    let abc = build(json!({"patterns": [
        regex_rule("foo", Some("a"), "MASK"),
        regex_rule("bar", Some("b"), "MASK"),
        regex_rule("obarb", Some("c"), "MASK"),
    ]}));
    assert_eq!(run(&abc, "foobar").unwrap(), "[A_REDACTED][B_REDACTED]");
    assert_eq!(run(&abc, "foobarbaz").unwrap(), "[A_REDACTED]az");
    assert_eq!(
        run(&abc, "xfooobarbx").unwrap(),
        "x[A_REDACTED][C_REDACTED]x"
    );
    let phone = build(json!({"patterns": [
        prebuilt_rule("us_phone", "MASK"),
        prebuilt_rule("us_ssn_no_dash", "MASK"),
        prebuilt_rule("ipv4", "MASK"),
    ]}));
    assert_eq!(
        run(&phone, "id 1234567890").unwrap(),
        "id [US_PHONE_REDACTED]"
    );
}

#[test]
fn contextual_patterns_need_a_nearby_keyword() {
    let f = build(json!({"patterns": [
        prebuilt_rule("au_tfn", "MASK"),
        prebuilt_rule("nl_bsn_contextual", "MASK"),
        prebuilt_rule("airline_pnr", "MASK"),
    ]}));
    for (input, want) in [
        ("My TFN 123456789", "My TFN [AU_TFN_REDACTED]"),
        ("TFN number is 123456789", "TFN number is 123456789"),
        ("order 123456789", "order 123456789"),
        (
            "BSN: one two three four five six seven eight nine",
            "BSN: [NL_BSN_CONTEXTUAL_REDACTED]",
        ),
        ("my PNR is abcdef", "my PNR is [AIRLINE_PNR_REDACTED]"),
        (
            "PNR: ABCDEF and later QWERTY",
            "PNR: [AIRLINE_PNR_REDACTED] and later QWERTY",
        ),
    ] {
        assert_eq!(run(&f, input).unwrap(), want, "{input:?}");
    }
}

#[test]
fn prebuilt_quirks() {
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["passport_us", "gemini_api_key", "aws_access_key"],
            "passport a12345678",
            "passport [PASSPORT_US_REDACTED]",
        ),
        (
            &["passport_us", "gemini_api_key", "aws_access_key"],
            "key aizaSyA1234567890abcdefghijklmnopqrstu",
            "key aizaSyA1234567890abcdefghijklmnopqrstu",
        ),
        (
            &["passport_us", "gemini_api_key", "aws_access_key"],
            "akiaabcdefghijklmnop",
            "[AWS_ACCESS_KEY_REDACTED]",
        ),
        (
            &["ipv6"],
            "use std::vector here",
            "use st[IPV6_REDACTED]vector here",
        ),
        (
            &["passport_netherlands"],
            "my password1 is weak",
            "my [PASSPORT_NETHERLANDS_REDACTED] is weak",
        ),
        (
            &["terrorism"],
            "kubectl apply the manifest",
            "kubectl apply the [TERRORISM_REDACTED]",
        ),
        (
            &["street_address"],
            "I took 2 steps down the road",
            "I took [STREET_ADDRESS_REDACTED]",
        ),
        (
            &["generic_api_key"],
            "api_key = 'abcdefghijklmnopqrstuvwxyz'",
            "[GENERIC_API_KEY_REDACTED]'",
        ),
        (
            &["br_phone_landline"],
            "ts 1700000000123",
            "ts [BR_PHONE_LANDLINE_REDACTED]123",
        ),
        (
            &["aws_secret_key", "url", "street_address"],
            "commit 3f786850e387550fdab836ed7e6dc881de23001b",
            "commit [AWS_SECRET_KEY_REDACTED]",
        ),
    ];
    for (names, input, want) in cases {
        let patterns: Vec<Value> = names.iter().map(|n| prebuilt_rule(n, "MASK")).collect();
        let f = build(json!({ "patterns": patterns }));
        assert_eq!(run(&f, input).unwrap(), *want, "{names:?} {input:?}");
    }
}

#[test]
fn every_prebuilt_pattern_compiles() {
    for p in PREBUILT {
        assert!(prebuilt(p.name).is_ok(), "{}", p.name);
    }
    assert_eq!(PREBUILT.len(), 85);
}

fn categories() -> CategoryData {
    let mut d = CategoryData::new();
    d.insert_text(
        "violence.yaml",
        "category_name: violence\ndefault_action: BLOCK\nkeywords:\n  - keyword: murder\n    severity: medium\n  - keyword: massacre\n    severity: high\n  - keyword: want to die\n    severity: high\n  - keyword: shove\n    severity: low\nexceptions:\n  - historical\n",
    );
    d.insert_text(
        "minors.yaml",
        "category_name: minors\nidentifier_words: [kid, child]\nadditional_block_words: [sexy, \"dark web\"]\nalways_block_keywords:\n  - keyword: csam\nphrase_patterns:\n  - '\\bput\\b.{0,10}\\bmoney\\b'\n  - '('\n",
    );
    d.insert_text(
        "slurs.json",
        r#"[{"id": 1, "match": "ba*sta*rd|Jerk", "severity": 3}, {"id": 2, "match": "jerk|meanie", "severity": 1}]"#,
    );
    d.insert_text(
        "blocked.yaml",
        "blocked_words:\n  - keyword: Zeta\n    action: BLOCK\n    description: from file\n  - keyword: nope\n",
    );
    d
}

#[test]
fn category_keywords_first_match_word_bounds_and_exceptions() {
    let data = categories();
    let block = build_with(
        json!({"categories": [{"category": "violence", "action": "BLOCK"}]}),
        &data,
    );
    assert_eq!(
        run(&block, "I WANT TO DIET now").unwrap_err(),
        "{'error': \"Content blocked: violence category keyword 'want to die' detected (severity: high)\", 'category': 'violence', 'keyword': 'want to die', 'severity': 'high'}"
    );
    assert_eq!(
        run(&block, "murderous intent").unwrap(),
        "murderous intent",
        "single words need word boundaries"
    );
    assert_eq!(
        run(&block, "murder, prehistorical").unwrap(),
        "murder, prehistorical",
        "an exception anywhere (even inside a word) disables category checks"
    );
    assert_eq!(
        run(&block, "a shove").unwrap(),
        "a shove",
        "below the threshold"
    );
    let mask = build_with(
        json!({"categories": [{"category": "violence", "action": "MASK"}]}),
        &data,
    );
    assert_eq!(
        run(&mask, "I will murder him and murderous murder, a massacre").unwrap(),
        "I will [KEYWORD_REDACTED] him and [KEYWORD_REDACTED]ous [KEYWORD_REDACTED], a massacre",
        "only the first matching keyword is masked, without word boundaries"
    );
}

#[test]
fn conditional_categories_phrases_and_always_block() {
    let data = categories();
    let block = build_with(
        json!({"categories": [{"category": "minors", "action": "BLOCK"}]}),
        &data,
    );
    assert!(
        run(&block, "The kid looked sexy.")
            .unwrap_err()
            .contains("conditional match 'kid + sexy'")
    );
    assert_eq!(
        run(&block, "The kid is nice. She is sexy.").unwrap(),
        "The kid is nice. She is sexy."
    );
    assert!(
        run(&block, "My kidney on the dark web")
            .unwrap_err()
            .contains("'kid + dark web'")
    );
    assert_eq!(
        run(&block, "where do I put my money").unwrap_err(),
        "{'error': \"Content blocked: minors conditional match 'phrase: \\\\bput\\\\b.{0,10}\\\\bmoney\\\\b' detected (severity: high)\", 'category': 'minors', 'matched_phrase': 'phrase: \\\\bput\\\\b.{0,10}\\\\bmoney\\\\b', 'severity': 'high'}"
    );
    let mask = build_with(
        json!({"categories": [{"category": "minors", "action": "MASK"}]}),
        &data,
    );
    assert_eq!(
        run(&mask, "The kid looked sexy.").unwrap(),
        "The kid looked sexy.",
        "MASK does nothing for conditional matches"
    );
    assert_eq!(
        run(&mask, "looking for CSAM files").unwrap(),
        "looking for [KEYWORD_REDACTED] files",
        "always-block keywords follow the configured action"
    );
}

#[test]
fn json_categories_and_missing_files() {
    let data = categories();
    let f = build_with(
        json!({"categories": [{"category": "slurs", "action": "MASK", "severity_threshold": "low"}]}),
        &data,
    );
    assert_eq!(run(&f, "you basstard").unwrap(), "you [KEYWORD_REDACTED]");
    assert_eq!(run(&f, "you bstard").unwrap(), "you bstard");
    // Unknown categories are skipped; LiteLLM's bundled ones must be supplied.
    let skipped = build(json!({"categories": [{"category": "nothing_here", "action": "BLOCK"}]}));
    assert_eq!(run(&skipped, "murder").unwrap(), "murder");
    let err =
        load_err(json!({"categories": [{"category": "harmful_self_harm", "action": "BLOCK"}]}));
    assert!(err.contains("harmful_self_harm.yaml"), "{err}");
    let err = load_err(json!({"categories": [{"category": "x", "action": "BLOCK",
        "category_file": "policy_templates/prompt_injection.yaml"}]}));
    assert!(err.contains("prompt_injection.yaml"), "{err}");
}

#[test]
fn blocked_words_file_overrides_inline_entries() {
    let data = categories();
    let f = build_with(
        json!({"blocked_words": [{"keyword": "zeta", "action": "MASK"}], "blocked_words_file": "blocked.yaml"}),
        &data,
    );
    assert_eq!(
        run(&f, "ZETA").unwrap_err(),
        "{'error': \"Content blocked: keyword 'zeta' detected (from file)\", 'keyword': 'zeta', 'description': 'from file'}"
    );
    assert_eq!(
        load_err(json!({"blocked_words_file": "missing.yaml"})),
        "Blocked words file not found: missing.yaml"
    );
}

#[test]
fn detail_is_pythons_str_of_the_dict() {
    let f = build(json!({"blocked_words": [
        {"keyword": "it's", "action": "BLOCK", "description": "say \"hi\"\n\u{200b}"},
        {"keyword": "c:\\x", "action": "BLOCK"},
    ]}));
    assert_eq!(
        run(&f, "it's").unwrap_err(),
        "{'error': 'Content blocked: keyword \\'it\\'s\\' detected (say \"hi\"\\n\\u200b)', 'keyword': \"it's\", 'description': 'say \"hi\"\\n\\u200b'}"
    );
    assert_eq!(
        run(&f, "C:\\X").unwrap_err(),
        "{'error': \"Content blocked: keyword 'c:\\\\x' detected\", 'keyword': 'c:\\\\x', 'description': None}"
    );
    assert_eq!(py_repr_str("é😀\u{7f}\u{85}"), "'é😀\\x7f\\x85'");
}

#[test]
fn content_filter_load_errors() {
    assert!(
        load_err(json!({"patterns": [prebuilt_rule("nope", "BLOCK")]}))
            .starts_with("Unknown pattern name: 'nope'. Available patterns: us_ssn, ")
    );
    assert!(load_err(json!({"patterns": [prebuilt_rule("email", "mask")]})).contains("action"));
    assert!(
        load_err(json!({"patterns": [{"pattern_type": "prebuilt", "pattern_name": "email"}]}))
            .contains("action")
    );
    assert!(
        load_err(json!({"patterns": [regex_rule("(", None, "BLOCK")]})).contains("invalid regex")
    );
    assert!(
        load_err(json!({"patterns": [regex_rule(r"(a)\1", None, "BLOCK")]}))
            .contains("backreference")
    );
    assert_eq!(
        load_err(json!({"mode": "bogus"})),
        "'bogus' is not a valid GuardrailEventHooks"
    );
    assert!(
        load_err(json!({"competitor_intent_config": {"competitors": ["x"]}}))
            .contains("competitor")
    );
}

fn request(messages: &[(&str, &str)], response: Option<&str>) -> Request {
    Request {
        model: Some("gpt-4o".into()),
        messages: messages
            .iter()
            .map(|(r, c)| Message {
                role: (*r).into(),
                content: (*c).into(),
            })
            .collect(),
        response: response.map(Into::into),
    }
}

#[test]
fn pre_call_masks_every_message_in_place_and_blocks_before_writing() {
    let f = build(json!({
        "patterns": [prebuilt_rule("email", "MASK")],
        "blocked_words": [{"keyword": "forbidden", "action": "BLOCK"}],
    }));
    let req = request(
        &[
            ("system", "sys@corp.com"),
            ("user", "u@corp.com"),
            ("tool", ""),
        ],
        None,
    );
    match f.check(PipelineMode::PreCall, &req) {
        Verdict::Pass(Rewrite::InPlace(r)) => {
            assert_eq!(r.messages[0].content, "[EMAIL_REDACTED]");
            assert_eq!(r.messages[1].content, "[EMAIL_REDACTED]");
        }
        v => panic!("{v:?}"),
    }
    let blocked = request(&[("user", "a@b.io"), ("user", "forbidden")], None);
    assert!(matches!(
        f.check(PipelineMode::PreCall, &blocked),
        Verdict::Fail(_)
    ));
    let clean = request(&[("user", "hello")], None);
    assert_eq!(
        f.check(PipelineMode::PreCall, &clean),
        Verdict::Pass(Rewrite::None)
    );
    let skip_system = build(json!({
        "blocked_words": [{"keyword": "forbidden", "action": "BLOCK"}],
        "skip_system_message_in_guardrail": true,
    }));
    let sys = request(&[("System", "forbidden"), ("user", "hi")], None);
    assert_eq!(
        skip_system.check(PipelineMode::PreCall, &sys),
        Verdict::Pass(Rewrite::None)
    );
    let tools_only = build(json!({
        "blocked_words": [{"keyword": "forbidden", "action": "BLOCK"}],
        "scan_only_tool_results": true,
    }));
    assert_eq!(
        tools_only.check(PipelineMode::PreCall, &sys),
        Verdict::Pass(Rewrite::None)
    );
}

#[test]
fn modes_gate_and_post_call_scans_the_response() {
    let post = build(json!({
        "mode": "post_call",
        "patterns": [prebuilt_rule("email", "MASK")],
        "blocked_words": [{"keyword": "forbidden", "action": "BLOCK"}],
    }));
    let req = request(&[("user", "forbidden a@b.io")], Some("reach me at r@s.tv"));
    assert_eq!(
        post.check(PipelineMode::PreCall, &req),
        Verdict::Pass(Rewrite::None),
        "a post_call guardrail in a pre_call pipeline does nothing"
    );
    match post.check(PipelineMode::PostCall, &req) {
        Verdict::Pass(Rewrite::InPlace(r)) => {
            assert_eq!(r.response.as_deref(), Some("reach me at [EMAIL_REDACTED]"));
            assert_eq!(
                r.messages, req.messages,
                "post_call leaves the request alone"
            );
        }
        v => panic!("{v:?}"),
    }
    let empty = request(&[("user", "x")], Some(""));
    assert_eq!(
        post.check(PipelineMode::PostCall, &empty),
        Verdict::Pass(Rewrite::None)
    );
    for mode in [json!(""), json!([])] {
        let f = build(json!({"mode": mode}));
        assert_eq!(f.hooks(), ["pre_call"], "an empty mode means pre_call");
    }
    let both = build(json!({"mode": ["pre_call", "post_call"]}));
    assert!(both.runs_on("pre_call") && both.runs_on("post_call"));
    let streaming = build(json!({"stream_scope": "streaming"}));
    assert_eq!(streaming.check(PipelineMode::PreCall, &req), Verdict::Skip);
    let bogus_scope = build(json!({"stream_scope": "sometimes"}));
    assert_eq!(
        bogus_scope.check(PipelineMode::PreCall, &req),
        Verdict::Pass(Rewrite::None)
    );
}

#[test]
fn guardrails_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ContentFilter>();
    assert_send_sync::<CatalogGuardrails>();
    assert_send_sync::<CategoryData>();
}

#[test]
fn catalog_guardrails_build_content_filters_only() {
    let catalog = Catalog::from_value(&json!([
        {"guardrail_name": "pii", "litellm_params": {"guardrail": "litellm_content_filter",
            "mode": "post_call", "patterns": [{"pattern_type": "prebuilt", "pattern_name": "email", "action": "MASK"}]}},
        {"guardrail_name": "broken", "litellm_params": {"guardrail": "litellm_content_filter",
            "mode": "pre_call", "patterns": [{"pattern_type": "regex", "pattern": "(", "action": "BLOCK"}]}},
        {"guardrail_name": "presidio", "litellm_params": {"guardrail": "presidio", "mode": "pre_call"}},
    ]))
    .unwrap();
    let g = CatalogGuardrails::new(&catalog, &CategoryData::new());
    assert!(g.real("pii").is_some());
    assert_eq!(g.mode("pii"), PipelineMode::PostCall);
    assert!(g.real("presidio").is_none());
    assert_eq!(g.mode("presidio"), PipelineMode::PreCall);
    assert_eq!(g.errors().len(), 1);
    let broken = g.real("broken").unwrap();
    assert!(matches!(
        broken.check(PipelineMode::PreCall, &Request::default()),
        Verdict::Error(m) if m.contains("invalid regex")
    ));
    assert!(g.real("missing").is_none());
}
