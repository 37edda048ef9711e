//! The library's layers, checked: no module imports from a layer above its own
//! (`src/lib.rs` lists them). Reads the sources and looks at every `crate::`
//! path outside comments and test modules.

use std::path::{Path, PathBuf};

/// Bottom to top.
const LAYERS: [&str; 5] = ["platform", "context", "core", "monitor", "facade"];

/// The layer of a source file, by its path under `src/`.
fn layer_of_file(rel: &Path) -> &'static str {
    let first = rel.components().next().and_then(|c| c.as_os_str().to_str()).unwrap_or("");
    let stem = first.trim_end_matches(".rs");
    layer_of_module(stem)
}

/// The layer of a top-level module (or of an item of the crate root).
fn layer_of_module(m: &str) -> &'static str {
    match m {
        "platform" => "platform",
        "context" => "context",
        "current" | "pool" | "pwq" | "registry" | "work" | "workqueue" => "core",
        "monitor" => "monitor",
        // lib.rs, the facade modules and anything re-exported at the root
        // (`crate::Work`, `crate::blocking`, ...).
        _ => "facade",
    }
}

fn rank(layer: &str) -> usize {
    LAYERS.iter().position(|l| *l == layer).expect("a known layer")
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src is readable") {
        let p = e.expect("a directory entry").path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file that counts: without comments and without its test
/// module (by convention the last item of a file, behind `#[cfg(test)]` or
/// `#[cfg(all(test, ...))]`); a `tests.rs` file counts not at all.
fn production_code(path: &Path, text: &str) -> Vec<(usize, String)> {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") || t.starts_with("#[cfg(all(test") {
            // A `mod tests;` declaration is one line; an inline module ends the file.
            if text.lines().nth(i + 1).is_some_and(|next| next.trim_start().starts_with("mod tests;")) {
                continue;
            }
            break;
        }
        let code = match t.find("//") {
            Some(0) => continue,
            Some(at) => &t[..at],
            None => t,
        };
        out.push((i + 1, code.to_string()));
    }
    out
}

/// Every top-level module named by a `crate::` path in `code`, with `use
/// crate::{a, b::c}` groups expanded one level.
fn referenced_modules(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        // `$crate::` in a macro is the crate root as seen by the caller.
        let before = &rest[..at];
        rest = &rest[at + "crate::".len()..];
        if before.ends_with('$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String =
                    part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
            continue;
        }
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    assert!(files.len() > 20, "found only {} source files under {}", files.len(), src.display());
    let mut upward = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&src).expect("under src");
        let mine = layer_of_file(rel);
        let text = std::fs::read_to_string(path).expect("a readable source file");
        for (line, code) in production_code(path, &text) {
            for m in referenced_modules(&code) {
                let theirs = layer_of_module(&m);
                if rank(theirs) > rank(mine) {
                    upward.push(format!("{}:{line}: {mine} -> {theirs} (crate::{m})", rel.display()));
                }
            }
        }
    }
    assert!(upward.is_empty(), "imports that run upward:\n{}", upward.join("\n"));
}

#[test]
fn the_checker_sees_an_upward_import() {
    // A core file naming the facade, a platform file naming the core: both found.
    let code = production_code(
        Path::new("pool/x.rs"),
        "use crate::{hooks, pool::cm};\nfn f() { crate::global::registry(); }\n",
    );
    let mods: Vec<String> = code.iter().flat_map(|(_, c)| referenced_modules(c)).collect();
    assert_eq!(mods, ["hooks", "pool", "global"]);
    assert_eq!(layer_of_module("hooks"), "facade");
    assert!(rank(layer_of_module("global")) > rank(layer_of_file(Path::new("pool/x.rs"))));
    assert!(rank(layer_of_module("pool")) > rank(layer_of_file(Path::new("platform/sys/mod.rs"))));
    // Comments, `$crate` and test modules do not count.
    let code = production_code(
        Path::new("pool/x.rs"),
        "// crate::hooks\nlet x = $crate::y;\n#[cfg(test)]\nmod tests { use crate::hooks; }\n",
    );
    assert!(code.iter().all(|(_, c)| referenced_modules(c).is_empty()), "{code:?}");
}
