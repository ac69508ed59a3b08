//! Differential test of `engine::content_filter` against litellm 1.110.2's real content filter.
//!
//! The cases come from `tests/content_filter/oracle.py` (run by
//! `scripts/content-filter-conformance.sh`), which executes LiteLLM's guardrail as a one-step
//! policy pipeline on seeded configurations and texts; `CONTENT_FILTER_CASES` names the JSON.
//! Every disagreement is printed as a reproducer (configuration, mode, messages, both answers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use guardrail_operator::engine::content_filter::{CategoryData, ContentFilter, PREBUILT};
use guardrail_operator::engine::model::PipelineMode;
use guardrail_operator::engine::pipeline::{Message, Request, Rewrite, Verdict};
use guardrail_operator::engine::pyre::{PyRegex, pychar};
use serde_json::{Value, json};

fn cases() -> &'static Value {
    static CASES: OnceLock<Value> = OnceLock::new();
    CASES.get_or_init(|| {
        let path = std::env::var("CONTENT_FILTER_CASES").unwrap_or_else(|_| {
            panic!(
                "CONTENT_FILTER_CASES is not set: run scripts/content-filter-conformance.sh, which \
                 generates the cases with litellm 1.110.2 (tests/content_filter/oracle.py) and \
                 points this variable at them"
            )
        });
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("CONTENT_FILTER_CASES={path}: {e}"));
        let v: Value = serde_json::from_str(&text).expect("cases JSON");
        assert_eq!(
            v["litellm_version"], "1.110.2",
            "cases were not made by litellm 1.110.2"
        );
        v
    })
}

#[test]
fn prebuilt_table_is_litellms() {
    let expected = cases()["prebuilt"].as_array().expect("prebuilt");
    assert_eq!(
        PREBUILT.len(),
        expected.len(),
        "number of prebuilt patterns"
    );
    for (ours, theirs) in PREBUILT.iter().zip(expected) {
        assert_eq!(ours.name, theirs["name"], "prebuilt order");
        assert_eq!(ours.regex, theirs["regex"], "regex of {}", ours.name);
        assert_eq!(
            ours.keyword.map(Value::from).unwrap_or(Value::Null),
            theirs["keyword"],
            "keyword regex of {}",
            ours.name
        );
        assert_eq!(
            ours.name == "nl_bsn_contextual",
            theirs["allow_word_numbers"].as_bool().unwrap(),
            "allow_word_numbers of {}",
            ours.name
        );
    }
}

fn range_set(v: &Value) -> Vec<(u32, u32)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_u64().unwrap() as u32, r[1].as_u64().unwrap() as u32))
        .collect()
}

fn in_ranges(r: &[(u32, u32)], c: u32) -> bool {
    let i = r.partition_point(|&(_, hi)| hi < c);
    r.get(i).is_some_and(|&(lo, _)| lo <= c)
}

#[test]
fn python_character_tables_agree_for_unicode_14() {
    let t = &cases()["chars"];
    let assigned = range_set(&t["assigned"]);
    type Predicate = (&'static str, fn(char) -> bool);
    let preds: [Predicate; 5] = [
        ("word", pychar::is_word),
        ("decimal", pychar::is_decimal),
        ("space", pychar::is_space),
        ("isdigit", pychar::is_digit),
        ("printable", pychar::is_printable),
    ];
    let lower: HashMap<u32, u32> = t["lower"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_u64().unwrap() as u32))
        .collect();
    let upper: HashMap<u32, u32> = t["upper"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_u64().unwrap() as u32))
        .collect();
    let mut bad: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut checked = 0u32;
    for (name, f) in preds {
        let set = range_set(&t[name]);
        for c in (0..=0x10FFFFu32).filter(|&c| in_ranges(&assigned, c)) {
            let Some(ch) = char::from_u32(c) else {
                continue;
            };
            checked += 1;
            if f(ch) != in_ranges(&set, c) {
                bad.entry(name).or_default().push(format!("U+{c:04X}"));
            }
        }
    }
    // A case mapping onto a character that Unicode 14 does not have yet (Rust's tables are
    // newer) cannot matter for text Python 3.11 knows: only mappings between characters
    // assigned in Unicode 14 must agree.
    let mut newer = Vec::new();
    for c in (0..=0x10FFFFu32).filter(|&c| in_ranges(&assigned, c)) {
        let Some(ch) = char::from_u32(c) else {
            continue;
        };
        for (name, ours, theirs) in [
            (
                "lower",
                pychar::lower(ch) as u32,
                *lower.get(&c).unwrap_or(&c),
            ),
            (
                "upper",
                pychar::upper(ch) as u32,
                *upper.get(&c).unwrap_or(&c),
            ),
        ] {
            if ours != theirs {
                if in_ranges(&assigned, ours) {
                    bad.entry(name).or_default().push(format!("U+{c:04X}"));
                } else {
                    newer.push(format!("{name}(U+{c:04X}) = U+{ours:04X}"));
                }
            }
        }
    }
    if !newer.is_empty() {
        println!("  case mappings onto characters added after Unicode 14 (ignored): {newer:?}");
    }
    // CPython's extra IGNORECASE equivalences.
    for (k, vs) in t["extra_cases"].as_object().unwrap() {
        let k = char::from_u32(k.parse().unwrap()).unwrap();
        let re = PyRegex::new(&k.to_string(), true).unwrap();
        for v in vs.as_array().unwrap() {
            let v = char::from_u32(v.as_u64().unwrap() as u32).unwrap();
            if !re.search(&v.to_string()) {
                bad.entry("extra_cases")
                    .or_default()
                    .push(format!("{k:?}~{v:?}"));
            }
        }
    }
    println!(
        "character tables: {checked} predicate checks over the code points assigned in Unicode {}",
        t["unidata_version"]
    );
    for (name, list) in &bad {
        println!(
            "  {name}: {} disagreements, e.g. {:?}",
            list.len(),
            &list[..list.len().min(12)]
        );
    }
    assert!(
        bad.is_empty(),
        "character tables disagree with CPython 3.11"
    );
}

fn messages_of(v: &Value) -> Vec<Message> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| Message {
            role: m["role"].as_str().unwrap().to_string(),
            content: m["content"].as_str().unwrap().to_string(),
        })
        .collect()
}

fn messages_json(m: &[Message]) -> Value {
    Value::Array(
        m.iter()
            .map(|m| json!({"role": m.role, "content": m.content}))
            .collect(),
    )
}

#[test]
fn content_filter_matches_litellm() {
    let data = cases();
    let mut files = CategoryData::new();
    for (name, text) in data["files"].as_object().unwrap() {
        files.insert_text(name.clone(), text.as_str().unwrap());
    }
    let started = std::time::Instant::now();
    let mut filters: HashMap<String, ContentFilter> = HashMap::new();
    let mut disagreements = Vec::new();
    let configs = data["configs"].as_array().unwrap();
    for c in configs {
        let id = c["id"].as_str().unwrap().to_string();
        let name = c["name"].as_str().unwrap();
        let built = ContentFilter::from_params(name, &c["litellm_params"], &files);
        match (&built, c["load_error"].as_str()) {
            (Ok(_), None) | (Err(_), Some(_)) => {}
            (Ok(_), Some(e)) => disagreements.push(format!(
                "config {id}: LiteLLM refuses to load it ({e}) but we built it\n  litellm_params: {}",
                c["litellm_params"]
            )),
            (Err(e), None) => disagreements.push(format!(
                "config {id}: LiteLLM loads it but we refuse: {e}\n  litellm_params: {}",
                c["litellm_params"]
            )),
        }
        if let Ok(f) = built {
            filters.insert(id, f);
        }
    }
    let build_time = started.elapsed();

    let by_id: HashMap<&str, &Value> = configs
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c))
        .collect();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut masked = 0;
    let all = data["cases"].as_array().unwrap();
    let run_started = std::time::Instant::now();
    for case in all {
        let id = case["id"].as_str().unwrap();
        let cfg = case["config"].as_str().unwrap();
        let Some(filter) = filters.get(cfg) else {
            disagreements.push(format!("{id}: configuration {cfg} did not build"));
            continue;
        };
        let mode = match case["mode"].as_str().unwrap() {
            "pre_call" => PipelineMode::PreCall,
            _ => PipelineMode::PostCall,
        };
        let request = Request {
            model: Some("gpt-4o".into()),
            messages: messages_of(&case["messages"]),
            response: case["response"].as_str().map(str::to_string),
        };
        let (outcome, detail, after) = match filter.run(mode, &request) {
            Verdict::Pass(Rewrite::None) => ("pass", None, request.clone()),
            Verdict::Pass(Rewrite::InPlace(r) | Rewrite::Returned(r)) => ("pass", None, r),
            Verdict::Fail(d) => ("fail", Some(d), request.clone()),
            Verdict::Error(d) => ("error", Some(d), request.clone()),
            Verdict::Skip => ("skip", None, request.clone()),
        };
        let got = json!({
            "outcome": outcome,
            "detail": detail,
            "messages": messages_json(&after.messages),
            "response": if mode == PipelineMode::PostCall { json!(after.response) } else { Value::Null },
        });
        let expected = &case["expected"];
        *outcomes
            .entry(expected["outcome"].as_str().unwrap().to_string())
            .or_default() += 1;
        if expected["outcome"] == "pass"
            && (expected["messages"] != case["messages"]
                || (mode == PipelineMode::PostCall && expected["response"] != case["response"]))
        {
            masked += 1;
        }
        if &got != expected {
            disagreements.push(format!(
                "{id} ({mode:?}) config {cfg}\n  litellm_params: {}\n  messages: {}\n  response: {}\n  litellm: {}\n  ours:    {}",
                by_id[cfg]["litellm_params"],
                case["messages"],
                case["response"],
                expected,
                got
            ));
        }
    }
    let run_time = run_started.elapsed();
    println!(
        "content filter: {} cases over {} configurations ({} that LiteLLM refuses to load); outcomes {outcomes:?}, {masked} masked",
        all.len(),
        filters.len(),
        configs.len() - filters.len()
    );
    println!(
        "content filter: built the configurations in {:.1} ms, ran the cases in {:.1} ms",
        build_time.as_secs_f64() * 1000.0,
        run_time.as_secs_f64() * 1000.0
    );
    for d in &disagreements {
        println!("DISAGREEMENT {d}\n");
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements with litellm 1.110.2",
        disagreements.len()
    );
}

/// Byte offset → code-point offset.
fn cp_offset(text: &str, byte: usize) -> usize {
    text[..byte].chars().count()
}

#[test]
fn random_regexes_match_pythons_re() {
    let cases = cases()["regex_cases"].as_array().expect("regex_cases");
    let mut disagreements = Vec::new();
    let mut runs = 0;
    for c in cases {
        let pattern = c["pattern"].as_str().unwrap();
        let ignorecase = c["ignorecase"].as_bool().unwrap();
        let compiled = PyRegex::new(pattern, ignorecase);
        match (&compiled, c["error"].as_str()) {
            (Err(_), Some(_)) => continue,
            (Ok(_), Some(e)) => {
                disagreements.push(format!(
                    "{pattern:?} (i={ignorecase}): Python: {e}; we compiled it"
                ));
                continue;
            }
            (Err(e), None) => {
                disagreements.push(format!(
                    "{pattern:?} (i={ignorecase}): Python compiles it; we: {e:?}"
                ));
                continue;
            }
            (Ok(_), None) => {}
        }
        let re = compiled.unwrap();
        for t in c["texts"].as_array().unwrap() {
            let text = t["text"].as_str().unwrap();
            runs += 1;
            let ours: Vec<Value> = re
                .find_iter(text)
                .into_iter()
                .map(|(s, e)| json!([cp_offset(text, s), cp_offset(text, e)]))
                .collect();
            if Value::Array(ours.clone()) != t["spans"] {
                disagreements.push(format!(
                    "{pattern:?} (i={ignorecase}) on {text:?}: Python {} ours {}",
                    t["spans"],
                    Value::Array(ours)
                ));
            }
        }
    }
    println!(
        "random regexes: {} patterns, {runs} finditer runs",
        cases.len()
    );
    for d in &disagreements {
        println!("REGEX DISAGREEMENT {d}");
    }
    assert!(
        disagreements.is_empty(),
        "{} regex disagreements",
        disagreements.len()
    );
}
