//! The README's Rust example is the visible part of a doctest, so it is compiled and run.

/// The lines of the first fenced code block after the line `heading`.
fn code_block_after<'a>(lines: &[&'a str], heading: &str) -> Vec<&'a str> {
    let start = lines
        .iter()
        .position(|l| l.trim_end() == heading)
        .unwrap_or_else(|| panic!("no heading {heading:?}"));
    let mut rest = lines[start..]
        .iter()
        .skip_while(|l| !l.trim_start().starts_with("```"));
    let fence = rest
        .next()
        .unwrap_or_else(|| panic!("no code after {heading:?}"));
    assert!(
        matches!(fence.trim(), "```" | "```rust"),
        "the code after {heading:?} is not Rust: {fence}"
    );
    rest.take_while(|l| l.trim() != "```").copied().collect()
}

/// What rustdoc shows of a doctest: hidden lines (`# …`, `#`) dropped, blank lines ignored.
fn visible(lines: Vec<&str>) -> Vec<String> {
    lines
        .into_iter()
        .map(str::trim_end)
        .filter(|l| {
            let t = l.trim_start();
            !(t.is_empty() || t == "#" || t.starts_with("# "))
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn readme_test_controls_example_is_the_compiled_doctest() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{dir}/README.md")).expect("README.md");
    let lib = std::fs::read_to_string(format!("{dir}/src/lib.rs")).expect("src/lib.rs");
    let readme_lines: Vec<&str> = readme.lines().collect();
    let doc_lines: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();

    let in_readme = visible(code_block_after(&readme_lines, "## Test controls"));
    let in_docs = visible(code_block_after(&doc_lines, "# Test controls"));
    assert!(
        in_docs.iter().any(|l| l.contains("assert_eq!")),
        "the doctest asserts nothing: {in_docs:#?}"
    );
    assert_eq!(in_readme, in_docs);
}

#[test]
fn readme_has_no_other_rust_block() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    assert_eq!(
        readme.lines().filter(|l| l.trim() == "```rust").count(),
        1,
        "every Rust block of the README must be a doctest's visible part, checked here"
    );
}
