//! The layers of `src/lib.rs`, enforced (issue 13).
//!
//! `src/lib.rs` documents the crate's layers as a Markdown table in its `//!` docs: one row per
//! layer (top row = highest layer), the modules of a layer as backticked names in the second
//! column. This test reads that table and every `.rs` file under `src/` (except `main.rs`, the
//! binary) and fails, naming `file:line`, the importing and imported module and their layers, on:
//!
//! - a top-level module declared in lib.rs that the table leaves out, or a table entry lib.rs does
//!   not declare (or that sits in two layers);
//! - a reference to a module of a higher layer: `use crate::x`, `crate::{x, y::z}` groups, inline
//!   paths such as `crate::respond::encode(..)` anywhere in code, and `super::` paths that climb
//!   out of the top-level module;
//! - any cycle between top-level modules (same-layer imports are allowed only while acyclic);
//! - `config` referring to any other module of the crate.
//!
//! Comments and string literals are blanked before scanning; code under `#[cfg(test)]` (an inline
//! `mod tests { .. }`, a test-only fn, or a file declared as `#[cfg(test)] mod tests;`) is skipped,
//! since tests may reach anywhere. Why: the layers only hold if a build breaks when one is crossed;
//! a table that nothing reads drifts. The `checker_*` tests at the end feed the checker an
//! in-memory fake crate with a deliberate upward import and a deliberate cycle, so this file is
//! known to be able to fail.
//!
//! std only: no walkdir, no syn; a small lexer below is enough for the Rust this crate is written
//! in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// The layer table
// ---------------------------------------------------------------------------------------------

/// The layers, top (highest) first: `(layer name, modules)`.
#[derive(Debug)]
struct Layers {
    rows: Vec<(String, Vec<String>)>,
}

impl Layers {
    /// Index of the layer of `module`, 0 = highest.
    fn rank(&self, module: &str) -> Option<usize> {
        self.rows
            .iter()
            .position(|(_, mods)| mods.iter().any(|m| m == module))
    }

    fn name(&self, rank: usize) -> &str {
        &self.rows[rank].0
    }

    fn describe(&self, module: &str) -> String {
        match self.rank(module) {
            Some(r) => format!(
                "`{module}` (layer {}, {} from the top)",
                self.name(r),
                ordinal(r + 1)
            ),
            None => format!("`{module}` (in no layer)"),
        }
    }
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Reads the `| layer | modules | owns |` table out of lib.rs's `//!` docs.
fn parse_layer_table(lib_rs: &str) -> Result<Layers, String> {
    let mut rows = Vec::new();
    let mut seen_header = false;
    for line in lib_rs.lines() {
        let Some(doc) = line.trim_start().strip_prefix("//!") else {
            continue;
        };
        let doc = doc.trim();
        if !doc.starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = doc.trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() < 2 {
            continue;
        }
        if cells[0].eq_ignore_ascii_case("layer") && cells[1].eq_ignore_ascii_case("modules") {
            seen_header = true;
            continue;
        }
        if !seen_header
            || cells
                .iter()
                .all(|c| c.chars().all(|ch| matches!(ch, '-' | ':')))
        {
            continue;
        }
        let modules: Vec<String> = cells[1]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect();
        rows.push((cells[0].to_string(), modules));
    }
    if rows.is_empty() {
        return Err(
            "src/lib.rs: no `| layer | modules | owns |` table found in the `//!` docs".to_string(),
        );
    }
    Ok(Layers { rows })
}

// ---------------------------------------------------------------------------------------------
// Lexing: blank comments and literals, then tokens with line numbers
// ---------------------------------------------------------------------------------------------

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The source with every comment and every string/char literal replaced by spaces (newlines
/// kept, so line numbers stay right).
fn blank_comments_and_literals(src: &str) -> Vec<char> {
    let s: Vec<char> = src.chars().collect();
    let mut out: Vec<char> = Vec::with_capacity(s.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let next = s.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < s.len() && s[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0usize;
            while i < s.len() {
                if s[i] == '/' && s.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.extend([' ', ' ']);
                    i += 2;
                } else if s[i] == '*' && s.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.extend([' ', ' ']);
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(s[i]));
                    i += 1;
                }
            }
        } else if c == '"' {
            // Raw string? Look back over `#`s to an `r` that starts a token (`r`, `br`, `cr`).
            let mut hashes = 0;
            while hashes < out.len() && out[out.len() - 1 - hashes] == '#' {
                hashes += 1;
            }
            let r_at = out.len().checked_sub(hashes + 1);
            let is_raw = r_at.is_some_and(|r| {
                out[r] == 'r'
                    && match r.checked_sub(1).map(|p| out[p]) {
                        None => true,
                        Some(p) if p == 'b' || p == 'c' => r < 2 || !is_ident_char(out[r - 2]),
                        Some(p) => !is_ident_char(p),
                    }
            });
            if is_raw {
                let len = out.len();
                for o in &mut out[len - hashes..] {
                    *o = ' ';
                }
                out.push(' ');
                i += 1;
                while i < s.len() {
                    if s[i] == '"' && (0..hashes).all(|k| s.get(i + 1 + k) == Some(&'#')) {
                        out.extend(std::iter::repeat_n(' ', hashes + 1));
                        i += hashes + 1;
                        break;
                    }
                    out.push(blank(s[i]));
                    i += 1;
                }
            } else {
                out.push(' ');
                i += 1;
                while i < s.len() {
                    if s[i] == '\\' {
                        out.push(' ');
                        if let Some(&e) = s.get(i + 1) {
                            out.push(blank(e));
                        }
                        i += 2;
                    } else if s[i] == '"' {
                        out.push(' ');
                        i += 1;
                        break;
                    } else {
                        out.push(blank(s[i]));
                        i += 1;
                    }
                }
            }
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a): only the former is blanked.
            if next == Some('\\') {
                out.push(' ');
                i += 1;
                while i < s.len() {
                    if s[i] == '\\' {
                        out.extend([' ', ' ']);
                        i += 2;
                    } else if s[i] == '\'' {
                        out.push(' ');
                        i += 1;
                        break;
                    } else {
                        out.push(blank(s[i]));
                        i += 1;
                    }
                }
            } else if s.get(i + 2) == Some(&'\'') {
                out.extend([' ', ' ', ' ']);
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

#[derive(Debug, Clone)]
struct Tok {
    text: String,
    line: usize,
}

fn tokenize(src: &str) -> Vec<Tok> {
    let s = blank_comments_and_literals(src);
    let mut toks = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if is_ident_char(c) {
            let start = i;
            while i < s.len() && is_ident_char(s[i]) {
                i += 1;
            }
            toks.push(Tok {
                text: s[start..i].iter().collect(),
                line,
            });
        } else if c == ':' && s.get(i + 1) == Some(&':') {
            toks.push(Tok {
                text: "::".into(),
                line,
            });
            i += 2;
        } else {
            toks.push(Tok {
                text: c.to_string(),
                line,
            });
            i += 1;
        }
    }
    toks
}

// ---------------------------------------------------------------------------------------------
// Scanning one file
// ---------------------------------------------------------------------------------------------

/// A reference from a file to a top-level module of the crate.
#[derive(Debug, Clone)]
struct Ref {
    target: String,
    line: usize,
}

#[derive(Debug, Default)]
struct Scan {
    refs: Vec<Ref>,
    /// `mod name;` declared outside test code, at the file's own level: module path suffixes.
    declared: Vec<Vec<String>>,
    /// `#[cfg(test)] mod name;`: module paths (relative to the file's module) whose files are
    /// test-only.
    test_children: Vec<Vec<String>>,
    /// The file is `#![cfg(test)]` as a whole.
    test_only: bool,
}

/// Index one past the token that closes the group opened at `open` (`(`, `[` or `{`).
fn close_of(toks: &[Tok], open: usize) -> usize {
    let mut depth = 0usize;
    let mut i = open;
    while i < toks.len() {
        match toks[i].text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    toks.len()
}

/// Whether an attribute's tokens (between `[` and `]`) switch the item on only for tests.
fn is_cfg_test(attr: &[Tok]) -> bool {
    let t: Vec<&str> = attr.iter().map(|t| t.text.as_str()).collect();
    t == ["cfg", "(", "test", ")"]
}

/// Index one past the end of the item starting at `i` (after its attributes).
fn item_end(toks: &[Tok], i: usize) -> usize {
    let mut j = i;
    let brace_ends = toks[i..]
        .iter()
        .take_while(|t| t.text != "{" && t.text != ";" && t.text != "=")
        .any(|t| {
            matches!(
                t.text.as_str(),
                "mod" | "fn" | "impl" | "struct" | "enum" | "trait" | "union" | "macro_rules"
            ) || t.text == "!"
        });
    while j < toks.len() {
        match toks[j].text.as_str() {
            ";" => return j + 1,
            "(" | "[" => j = close_of(toks, j),
            "{" => {
                j = close_of(toks, j);
                if brace_ends {
                    return j;
                }
            }
            "}" => return j, // end of the enclosing block: an item without `;` (e.g. a tail expr)
            _ => j += 1,
        }
    }
    toks.len()
}

/// `module` is the file's module path (`["foo"]` for `src/foo.rs` and `src/foo/mod.rs`,
/// `["foo", "bar"]` for `src/foo/bar.rs`); `[]` for lib.rs.
fn scan_file(src: &str, module: &[String]) -> Scan {
    let toks = tokenize(src);
    let mut scan = Scan::default();
    // Each open `{`: `Some(name)` when it opened an inline `mod name { .. }`.
    let mut braces: Vec<Option<String>> = Vec::new();
    let mut inline: Vec<String> = Vec::new();
    let mut pending_test = false;
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i].text.as_str();
        let next = toks.get(i + 1).map(|t| t.text.as_str());
        match t {
            "#" if next == Some("[")
                || (next == Some("!") && toks.get(i + 2).is_some_and(|t| t.text == "[")) =>
            {
                let inner = next == Some("!");
                let open = if inner { i + 2 } else { i + 1 };
                let end = close_of(&toks, open);
                let attr = &toks[open + 1..end.saturating_sub(1).max(open + 1)];
                if is_cfg_test(attr) {
                    if !inner {
                        pending_test = true;
                    } else if braces.is_empty() {
                        scan.test_only = true;
                        return scan;
                    } else {
                        // `#![cfg(test)]` inside a block: skip the rest of that block.
                        let mut depth = 0usize;
                        let mut j = end;
                        while j < toks.len() {
                            match toks[j].text.as_str() {
                                "{" => depth += 1,
                                "}" if depth == 0 => break,
                                "}" => depth -= 1,
                                _ => {}
                            }
                            j += 1;
                        }
                        i = j;
                        continue;
                    }
                }
                i = end;
                continue;
            }
            _ if pending_test => {
                pending_test = false;
                let end = item_end(&toks, i);
                let item: Vec<&str> = toks[i..end].iter().map(|t| t.text.as_str()).collect();
                if let Some(p) = item.iter().position(|w| *w == "mod")
                    && let (Some(name), Some(&";")) = (item.get(p + 1), item.get(p + 2))
                {
                    let mut path = inline.clone();
                    path.push((*name).to_string());
                    scan.test_children.push(path);
                }
                i = end;
                continue;
            }
            "mod"
                if toks
                    .get(i + 1)
                    .is_some_and(|t| is_ident_char(t.text.chars().next().unwrap_or(' '))) =>
            {
                let name = toks[i + 1].text.clone();
                match toks.get(i + 2).map(|t| t.text.as_str()) {
                    Some(";") => {
                        let mut path = inline.clone();
                        path.push(name);
                        scan.declared.push(path);
                        i += 3;
                    }
                    Some("{") => {
                        braces.push(Some(name.clone()));
                        inline.push(name);
                        i += 3;
                    }
                    _ => i += 1,
                }
                continue;
            }
            "{" => braces.push(None),
            "}" => {
                if let Some(Some(_)) = braces.pop() {
                    inline.pop();
                }
            }
            "crate" if next == Some("::") && (i == 0 || toks[i - 1].text != "::") => {
                i = read_path_tail(&toks, i + 2, &mut scan.refs);
                continue;
            }
            "super" if next == Some("::") && (i == 0 || toks[i - 1].text != "::") => {
                let mut ups = 0;
                let mut j = i;
                while toks.get(j).is_some_and(|t| t.text == "super")
                    && toks.get(j + 1).is_some_and(|t| t.text == "::")
                {
                    ups += 1;
                    j += 2;
                }
                let depth = module.len() + inline.len();
                if ups == depth {
                    // Climbs to the crate root: the next segment names a top-level module.
                    i = read_path_tail(&toks, j, &mut scan.refs);
                } else {
                    i = j;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    scan
}

/// Reads what follows `crate::` at `i`: one name, or a `{a, b::c}` group. Returns where to go on.
fn read_path_tail(toks: &[Tok], i: usize, refs: &mut Vec<Ref>) -> usize {
    let Some(t) = toks.get(i) else {
        return i;
    };
    if t.text == "{" {
        let end = close_of(toks, i);
        let mut expect_name = true;
        let mut depth = 0usize;
        for t in &toks[i + 1..end.saturating_sub(1)] {
            match t.text.as_str() {
                "{" => depth += 1,
                "}" => depth = depth.saturating_sub(1),
                "," if depth == 0 => {
                    expect_name = true;
                    continue;
                }
                name if expect_name && depth == 0 && name != "self" && name != "*" => {
                    refs.push(Ref {
                        target: name.to_string(),
                        line: t.line,
                    });
                }
                _ => {}
            }
            expect_name = false;
        }
        end
    } else {
        if t.text != "*" && t.text != "self" {
            refs.push(Ref {
                target: t.text.clone(),
                line: t.line,
            });
        }
        i + 1
    }
}

// ---------------------------------------------------------------------------------------------
// The whole crate
// ---------------------------------------------------------------------------------------------

/// An import edge found in a file.
#[derive(Debug, Clone)]
struct Edge {
    file: String,
    line: usize,
    from: String,
    to: String,
}

#[derive(Debug, Default)]
struct Findings {
    table: Vec<String>,
    upward: Vec<String>,
    cycles: Vec<String>,
    config: Vec<String>,
}

/// Module path of a file under `src/` given as a `/`-separated relative path (`"admin/mod.rs"`).
fn module_path_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    let last = parts.pop().unwrap_or_default();
    if last != "mod.rs" {
        parts.push(last.trim_end_matches(".rs").to_string());
    }
    parts
}

/// The checker: `lib_rs` is the text of lib.rs, `files` every other `.rs` file under `src/` as
/// (path relative to `src/` with `/` separators, text). `main.rs` must already be left out.
/// lib.rs's own paths are not edges: the crate root sits above every layer and only declares.
fn check(lib_rs: &str, files: &[(String, String)]) -> Findings {
    let mut f = Findings::default();
    let layers = match parse_layer_table(lib_rs) {
        Ok(l) => l,
        Err(e) => {
            f.table.push(e);
            return f;
        }
    };

    // Table against lib.rs's declarations.
    let lib_scan = scan_file(lib_rs, &[]);
    let declared: BTreeSet<String> = lib_scan
        .declared
        .iter()
        .filter(|p| p.len() == 1)
        .map(|p| p[0].clone())
        .collect();
    let mut in_table: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (layer, mods) in &layers.rows {
        for m in mods {
            in_table.entry(m.as_str()).or_default().push(layer.as_str());
        }
    }
    for m in &declared {
        if !in_table.contains_key(m.as_str()) {
            f.table.push(format!(
                "src/lib.rs declares `mod {m};` but the layer table does not place `{m}` in any layer"
            ));
        }
    }
    for (m, ls) in &in_table {
        if !declared.contains(*m) {
            f.table.push(format!(
                "the layer table puts `{m}` in layer {} but src/lib.rs declares no `mod {m};`",
                ls[0]
            ));
        }
        if ls.len() > 1 {
            f.table.push(format!(
                "the layer table puts `{m}` in more than one layer: {}",
                ls.join(", ")
            ));
        }
    }

    // Scan every file; then leave out files that are test-only.
    let mut scans: Vec<(&str, Vec<String>, Scan)> = files
        .iter()
        .map(|(rel, text)| {
            let module = module_path_of(rel);
            let scan = scan_file(text, &module);
            (rel.as_str(), module, scan)
        })
        .collect();
    let mut test_modules: Vec<Vec<String>> = lib_scan.test_children.to_vec();
    for (_, module, scan) in &scans {
        for child in &scan.test_children {
            let mut p = module.clone();
            p.extend(child.iter().cloned());
            test_modules.push(p);
        }
    }
    scans.retain(|(_, module, scan)| {
        !scan.test_only && !test_modules.iter().any(|t| module.starts_with(t))
    });

    let mut edges: Vec<Edge> = Vec::new();
    for (rel, module, scan) in &scans {
        let Some(from) = module.first() else {
            continue;
        };
        if !declared.contains(from) {
            f.table.push(format!(
                "src/{rel} belongs to top-level module `{from}`, which src/lib.rs does not declare"
            ));
            continue;
        }
        for r in &scan.refs {
            if &r.target != from && declared.contains(&r.target) {
                edges.push(Edge {
                    file: format!("src/{rel}"),
                    line: r.line,
                    from: from.clone(),
                    to: r.target.clone(),
                });
            }
        }
    }
    edges.sort_by(|a, b| (&a.file, a.line, &a.to).cmp(&(&b.file, b.line, &b.to)));
    edges.dedup_by(|a, b| a.file == b.file && a.line == b.line && a.to == b.to);

    // (a) upward imports.
    for e in &edges {
        if let (Some(rf), Some(rt)) = (layers.rank(&e.from), layers.rank(&e.to))
            && rt < rf
        {
            f.upward.push(format!(
                "{}:{}: {} imports {}, a higher layer",
                e.file,
                e.line,
                layers.describe(&e.from),
                layers.describe(&e.to)
            ));
        }
    }

    // (b) cycles.
    f.cycles = find_cycles(&edges, &layers);

    // config imports nothing of the crate.
    for e in edges.iter().filter(|e| e.from == "config") {
        f.config.push(format!(
            "{}:{}: `config` imports {}; config imports nothing of the crate",
            e.file,
            e.line,
            layers.describe(&e.to)
        ));
    }
    f
}

/// Every group of top-level modules that reach one another, reported as cycles: for each module
/// of a group the shortest cycle through it (the same cycle once, however it is entered), with
/// every `file:line` behind each of its edges.
fn find_cycles(edges: &[Edge], layers: &Layers) -> Vec<String> {
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in edges {
        graph.entry(&e.from).or_default().insert(&e.to);
        graph.entry(&e.to).or_default();
    }
    // Shortest path start -> .. -> start, as the list of modules without the closing repeat.
    fn shortest_cycle<'a>(
        graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        start: &'a str,
    ) -> Option<Vec<&'a str>> {
        let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(a) = queue.pop_front() {
            for &b in &graph[a] {
                if b == start {
                    let mut chain = vec![a];
                    let mut at = a;
                    while at != start {
                        at = prev[at];
                        chain.push(at);
                    }
                    chain.pop();
                    chain.push(start);
                    chain.reverse();
                    return Some(chain);
                }
                if !prev.contains_key(b) {
                    prev.insert(b, a);
                    queue.push_back(b);
                }
            }
        }
        None
    }
    let mut cycles: BTreeSet<Vec<&str>> = BTreeSet::new();
    for &n in graph.keys() {
        if let Some(mut c) = shortest_cycle(&graph, n) {
            // The same cycle entered elsewhere: rotate so it starts at its smallest module.
            let min = (0..c.len()).min_by_key(|&k| c[k]).unwrap_or(0);
            c.rotate_left(min);
            cycles.insert(c);
        }
    }
    let mut out = Vec::new();
    for c in cycles {
        let mut path = c.clone();
        path.push(c[0]);
        let mut msg = format!("cycle: {}", path.join(" -> "));
        for w in path.windows(2) {
            let _ = write!(
                msg,
                "\n    {} -> {}:",
                layers.describe(w[0]),
                layers.describe(w[1])
            );
            for e in edges.iter().filter(|e| e.from == w[0] && e.to == w[1]) {
                let _ = write!(msg, "\n        {}:{}", e.file, e.line);
            }
        }
        out.push(msg);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The real tree
// ---------------------------------------------------------------------------------------------

fn collect_rs(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_rs(&path, root, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let rel: Vec<String> = path
                .strip_prefix(root)
                .unwrap()
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let rel = rel.join("/");
            if rel == "main.rs" || rel == "lib.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            out.push((rel, text));
        }
    }
}

fn real_tree() -> Findings {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib_rs = std::fs::read_to_string(src.join("lib.rs")).expect("reading src/lib.rs");
    let mut files = Vec::new();
    collect_rs(&src, &src, &mut files);
    assert!(!files.is_empty(), "no .rs files found under src/");
    check(&lib_rs, &files)
}

fn fail_if_any(what: &str, offences: &[String]) {
    if !offences.is_empty() {
        panic!(
            "\n{what} ({} offence{}):\n{}\n\nThe layers are the table in src/lib.rs's `//!` docs (top row = highest layer).\n",
            offences.len(),
            if offences.len() == 1 { "" } else { "s" },
            offences
                .iter()
                .map(|o| format!("  {o}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn layer_table_names_every_module_of_lib_rs() {
    fail_if_any(
        "the layer table and src/lib.rs disagree",
        &real_tree().table,
    );
}

#[test]
fn no_module_imports_a_higher_layer() {
    fail_if_any("imports of a higher layer", &real_tree().upward);
}

#[test]
fn no_cycle_between_top_level_modules() {
    fail_if_any("cycles between top-level modules", &real_tree().cycles);
}

#[test]
fn config_imports_nothing_of_the_crate() {
    fail_if_any("config reaches into the crate", &real_tree().config);
}

// ---------------------------------------------------------------------------------------------
// The checker checked: a fake crate in memory
// ---------------------------------------------------------------------------------------------

const FAKE_LIB: &str = r#"//! Fake.
//!
//! | layer | modules | owns |
//! |---|---|---|
//! | top | `app` | wiring |
//! | mid | `alpha`, `beta` | things |
//! | low | `config`, `wire` | bottom |

pub mod alpha;
pub mod app;
pub mod beta;
pub(crate) mod config;
pub mod wire;
"#;

fn fake(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(p, t)| ((*p).to_string(), (*t).to_string()))
        .collect()
}

fn fake_crate() -> Vec<(String, String)> {
    fake(&[
        ("app.rs", "use crate::{wire::W};\n"),
        // Deliberate upward import, inline (not on a `use` line).
        (
            "alpha/mod.rs",
            "mod inner;\npub fn f() {\n    crate::app::run();\n}\n",
        ),
        // Deliberate cycle alpha -> beta -> alpha, one end through a `use` group.
        ("alpha/inner.rs", "use crate::{wire, beta::{B, C}};\n"),
        (
            "beta.rs",
            "// use crate::app; (a comment)\nconst S: &str = \"crate::app::x\";\nuse crate::alpha::A;\n",
        ),
        // config climbing out with super:: and reaching wire.
        ("config/mod.rs", "mod raw;\n"),
        ("config/raw.rs", "use super::super::wire::W;\n"),
        // Test code may reach anywhere.
        (
            "wire.rs",
            "pub struct W;\n#[cfg(test)]\nmod tests;\n#[cfg(test)]\nmod more {\n    use crate::app;\n}\npub fn g() {}\n",
        ),
        ("wire/tests.rs", "use crate::app::run;\n"),
    ])
}

#[test]
fn checker_reports_an_upward_import_with_file_line_and_layers() {
    let f = check(FAKE_LIB, &fake_crate());
    assert!(f.table.is_empty(), "{:?}", f.table);
    assert_eq!(f.upward.len(), 1, "{:#?}", f.upward);
    let msg = &f.upward[0];
    assert!(msg.starts_with("src/alpha/mod.rs:3: "), "{msg}");
    assert!(
        msg.contains("`alpha` (layer mid") && msg.contains("`app` (layer top"),
        "{msg}"
    );
}

#[test]
fn checker_reports_a_cycle_with_its_path_and_sites() {
    let f = check(FAKE_LIB, &fake_crate());
    assert_eq!(f.cycles.len(), 1, "{:#?}", f.cycles);
    let msg = &f.cycles[0];
    assert!(msg.starts_with("cycle: alpha -> beta -> alpha"), "{msg}");
    assert!(
        msg.contains("src/alpha/inner.rs:1") && msg.contains("src/beta.rs:3"),
        "{msg}"
    );
}

#[test]
fn checker_reports_config_reaching_out_even_through_super() {
    let f = check(FAKE_LIB, &fake_crate());
    assert_eq!(f.config.len(), 1, "{:#?}", f.config);
    assert!(
        f.config[0].starts_with("src/config/raw.rs:1: "),
        "{}",
        f.config[0]
    );
}

#[test]
fn checker_ignores_comments_strings_and_test_code() {
    let f = check(FAKE_LIB, &fake_crate());
    // Only alpha's inline call reaches `app`: not beta's comment or string, not wire's tests.
    let all: Vec<&String> = f.upward.iter().chain(&f.cycles).collect();
    assert!(
        all.iter()
            .all(|m| !m.contains("src/beta.rs:1") && !m.contains("src/beta.rs:2")),
        "{all:#?}"
    );
    assert!(all.iter().all(|m| !m.contains("src/wire")), "{all:#?}");
}

#[test]
fn checker_reports_table_and_lib_rs_disagreeing() {
    let lib = FAKE_LIB.replace("pub mod wire;", "pub mod ghost;");
    let files = fake(&[("ghost.rs", "")]);
    let f = check(&lib, &files);
    let all = f.table.join("\n");
    assert!(
        all.contains("declares `mod ghost;` but the layer table"),
        "{all}"
    );
    assert!(
        all.contains("puts `wire` in layer low but src/lib.rs declares no `mod wire;`"),
        "{all}"
    );
}

#[test]
fn checker_lexer_keeps_lines_through_raw_strings_and_char_literals() {
    let src = "const A: &str = r#\"crate::app \"x\"\n\"#;\nconst C: char = '\"';\nfn f<'a>(x: &'a u8) { crate::wire::g(); }\n";
    let s = scan_file(src, &["alpha".to_string()]);
    let refs: Vec<(String, usize)> = s.refs.iter().map(|r| (r.target.clone(), r.line)).collect();
    assert_eq!(refs, vec![("wire".to_string(), 4)]);
}

#[test]
fn checker_skips_only_the_item_under_cfg_test() {
    // `#[cfg(test)] mod tests;` near the top (as in this crate's script and catalogue modules)
    // must not hide the code after it; a test-only fn is skipped to its closing brace.
    let src = "#[cfg(test)]\nmod tests;\nuse crate::wire::W;\n#[cfg(test)]\nfn helper() -> u8 { crate::app::x() }\nmod inner {\n    use super::super::beta::B;\n}\n";
    let s = scan_file(src, &["alpha".to_string()]);
    let refs: Vec<(String, usize)> = s.refs.iter().map(|r| (r.target.clone(), r.line)).collect();
    assert_eq!(refs, vec![("wire".to_string(), 3), ("beta".to_string(), 7)]);
    assert_eq!(s.test_children, vec![vec!["tests".to_string()]]);
}
