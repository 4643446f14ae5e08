//! The layering of the state, checked: the `use crate::core::…` imports of
//! every core source file form a graph with no cycle, and no layer of the
//! state imports `state` (or anything built on it). A rule that needs data
//! from another layer takes it as an argument instead.

use std::collections::{BTreeMap, BTreeSet};

/// Every non-test core source file, by module name (`op/*` is one module).
const SOURCES: &[(&str, &str)] = &[
    ("auction", include_str!("auction.rs")),
    ("ballot", include_str!("ballot.rs")),
    ("immune", include_str!("immune.rs")),
    ("channels", include_str!("channels.rs")),
    ("commands", include_str!("commands.rs")),
    ("common", include_str!("common.rs")),
    ("config_range", include_str!("config_range.rs")),
    ("dry_run", include_str!("dry_run.rs")),
    ("economy", include_str!("economy.rs")),
    ("finality", include_str!("finality.rs")),
    ("finalizer", include_str!("finalizer.rs")),
    ("fold", include_str!("fold.rs")),
    ("fuzz", include_str!("fuzz.rs")),
    ("genesis", include_str!("genesis.rs")),
    ("governance", include_str!("governance.rs")),
    ("hlc", include_str!("hlc.rs")),
    ("ledger", include_str!("ledger.rs")),
    ("log", include_str!("log.rs")),
    ("op", include_str!("op/mod.rs")),
    ("op", include_str!("op/bodies.rs")),
    ("op", include_str!("op/codec.rs")),
    ("op", include_str!("op/ids.rs")),
    ("op", include_str!("op/limits.rs")),
    ("op", include_str!("op/signed.rs")),
    ("reject", include_str!("reject.rs")),
    ("replica", include_str!("replica.rs")),
    ("reputation", include_str!("reputation.rs")),
    ("ring", include_str!("ring.rs")),
    ("rules", include_str!("rules.rs")),
    ("schema", include_str!("schema.rs")),
    ("shamir", include_str!("shamir.rs")),
    ("snapshot", include_str!("snapshot.rs")),
    ("split_merge", include_str!("split_merge.rs")),
    ("state", include_str!("state.rs")),
    ("strict", include_str!("strict.rs")),
    ("tasks", include_str!("tasks.rs")),
    ("teams", include_str!("teams.rs")),
    ("tools", include_str!("tools.rs")),
    ("upgrade", include_str!("upgrade.rs")),
    ("upgrades", include_str!("upgrades.rs")),
    ("vectors", include_str!("vectors.rs")),
];

/// The layers of the state: each owns its data, rules and encoding.
const LAYERS: &[&str] =
    &["common", "ledger", "channels", "upgrades", "tasks", "auction", "teams", "tools", "governance", "split_merge"];

/// Modules built on `State` (they may import it; no layer may import them).
const ABOVE_STATE: &[&str] =
    &["state", "commands", "dry_run", "fold", "finalizer", "snapshot", "replica", "vectors", "fuzz"];

/// The core modules a source names as `crate::core::NAME` before its test
/// module (tests may reach anywhere).
fn imports(src: &str) -> BTreeSet<String> {
    let code = src.split("#[cfg(test)]").next().unwrap_or(src);
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::core::") {
        let rest = &code[i + "crate::core::".len()..];
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

fn graph() -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut g: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (name, src) in SOURCES {
        let e = g.entry(name).or_default();
        e.extend(imports(src).into_iter().filter(|m| m != name));
    }
    g
}

/// A cycle in `g`, as a path that returns to its start, if there is one.
fn find_cycle(g: &BTreeMap<&'static str, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<&'static str, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut cycle = path[i..].to_vec();
            cycle.push(n.to_owned());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_owned());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, done, path) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for n in g.keys() {
        if let Some(c) = visit(n, g, &mut done, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

#[test]
fn core_imports_are_one_way() {
    let g = graph();
    // Every core module is listed, so a new file cannot dodge the check.
    let listed: BTreeSet<&str> = SOURCES.iter().map(|(n, _)| *n).collect();
    for m in g.values().flatten() {
        assert!(listed.contains(m.as_str()), "core module {m} is missing from SOURCES in layers_tests.rs");
    }
    if let Some(c) = find_cycle(&g) {
        panic!("core imports form a cycle: {}", c.join(" -> "));
    }
    for layer in LAYERS {
        for up in ABOVE_STATE {
            assert!(!g[layer].contains(*up), "layer {layer} imports {up}; pass what it needs as an argument instead");
        }
    }
    // The shared bottom module imports no layer.
    for layer in LAYERS {
        assert!(!g["common"].contains(*layer), "common imports the layer {layer}");
    }
}

#[test]
fn import_check_finds_a_cycle_and_an_upward_import() {
    let mut g: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    g.insert("a", BTreeSet::from(["b".to_owned()]));
    g.insert("b", BTreeSet::from(["a".to_owned()]));
    assert_eq!(find_cycle(&g), Some(vec!["a".to_owned(), "b".to_owned(), "a".to_owned()]));
    assert!(imports("use crate::core::state::State;\n#[cfg(test)]\nuse crate::core::fold;").contains("state"));
    assert!(!imports("use crate::core::state::State;\n#[cfg(test)]\nuse crate::core::fold;").contains("fold"));
}
