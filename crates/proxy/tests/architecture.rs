//! The crate's rooms stay apart: no two modules import each other (directly or in a loop), and
//! `request/` and `management/` never import each other. Read from the source's `use` paths
//! (`crate::…`, `super::…`), test modules and comments left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`request::forward`, `crate` for `lib.rs`) → the source of that file.
fn modules(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read the source folder")
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        let name = path
            .file_stem()
            .and_then(|n| n.to_str())
            .expect("a file name")
            .to_owned();
        if path.is_dir() {
            let mut inner = prefix.to_vec();
            inner.push(name);
            modules(&path, &inner, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut module = prefix.to_vec();
            if name != "mod" && name != "lib" {
                module.push(name);
            }
            let key = if module.is_empty() {
                "crate".to_owned()
            } else {
                module.join("::")
            };
            out.insert(
                key,
                std::fs::read_to_string(&path).expect("read a source file"),
            );
        }
    }
}

/// The source without comments and without what follows the first `#[cfg(test)]`.
fn code(source: &str) -> String {
    let source = source.split("#[cfg(test)]").next().unwrap_or_default();
    source
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b…` or `super::…` path in `code`, expanded from `use` groups.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let flat: String = code.split_whitespace().collect::<Vec<_>>().join(" ");
    for statement in flat.split(';') {
        let statement = statement.trim();
        if let Some(tree) = statement
            .strip_prefix("pub use ")
            .or_else(|| statement.strip_prefix("pub(crate) use "))
            .or_else(|| statement.strip_prefix("use "))
        {
            expand("", &tree.replace(' ', ""), &mut out);
        }
    }
    // Paths written out in the code itself.
    let bytes = flat.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = flat[from..].find(start) {
            let at = from + i;
            let before = at.checked_sub(1).map(|b| bytes[b]);
            let end = flat[at..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(flat.len(), |e| at + e);
            if !before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':') {
                out.push(flat[at..end].trim_end_matches(':').to_owned());
            }
            from = end.max(at + 1);
        }
    }
    out
}

/// `a::{b, c::{d}}` → `a::b`, `a::c::d`.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    match tree.find('{') {
        None => out.push(format!("{prefix}{tree}")),
        Some(open) => {
            let head = &tree[..open];
            let inner = &tree[open + 1..tree.len().saturating_sub(1)];
            let mut depth = 0;
            let mut part = String::new();
            for c in inner.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&format!("{prefix}{head}"), &part, out);
                        part.clear();
                        continue;
                    }
                    _ => {}
                }
                part.push(c);
            }
            if !part.is_empty() {
                expand(&format!("{prefix}{head}"), &part, out);
            }
        }
    }
}

/// The module a path from `module` names: the longest prefix that is a module of the crate.
fn target(module: &str, path: &str, all: &BTreeMap<String, String>) -> Option<String> {
    let mut base: Vec<&str> = if module == "crate" {
        Vec::new()
    } else {
        module.split("::").collect()
    };
    let mut parts: Vec<&str> = path.split("::").collect();
    match parts.first() {
        Some(&"crate") => {
            base.clear();
            parts.remove(0);
        }
        Some(&"super") => {
            while parts.first() == Some(&"super") {
                base.pop();
                parts.remove(0);
            }
        }
        _ => return None,
    }
    base.extend(parts.iter().filter(|p| **p != "self"));
    (1..=base.len())
        .rev()
        .map(|n| base[..n].join("::"))
        .find(|m| all.contains_key(m))
}

#[test]
fn modules_do_not_import_each_other_and_the_rooms_stay_apart() {
    let mut all = BTreeMap::new();
    modules(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &[],
        &mut all,
    );
    assert!(all.contains_key("request::forward") && all.contains_key("management::state"));
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, source) in &all {
        for path in paths(&code(source)) {
            if let Some(t) = target(module, &path, &all)
                && t != *module
                && !module.starts_with(&format!("{t}::"))
            {
                edges.entry(module.clone()).or_default().insert(t);
            }
        }
    }
    let room = |m: &str| m.split("::").next().unwrap_or_default().to_owned();
    for (from, to) in edges
        .iter()
        .flat_map(|(f, ts)| ts.iter().map(move |t| (f, t)))
    {
        let pair = (room(from), room(to));
        assert!(
            pair != ("request".into(), "management".into())
                && pair != ("management".into(), "request".into()),
            "{from} imports {to}: request/ and management/ must not import each other"
        );
    }
    // A loop of any length: depth-first search from every module.
    fn reaches(
        from: &str,
        goal: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        edges.get(from).into_iter().flatten().any(|next| {
            next == goal || (seen.insert(next.clone()) && reaches(next, goal, edges, seen))
        })
    }
    for module in all.keys() {
        assert!(
            !reaches(module, module, &edges, &mut BTreeSet::new()),
            "{module} imports itself through other modules: {:?}",
            edges.get(module)
        );
    }
}
