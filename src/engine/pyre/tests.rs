#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn python_regex_semantics() {
    let re = |p: &str, i: bool| PyRegex::new(p, i).unwrap();
    // IGNORECASE equivalences beyond simple case folding, and Unicode classes.
    assert!(re("i", true).search("ı"));
    assert!(re("[a-z]", true).search("İ"));
    assert!(re("s", true).search("ſ"));
    assert!(re("k", true).search("\u{212a}"));
    assert!(!re("(?-i:AIza)", true).search("aiza"));
    assert!(re(r"\d", false).search("٣"));
    assert!(!re(r"\s", false).search("\u{200b}"));
    assert!(re(r"\s", false).search("\u{1c}"));
    // Python's \b: a combining mark is not a word character; `²` is.
    assert_eq!(re(r"e\b", false).find_iter("cafe\u{301}"), vec![(3, 4)]);
    assert_eq!(
        re(r"\b2\b", false).find_iter("2²"),
        Vec::<(usize, usize)>::new()
    );
    // `$` also matches before a final newline; lookarounds.
    assert_eq!(re("a$", false).find_iter("a\n"), vec![(0, 1)]);
    assert_eq!(
        re(r"(?<=id:)\d+", false).find_iter("id:42 x:7"),
        vec![(3, 5)]
    );
    assert_eq!(
        re(r"\d(?!\d)", false).find_iter("12 3"),
        vec![(1, 2), (3, 4)]
    );
    // Empty matches follow Python's finditer / sub rules.
    assert_eq!(
        re("x*", false).find_iter("axb"),
        vec![(0, 0), (1, 2), (2, 2), (3, 3)]
    );
    assert_eq!(re("x*", false).sub("axb", "-"), "-a--b-");
    assert!(re(r"\b[0-9]{9}\b", true).fullmatch("123456789"));
    assert!(!re(r"\b[0-9]{9}\b", true).fullmatch("1234567890"));
}

#[test]
fn deep_group_nesting_is_unsupported_not_a_stack_overflow() {
    let deep = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
    // 100 levels parse, compile and match on an async worker thread's stack (2 MiB), even in a
    // debug build (about 1 MiB there).
    let ok = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let r = PyRegex::new(&deep(100), false).map_err(|e| format!("{e:?}"))?;
            let nc = format!("{}a|b{}", "(?:".repeat(100), ")".repeat(100));
            let nc = PyRegex::new(&nc, false).map_err(|e| format!("{e:?}"))?;
            Ok::<bool, String>(r.fullmatch("a") && nc.fullmatch("b") && !nc.fullmatch("c"))
        })
        .map(|t| t.join());
    assert!(matches!(ok, Ok(Ok(Ok(true)))), "{ok:?}");
    for p in [
        deep(101),
        deep(100_000),
        "(".repeat(100_000),
        "(?:".repeat(50_000),
    ] {
        match PyRegex::new(&p, true) {
            Err(ReError::Unsupported(why)) => assert!(why.contains("nested"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn python_errors_are_invalid_and_constructs_without_an_exact_match_unsupported() {
    for bad in [
        "(",
        "[a-",
        "a**",
        "*a",
        r"(?<=a+)b",
        r"\q",
        "a{3,1}",
        "x(?i)",
    ] {
        assert!(
            matches!(PyRegex::new(bad, true), Err(ReError::Invalid(_))),
            "{bad}"
        );
    }
    for unsupported in [
        r"(a)\1",
        "(?>a)",
        "a*+",
        "(?x)a",
        "(?a)a",
        "(a*)*",
        r"\N{DASH}",
    ] {
        assert!(
            matches!(
                PyRegex::new(unsupported, true),
                Err(ReError::Unsupported(_))
            ),
            "{unsupported}"
        );
    }
}
