//! Checks that keep the documentation walkable: the README stays a short
//! front page, every relative link and `#anchor` lands somewhere, and every
//! `cargo xtask` command the documents tell a reader to run exists.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::{USAGE, project_root};

/// The README is the front page; the rest lives in `docs/`.
const README_MAX_LINES: usize = 250;

/// The Markdown files a reader of the repository walks between, relative to its root.
fn documents() -> Vec<PathBuf> {
    let root = project_root();
    let mut paths = vec![root.join("README.md"), root.join("infra/README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|extension| extension == "md") {
            paths.push(path);
        }
    }
    paths.sort();
    paths
}

/// The lines outside fenced code blocks: what Markdown renders as text.
fn prose(text: &str) -> Vec<&str> {
    let mut in_fence = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                in_fence = !in_fence;
                return false;
            }
            !in_fence
        })
        .collect()
}

/// The anchors GitHub gives a document's headings: lower-cased, punctuation
/// dropped, spaces as dashes, a repeated heading numbered `-1`, `-2`, ….
fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut anchors = Vec::new();
    for line in prose(text) {
        let Some(heading) = line.strip_prefix('#') else { continue };
        let heading = heading.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let slug: String = heading
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let count = seen.entry(slug.clone()).or_default();
        anchors.push(if *count == 0 { slug.clone() } else { format!("{slug}-{count}") });
        *count += 1;
    }
    anchors
}

/// The targets of the inline links `[text](target)` in a document's prose.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose(text) {
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            let Some(end) = rest.find(')') else { break };
            targets.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    targets
}

fn display(path: &Path) -> String {
    path.strip_prefix(project_root()).unwrap_or(path).display().to_string()
}

#[test]
fn readme_is_a_short_front_page() {
    let lines = std::fs::read_to_string(project_root().join("README.md")).unwrap().lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines; move detail into docs/ (at most {README_MAX_LINES})"
    );
}

#[test]
fn every_relative_link_and_anchor_exists() {
    let mut checked = 0;
    for document in documents() {
        let text = std::fs::read_to_string(&document).unwrap();
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').map_or((target.as_str(), None), |(path, a)| (path, Some(a)));
            let linked = if path.is_empty() { document.clone() } else { document.parent().unwrap().join(path) };
            assert!(linked.exists(), "{} links to {target}, which does not exist", display(&document));
            if let Some(anchor) = anchor {
                let linked_text = std::fs::read_to_string(&linked).unwrap();
                assert!(
                    anchors(&linked_text).iter().any(|heading| heading == anchor),
                    "{} links to {target}, but {} has no heading with that anchor",
                    display(&document),
                    display(&linked)
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "the documents link to each other; found only {checked} links");
}

#[test]
fn every_documented_xtask_command_exists() {
    let mut commands = 0;
    for document in documents() {
        let text = std::fs::read_to_string(&document).unwrap();
        for (index, _) in text.match_indices("cargo xtask ") {
            let command: String =
                text[index + "cargo xtask ".len()..].chars().take_while(|c| c.is_ascii_lowercase()).collect();
            if command.is_empty() {
                continue; // a placeholder such as `cargo xtask <command>`
            }
            assert!(
                command == "help" || USAGE.contains(&format!("\n  {command} ")),
                "{} tells the reader to run unknown `cargo xtask {command}`",
                display(&document)
            );
            commands += 1;
        }
    }
    assert!(commands >= 10, "the documents name the xtask commands; found only {commands}");
}

#[test]
fn anchors_follow_github_rules() {
    let text = "# Performance\n## Agent Cards, receipts and the platform key\n```\n# not a heading\n```\n\
                ### 2026-11-30, fifth session: where\n## Performance\n";
    assert_eq!(
        anchors(text),
        ["performance", "agent-cards-receipts-and-the-platform-key", "2026-11-30-fifth-session-where", "performance-1"]
    );
    assert_eq!(
        link_targets("See [a](docs/API.md#errors) and [b](#c).\n```\n[x](not-a-link)\n```"),
        ["docs/API.md#errors", "#c"]
    );
}
