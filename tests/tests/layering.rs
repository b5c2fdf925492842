//! The runtime's modules depend on each other one way: no module reaches,
//! through any chain of `use` and paths, back to itself (DESIGN.md,
//! "Modules and their layers").
//!
//! The check reads the sources of `runtime/src` the way a reader does:
//! every `crate::`, `super::` and `self::` path outside comments and test
//! modules, every `use` of a child module, and the re-exports of facade
//! modules (a `pub use` in a `mod.rs` names the child it comes from, so
//! that a path through a facade counts as a dependency on that child, not
//! on the facade). Test modules may use anything and are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// A module: its path (`task::cell`; the crate root is ``) and source.
struct Source {
    /// `a::b` for `a/b.rs` or `a/b/mod.rs`; empty for `lib.rs`.
    path: String,
    /// The source, without comments and without its test module.
    code: String,
}

/// Every module of the crate whose `src` directory is `root`.
fn read_crate(root: &Path) -> Vec<Source> {
    let mut sources = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("the source directory is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root).expect("under the root").with_extension("");
                let mut parts: Vec<String> =
                    relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                if parts.last().is_some_and(|last| last == "mod" || last == "lib") {
                    parts.pop();
                }
                let text = fs::read_to_string(&path).expect("a source file is readable");
                sources.push(Source { path: parts.join("::"), code: strip(&text) });
            }
        }
    }
    sources
}

/// `text` without line comments and without its test module (by the
/// crate's lints, the test module is the last item of a file).
fn strip(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        let line = match line.find("//") {
            // A comment starts a line or follows a space; `//` inside a
            // string (a URL) follows neither.
            Some(at) if at == 0 || line[..at].ends_with(char::is_whitespace) => &line[..at],
            _ => line,
        };
        code.push_str(line);
        code.push('\n');
    }
    match code.find("#[cfg(test)]\nmod tests") {
        Some(at) => code[..at].to_owned(),
        None => code,
    }
}

/// The `use` trees of `code`, expanded into full paths, each with whether
/// it is a re-export (`pub use`, `pub(crate) use`) and the name it binds.
fn use_paths(code: &str) -> Vec<(bool, String, String)> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = find_word(rest, "use") {
        let before = rest[..at].trim_end();
        let public = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
        let after = &rest[at + 3..];
        let Some(end) = after.find(';') else { break };
        expand("", after[..end].trim(), &mut |path, name| found.push((public, path, name)));
        rest = &after[end..];
    }
    found
}

/// Position of `word` as a whole word in `text` that starts a statement
/// (after `;`, a brace, an attribute or a visibility, not inside a
/// sentence of a string).
fn find_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find(word) {
        let at = from + at;
        let before = text[..at].trim_end();
        let after = text[at + word.len()..].chars().next();
        let starts_statement = before.is_empty()
            || before.ends_with([';', '{', '}', ']'])
            || before.ends_with("pub")
            || before.ends_with("pub(crate)")
            || before.ends_with("pub(super)");
        if starts_statement
            && text[..at].ends_with(char::is_whitespace) | before.is_empty()
            && after.is_some_and(char::is_whitespace)
        {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// Calls `each(path, bound_name)` for every path of the use tree `tree`
/// under `prefix`.
fn expand(prefix: &str, tree: &str, each: &mut dyn FnMut(String, String)) {
    let tree = tree.trim();
    if tree.is_empty() {
        return;
    }
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim().trim_end_matches("::");
        let close = tree.rfind('}').filter(|&close| close > open).unwrap_or(tree.len());
        let inner = &tree[open + 1..close];
        let prefix = join(prefix, head);
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&prefix, &inner[start..i], each);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&prefix, &inner[start..], each);
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((path, alias)) => (path.trim(), Some(alias.trim())),
        None => (tree, None),
    };
    let full = join(prefix, path);
    let last = full.rsplit("::").next().unwrap_or_default();
    let name =
        alias.unwrap_or(if last == "self" { full.rsplit("::").nth(1).unwrap_or_default() } else { last });
    each(full.trim_end_matches("::self").to_owned(), name.to_owned());
}

fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_owned(),
        (_, true) => prefix.to_owned(),
        _ => format!("{prefix}::{path}"),
    }
}

/// The crate's modules and the dependencies between them.
struct Graph {
    /// Module → the modules it depends on.
    edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    fn of(sources: &[Source]) -> Graph {
        let modules: BTreeSet<String> = sources.iter().map(|s| s.path.clone()).collect();
        // What each module re-exports: bound name → full path it comes from.
        let mut exports: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for source in sources {
            for (public, path, name) in use_paths(&source.code) {
                if public {
                    let full = absolute(&source.path, &path, &modules);
                    exports.entry(source.path.clone()).or_default().insert(name, full);
                }
            }
        }
        let resolver = Resolver { modules: &modules, exports: &exports };
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for source in sources {
            let mut targets = BTreeSet::new();
            // `use` statements other than re-exports (a facade's `pub use`
            // is not its own dependency: paths through it resolve past it).
            for (public, path, _) in use_paths(&source.code) {
                if !public {
                    targets.insert(resolver.resolve(&absolute(&source.path, &path, &modules)));
                }
            }
            // Paths in code: `crate::a::b`, `super::x`, `self::x`,
            // `child::x` for a child module of this one, and `Name::x`
            // for a name this module imported.
            let imports: BTreeMap<String, String> = use_paths(&source.code)
                .into_iter()
                .map(|(_, path, name)| (name, absolute(&source.path, &path, &modules)))
                .collect();
            let code = without_uses(&source.code);
            for path in paths_in(&code) {
                let head = path.split("::").next().unwrap_or_default();
                let full = if ["crate", "self", "super"].contains(&head)
                    || modules.contains(&join(&source.path, head))
                {
                    absolute(&source.path, &path, &modules)
                } else if let Some(imported) = imports.get(head) {
                    format!("{imported}{}", &path[head.len()..])
                } else {
                    continue; // a local item, or another crate's
                };
                if full.starts_with("crate::") {
                    targets.insert(resolver.resolve(&full));
                }
            }
            targets.remove(&source.path);
            targets.remove("");
            // A module declaring its children is not a dependency on them.
            edges.insert(source.path.clone(), targets);
        }
        Graph { edges }
    }

    /// The groups of modules that depend on each other in a cycle.
    fn cycles(&self) -> Vec<Vec<String>> {
        // Tarjan's strongly connected components.
        struct State<'a> {
            graph: &'a Graph,
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            on_stack: BTreeSet<&'a str>,
            found: Vec<Vec<String>>,
        }
        fn visit<'a>(state: &mut State<'a>, v: &'a str) {
            let n = state.index.len();
            state.index.insert(v, n);
            state.low.insert(v, n);
            state.stack.push(v);
            state.on_stack.insert(v);
            for w in state.graph.edges.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !state.graph.edges.contains_key(w) {
                    continue;
                }
                if !state.index.contains_key(w) {
                    visit(state, w);
                    let low = state.low[v].min(state.low[w]);
                    state.low.insert(v, low);
                } else if state.on_stack.contains(w) {
                    let low = state.low[v].min(state.index[w]);
                    state.low.insert(v, low);
                }
            }
            if state.low[v] == state.index[v] {
                let mut group = Vec::new();
                while let Some(w) = state.stack.pop() {
                    state.on_stack.remove(w);
                    group.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    state.found.push(group);
                }
            }
        }
        let mut state = State {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            found: Vec::new(),
        };
        for v in self.edges.keys() {
            if !state.index.contains_key(v.as_str()) {
                visit(&mut state, v);
            }
        }
        state.found
    }
}

/// Resolves paths to the module that defines what they name.
struct Resolver<'a> {
    modules: &'a BTreeSet<String>,
    exports: &'a BTreeMap<String, BTreeMap<String, String>>,
}

impl Resolver<'_> {
    /// The module that defines what `path` (absolute, `crate::...`)
    /// names, following re-exports.
    fn resolve(&self, path: &str) -> String {
        let mut path = path.to_owned();
        for _ in 0..16 {
            let module = first_module(&path, self.modules);
            let rest = path.trim_start_matches("crate").trim_start_matches("::");
            let rest = rest.strip_prefix(module.as_str()).unwrap_or(rest).trim_start_matches("::");
            let Some(item) = rest.split("::").next().filter(|item| !item.is_empty()) else { return module };
            match self.exports.get(&module).and_then(|names| names.get(item)) {
                Some(source) if *source != path => {
                    let tail = rest.strip_prefix(item).unwrap_or_default();
                    path = format!("{source}{tail}");
                }
                _ => return module,
            }
        }
        path
    }
}

/// The longest module that is a prefix of `path` (absolute).
fn first_module(path: &str, modules: &BTreeSet<String>) -> String {
    let parts: Vec<&str> = path.trim_start_matches("crate::").split("::").collect();
    (0..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|m| modules.contains(m)).unwrap_or_default()
}

/// `path`, written in module `at`, as an absolute `crate::...` path.
fn absolute(at: &str, path: &str, modules: &BTreeSet<String>) -> String {
    let mut base: Vec<&str> = if at.is_empty() { Vec::new() } else { at.split("::").collect() };
    let mut rest = path;
    if let Some(tail) = rest.strip_prefix("crate::") {
        return format!("crate::{tail}");
    }
    if let Some(tail) = rest.strip_prefix("self::") {
        rest = tail;
    } else {
        let mut climbed = false;
        while let Some(tail) = rest.strip_prefix("super::") {
            base.pop();
            rest = tail;
            climbed = true;
        }
        if !climbed {
            // A relative path: a child of `at`, or something else (std,
            // another crate) that names no module of this crate.
            let head = rest.split("::").next().unwrap_or_default();
            if !modules.contains(&join(at, head)) {
                return rest.to_owned();
            }
        }
    }
    let base = base.join("::");
    format!("crate::{}", join(&base, rest))
}

/// `code` without its `use` statements.
fn without_uses(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = find_word(rest, "use") {
        out.push_str(&rest[..at]);
        match rest[at..].find(';') {
            Some(end) => rest = &rest[at + end + 1..],
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}

/// Every path of two or more segments in `code` (`a::b::c`).
fn paths_in(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        let starts = ident(bytes[i]) && (i == 0 || !(ident(bytes[i - 1]) || bytes[i - 1] == b':'));
        if !starts {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        loop {
            while end < bytes.len() && ident(bytes[end]) {
                end += 1;
            }
            if code[end..].starts_with("::") && bytes.get(end + 2).is_some_and(|&b| ident(b)) {
                end += 2;
            } else {
                break;
            }
        }
        let path = &code[start..end];
        if path.contains("::") {
            found.push(path.to_owned());
        }
        i = end.max(i + 1);
    }
    found
}

fn runtime_graph() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/src");
    let sources = read_crate(&root);
    assert!(sources.len() > 50, "found the runtime's sources ({} files)", sources.len());
    Graph::of(&sources)
}

#[test]
fn the_runtimes_modules_depend_on_each_other_one_way() {
    let graph = runtime_graph();
    let cycles = graph.cycles();
    let listed: Vec<String> = cycles
        .iter()
        .map(|group| {
            let detail: Vec<String> = group
                .iter()
                .map(|m| {
                    let inside: Vec<&String> = graph.edges[m].iter().filter(|t| group.contains(t)).collect();
                    format!("{m} -> {inside:?}")
                })
                .collect();
            detail.join("\n    ")
        })
        .collect();
    assert!(
        cycles.is_empty(),
        "modules that depend on each other in a cycle:\n    {}",
        listed.join("\n\n    ")
    );
}

#[test]
fn the_leaves_depend_on_no_other_module() {
    let graph = runtime_graph();
    for leaf in [
        "task::state",
        "task::id",
        "timer",
        "epoll",
        "run_queue",
        "sync::wait::touch",
        "stack::protection",
        "dump::backtrace",
    ] {
        let deps = graph.edges.get(leaf).unwrap_or_else(|| panic!("module {leaf} exists"));
        assert!(deps.is_empty(), "{leaf} is a leaf, yet depends on {deps:?}");
    }
}

#[test]
fn the_layers_below_the_loop_never_reach_up_to_it() {
    let graph = runtime_graph();
    // Everything the parking rules stand on, and the rules themselves.
    for module in ["park", "context", "inbox", "task::cell", "sync::wait::party", "sync::wait::waiter"] {
        let deps = &graph.edges[module];
        for above in ["scheduler", "runtime", "scope", "timeout", "task::spawn"] {
            assert!(!deps.contains(above), "{module} depends on {above}, which stands above it");
        }
    }
}

/// The checker itself: it finds a cycle that exists, sees through a
/// facade's re-export, and ignores comments and test modules.
#[test]
fn the_checker_finds_a_cycle_and_sees_through_facades() {
    let source = |path: &str, text: &str| Source { path: path.to_owned(), code: strip(text) };
    let cyclic = [
        source("a", "use crate::b::B;\npub struct A;\n"),
        source("b", "pub struct B(crate::c::C);\n"),
        source("c", "pub struct C;\nfn f() -> super::a::A { todo!() }\n"),
    ];
    assert_eq!(Graph::of(&cyclic).cycles(), [vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]]);
    let facade = [
        source("t", "mod x;\nmod y;\npub use x::X;\npub use y::Y;\n"),
        source("t::x", "pub struct X;\n"),
        source("t::y", "use super::X;\npub struct Y(X);\n// use crate::t::y::Y; a comment\n"),
        source("t::z", "pub struct Z;\n#[cfg(test)]\nmod tests {\n    use crate::t::y::Y;\n}\n"),
    ];
    let graph = Graph::of(&facade);
    assert!(graph.cycles().is_empty());
    assert_eq!(graph.edges["t::y"], BTreeSet::from(["t::x".to_owned()]), "through the facade to its child");
    assert!(graph.edges["t::z"].is_empty(), "test modules do not count");
    let child_use =
        [source("p", "mod q;\nuse q::Q;\npub struct P;\n"), source("p::q", "pub struct Q(super::P);\n")];
    assert_eq!(Graph::of(&child_use).cycles().len(), 1, "a parent using its child's item, and back");
}
