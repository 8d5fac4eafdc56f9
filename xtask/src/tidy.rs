//! Checks of the workspace's own sources that run as tests, as
//! rust-analyzer's tidy tests do: `cargo test -p xtask` fails when one breaks.
//!
//! The import-circle check. Layers only look down, so no two modules of
//! `api`, `webhook-worker` or `xtask` may use each other, directly or through
//! others. Every reference to another module of the same crate counts:
//! `use crate::…` and `use super::…` (grouped or not), paths in code such as
//! `crate::jobs::find(…)`, paths in macro calls, test modules included. Each
//! resolves to the deepest module it names. A reference from module M to
//! module N is an edge between the two children of their lowest common
//! ancestor that contain them: `jobs::store` using `receipts::model` makes
//! `jobs -> receipts` among the root's children, `http::error` using
//! `http::auth` makes `error -> auth` among `http`'s. Using one's own
//! ancestor or descendant makes no edge. Under each parent, the edges must
//! form no circle.
//!
//! The sources are parsed with `syn` (the proc macros of the workspace build
//! it already), so comments and string literals never count. Not followed: a
//! path through a module alias (`use crate::jobs;` counts, a later
//! `jobs::find()` is not looked at again) and `#[path]` attributes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::visit::{self, Visit};

/// The crates whose modules must not import in a circle (their folders).
const CRATES: [&str; 3] = ["api", "webhook-worker", "xtask"];

/// A module's path below its crate root (`["http", "auth"]`); empty for the root.
type ModulePath = Vec<String>;

/// One source file of a crate: its path as reports show it, its module and its text.
struct Source {
    path: String,
    module: ModulePath,
    text: String,
}

/// The edges between sibling modules, by parent: (from, to) → every place
/// that makes the edge (`file:line uses path`), in file and line order.
type Edges = BTreeMap<ModulePath, BTreeMap<(String, String), Vec<String>>>;

#[test]
fn no_import_circles() {
    let root = crate::project_root();
    let (mut clean, mut report) = (true, Vec::new());
    for name in CRATES {
        let circles = circles(name, &edges(&crate_sources(&root, name)).unwrap());
        clean &= circles.is_empty();
        report.push(if circles.is_empty() { format!("{name}: no import circle") } else { circles.join("\n") });
    }
    assert!(clean, "modules import each other in a circle; layers only look down:\n{}", report.join("\n"));
}

/// Every `.rs` file under `<crate>/src`, in path order.
fn crate_sources(root: &Path, crate_dir: &str) -> Vec<Source> {
    let src = root.join(crate_dir).join("src");
    let mut sources = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                let relative = path.strip_prefix(&src).unwrap();
                sources.push(Source {
                    path: Path::new(crate_dir).join("src").join(relative).display().to_string(),
                    module: module_of(relative),
                    text: std::fs::read_to_string(&path).unwrap(),
                });
            }
        }
    }
    sources.sort_by(|a, b| a.path.cmp(&b.path));
    sources
}

/// `a/b.rs` and `a/b/mod.rs` are `a::b`; `lib.rs` and `main.rs` the root.
fn module_of(relative: &Path) -> ModulePath {
    let mut module: ModulePath =
        relative.with_extension("").iter().map(|part| part.to_string_lossy().into_owned()).collect();
    let file = module.last().map(String::as_str);
    if file == Some("mod") || (module.len() == 1 && matches!(file, Some("lib" | "main"))) {
        module.pop();
    }
    module
}

/// The edges that the references of `sources` to each other make.
fn edges(sources: &[Source]) -> Result<Edges, String> {
    let mut modules: BTreeSet<ModulePath> = sources.iter().map(|source| source.module.clone()).collect();
    let mut references = Vec::new();
    for source in sources {
        let file = syn::parse_file(&source.text).map_err(|error| format!("{}: {error}", source.path))?;
        let mut collector = Collector { module: source.module.clone(), inline_modules: Vec::new(), found: Vec::new() };
        collector.visit_file(&file);
        modules.extend(collector.inline_modules);
        references.extend(collector.found.into_iter().map(|reference| (&source.path, reference)));
    }
    let mut edges = Edges::new();
    for (file, Reference { from, target, line, written }) in references {
        let depth = (0..=target.len()).rev().find(|&depth| modules.contains(&target[..depth])).unwrap_or(0);
        let to = &target[..depth];
        let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
        if common == from.len() || common == to.len() {
            continue; // its own ancestor or descendant
        }
        let pair = (from[common].clone(), to[common].clone());
        let places = edges.entry(from[..common].to_vec()).or_default().entry(pair).or_default();
        places.push(format!("{file}:{line} uses {written}"));
    }
    Ok(edges)
}

/// A path to a module of the crate, as found in a source.
struct Reference {
    from: ModulePath,
    /// The module path and maybe an item, absolute: `["jobs", "store", "find"]`.
    target: Vec<String>,
    line: usize,
    written: String,
}

/// Walks one file's syntax tree, collecting its references and inline modules.
struct Collector {
    /// The module of the code being walked (the file's, then inline `mod`s).
    module: ModulePath,
    inline_modules: Vec<ModulePath>,
    found: Vec<Reference>,
}

impl Collector {
    /// Records `words` (`crate::a::b`, `super::c`, `self::d`) if it is a path
    /// within the crate; other paths (`std::…`, a child's name) are left out.
    fn refer(&mut self, words: Vec<String>, span: Span) {
        let mut target = match words[0].as_str() {
            "crate" => ModulePath::new(),
            "self" | "super" => self.module.clone(),
            _ => return,
        };
        let mut rest = words.iter().skip(usize::from(words[0] != "super")).peekable();
        while rest.next_if(|word| *word == "super").is_some() {
            target.pop();
        }
        target.extend(rest.cloned());
        let (from, line, written) = (self.module.clone(), span.start().line, words.join("::"));
        self.found.push(Reference { from, target, line, written });
    }

    /// Each leaf of a `use` tree as a path of its own (`*` stands for a glob).
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        let (leaf, span) = match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(prefix, &path.tree);
                prefix.pop();
                return;
            }
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.use_tree(prefix, tree);
                }
                return;
            }
            syn::UseTree::Name(name) => (name.ident.to_string(), name.ident.span()),
            syn::UseTree::Rename(rename) => (rename.ident.to_string(), rename.ident.span()),
            syn::UseTree::Glob(glob) => ("*".to_owned(), glob.star_token.spans[0]),
        };
        let mut words = prefix.clone();
        if leaf != "self" {
            words.push(leaf);
        }
        if !words.is_empty() {
            self.refer(words, span);
        }
    }

    /// Paths in a macro call's tokens (`$crate::a` too), which `syn` does not parse.
    fn macro_paths(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        for (start, token) in tokens.iter().enumerate() {
            match token {
                TokenTree::Group(group) => self.macro_paths(group.stream()),
                TokenTree::Ident(first) if matches!(first.to_string().as_str(), "crate" | "self" | "super") => {
                    let mut words = vec![first.to_string()];
                    let mut next = start + 1;
                    while let [TokenTree::Punct(colon), TokenTree::Punct(again), TokenTree::Ident(word), ..] =
                        &tokens[next..]
                        && colon.as_char() == ':'
                        && again.as_char() == ':'
                    {
                        words.push(word.to_string());
                        next += 3;
                    }
                    if words.len() > 1 {
                        self.refer(words, first.span());
                    }
                }
                _ => {}
            }
        }
    }
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if item.content.is_none() {
            return; // `mod a;`: its file is a source of its own
        }
        self.module.push(item.ident.to_string());
        self.inline_modules.push(self.module.clone());
        visit::visit_item_mod(self, item);
        self.module.pop();
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() && path.segments.len() > 1 {
            let words = path.segments.iter().map(|segment| segment.ident.to_string()).collect();
            self.refer(words, path.segments[0].ident.span());
        }
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.macro_paths(mac.tokens.clone());
        visit::visit_macro(self, mac);
    }
}

/// One message per circle (a strongly connected set of siblings): the circle,
/// then each edge in it with the first place that makes it.
fn circles(crate_name: &str, edges: &Edges) -> Vec<String> {
    let mut messages = Vec::new();
    for (parent, siblings) in edges {
        let mut successors: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (from, to) in siblings.keys() {
            successors.entry(from).or_default().insert(to);
        }
        let reachable = |start: &str| {
            let (mut seen, mut pending) = (BTreeSet::new(), vec![start]);
            while let Some(module) = pending.pop() {
                for &next in successors.get(module).into_iter().flatten() {
                    if seen.insert(next) {
                        pending.push(next);
                    }
                }
            }
            seen
        };
        let mut placed: BTreeSet<&str> = BTreeSet::new();
        for &module in successors.keys() {
            if placed.contains(module) {
                continue;
            }
            let circle: BTreeSet<&str> =
                reachable(module).into_iter().filter(|&other| reachable(other).contains(module)).collect();
            if circle.is_empty() {
                continue;
            }
            placed.extend(&circle);
            let within = if parent.is_empty() { String::new() } else { format!(" in {}", parent.join("::")) };
            let in_circle =
                |edge: &&(String, String)| circle.contains(edge.0.as_str()) && circle.contains(edge.1.as_str());
            let mut inner: Vec<&(String, String)> = siblings.keys().filter(in_circle).collect();
            let name = if inner.len() == circle.len() {
                // Each member uses exactly one other: walk the ring from `module`.
                let mut ring = vec![module];
                while ring.len() <= circle.len() {
                    let last = ring[ring.len() - 1];
                    ring.push(inner.iter().find(|(from, _)| from == last).unwrap().1.as_str());
                }
                inner.sort_by_key(|(from, _)| ring.iter().position(|member| member == from));
                ring.join(" -> ")
            } else {
                format!("among {}", circle.into_iter().collect::<Vec<_>>().join(", "))
            };
            let mut message = format!("{crate_name}: import circle{within}: {name}");
            for edge @ (from, to) in inner {
                let places = &siblings[edge];
                let more = if places.len() > 1 { format!(" (and {} more)", places.len() - 1) } else { String::new() };
                message += &format!("\n    {from} -> {to}: {}{more}", places[0]);
            }
            messages.push(message);
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The edges of in-memory sources, named by their paths under `src/`.
    fn edges_of(files: &[(&str, &str)]) -> Edges {
        let sources: Vec<Source> = files
            .iter()
            .map(|(path, text)| Source {
                path: format!("src/{path}"),
                module: module_of(Path::new(path)),
                text: text.to_string(),
            })
            .collect();
        edges(&sources).unwrap()
    }

    /// Under the root: each edge with its places.
    fn root_edges(files: &[(&str, &str)]) -> Vec<(String, String, Vec<String>)> {
        let edges = edges_of(files);
        assert!(edges.keys().all(Vec::is_empty), "edges below the root: {edges:?}");
        let root = edges.get(&Vec::new()).cloned().unwrap_or_default();
        root.into_iter().map(|((from, to), places)| (from, to, places)).collect()
    }

    fn edge(from: &str, to: &str, places: &[&str]) -> (String, String, Vec<String>) {
        (from.to_owned(), to.to_owned(), places.iter().map(|place| place.to_string()).collect())
    }

    #[test]
    fn files_map_to_modules() {
        for (file, module) in [
            ("lib.rs", ""),
            ("main.rs", ""),
            ("a.rs", "a"),
            ("a/b.rs", "a::b"),
            ("a/b/mod.rs", "a::b"),
            ("a/lib.rs", "a::lib"),
        ] {
            assert_eq!(module_of(Path::new(file)).join("::"), module, "{file}");
        }
    }

    #[test]
    fn grouped_nested_and_multi_line_uses_count_each_leaf() {
        let a = "use crate::{\n    b::X,\n    c::{self, e::{Y, Z as W}},\n    d::*,\n};\npub use crate::f;\n";
        let files = [("a.rs", a), ("b.rs", ""), ("c/mod.rs", ""), ("c/e.rs", ""), ("d.rs", ""), ("f.rs", "")];
        assert_eq!(
            root_edges(&files),
            [
                edge("a", "b", &["src/a.rs:2 uses crate::b::X"]),
                edge(
                    "a",
                    "c",
                    &["src/a.rs:3 uses crate::c", "src/a.rs:3 uses crate::c::e::Y", "src/a.rs:3 uses crate::c::e::Z"]
                ),
                edge("a", "d", &["src/a.rs:4 uses crate::d::*"]),
                edge("a", "f", &["src/a.rs:6 uses crate::f"]),
            ]
        );
    }

    #[test]
    fn super_resolves_from_the_file_s_module() {
        let y = "use super::z::W;\nfn f() { super::super::q::run(); }\n";
        let edges = edges_of(&[("x/mod.rs", ""), ("x/y.rs", y), ("x/z.rs", ""), ("q.rs", "")]);
        let places = |parent: &[&str], from: &str, to: &str| {
            let parent: ModulePath = parent.iter().map(|part| part.to_string()).collect();
            edges[&parent][&(from.to_owned(), to.to_owned())].clone()
        };
        assert_eq!(places(&["x"], "y", "z"), ["src/x/y.rs:1 uses super::z::W"]);
        assert_eq!(places(&[], "x", "q"), ["src/x/y.rs:2 uses super::super::q::run"]);
        assert_eq!(edges.values().map(BTreeMap::len).sum::<usize>(), 2);
    }

    #[test]
    fn paths_in_code_and_macros_count_but_comments_and_strings_do_not() {
        let a = r##"
// crate::c::x in a comment
/// crate::c::x in a doc comment, [`crate::c`]
fn f() -> &'static str {
    crate::b::run();
    let _ = format!("{} crate::d::y", crate::e::Z);
    r#"crate::d::z"#
}
macro_rules! go { () => { $crate::g::start() } }
"##;
        let files = [("a.rs", a), ("b.rs", ""), ("c.rs", ""), ("d.rs", ""), ("e.rs", ""), ("g.rs", "")];
        assert_eq!(
            root_edges(&files),
            [
                edge("a", "b", &["src/a.rs:5 uses crate::b::run"]),
                edge("a", "e", &["src/a.rs:6 uses crate::e::Z"]),
                edge("a", "g", &["src/a.rs:9 uses crate::g::start"]),
            ]
        );
    }

    #[test]
    fn ancestors_and_descendants_make_no_edge() {
        let a = "mod b;\nuse self::b::X;\nuse crate::a::b::Y;\npub struct Z;";
        let b = "use super::Z;\nuse crate::a::Z as W;\nfn f() { crate::run(); }";
        let c = "pub fn run() {}\n#[cfg(test)]\nmod tests {\n    use super::*;\n    use crate::c::run;\n}";
        assert_eq!(edges_of(&[("lib.rs", "mod a; mod c;"), ("a/mod.rs", a), ("a/b.rs", b), ("c.rs", c)]), Edges::new());
    }

    #[test]
    fn test_modules_count() {
        let a = "#[cfg(test)]\nmod tests {\n    use crate::b::helper;\n}";
        assert_eq!(root_edges(&[("a.rs", a), ("b.rs", "")]), [edge("a", "b", &["src/a.rs:3 uses crate::b::helper"])]);
    }

    #[test]
    fn a_three_module_ring_is_named_with_one_place_per_edge() {
        let files = [
            ("a.rs", "use crate::b::B;\nuse crate::b::C;"),
            ("b.rs", "\nuse crate::c::C;"),
            ("c.rs", "\n\nuse crate::a::A;"),
            ("d.rs", "use crate::a::A;"),
        ];
        let expected = "demo: import circle: a -> b -> c -> a
    a -> b: src/a.rs:1 uses crate::b::B (and 1 more)
    b -> c: src/b.rs:2 uses crate::c::C
    c -> a: src/c.rs:3 uses crate::a::A";
        assert_eq!(circles("demo", &edges_of(&files)), [expected]);
    }

    #[test]
    fn circles_among_children_name_their_parent_and_every_edge() {
        let files = [
            ("http/mod.rs", "mod auth; mod error; mod limit;"),
            ("http/error.rs", "use super::auth::Failure;\nuse super::limit::Decision;"),
            ("http/auth.rs", "use crate::http::error::ApiError;"),
            ("http/limit.rs", "use crate::http::error::ApiError;"),
        ];
        let expected = "demo: import circle in http: among auth, error, limit
    auth -> error: src/http/auth.rs:1 uses crate::http::error::ApiError
    error -> auth: src/http/error.rs:1 uses super::auth::Failure
    error -> limit: src/http/error.rs:2 uses super::limit::Decision
    limit -> error: src/http/limit.rs:1 uses crate::http::error::ApiError";
        assert_eq!(circles("demo", &edges_of(&files)), [expected]);
    }

    #[test]
    fn layers_that_only_look_down_have_no_circle() {
        let files = [("a.rs", "use crate::b::B;"), ("b.rs", "use crate::c::C;"), ("c.rs", "")];
        assert!(circles("demo", &edges_of(&files)).is_empty());
    }
}
