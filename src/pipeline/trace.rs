//! Explain's trace: what each stage of the real chain saw and decided, as lines (rendered by
//! `explain` as text) and fields (its JSON). Stages write to it only through
//! [`super::chain::Cx::note`] and [`super::chain::Cx::detail`], whose closures run only when
//! explaining, so serving pays one branch per stage for it.

use std::ops::ControlFlow;
use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::lists::{payload_action, payload_attr};
use crate::matcher::QueryName;
use crate::policy::{self, Decision, ZonePolicy};
use crate::snapshot::Snapshot;
use crate::wire::WireAnswer;

/// One rule that matches the query name (every match, not only the deciding one).
#[derive(Debug, Clone)]
pub struct RuleMatch {
    /// "allow" or "block": which of the zone's list sets the list is in.
    pub role: &'static str,
    /// Index of the list in the snapshot.
    pub list: usize,
    /// The rule (the suffix of the name that matched).
    pub rule: String,
    /// The rule is the name itself, not a parent.
    pub exact: bool,
    /// Found in the list's cloak-target section (counts only inside CNAME answers).
    pub cloak_target: bool,
    /// What the rule asks for: block, allow, nxdomain, nodata.
    pub action: &'static str,
    /// Catalogue attribution: (vendor, category, status).
    pub vendor: Option<(String, &'static str, &'static str)>,
}

/// A trace entry, in chain order.
#[derive(Debug, Clone)]
pub enum Entry {
    /// `label  text`.
    Line(&'static str, String),
    /// The rules matching the name (rendered with their file:line by explain).
    Matches(Vec<RuleMatch>),
}

#[derive(Default)]
struct Inner {
    entries: Vec<Entry>,
    fields: Map<String, Value>,
}

/// The trace of one explained query.
#[derive(Default)]
pub struct Trace(Mutex<Inner>);

impl Trace {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        match self.0.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Adds a line.
    pub fn line(&self, label: &'static str, text: String) {
        self.with(|i| i.entries.push(Entry::Line(label, text)));
    }

    /// Sets a JSON field.
    pub fn set(&self, key: &str, v: Value) {
        self.with(|i| {
            i.fields.insert(key.to_owned(), v);
        });
    }

    /// The entries so far.
    pub fn entries(&self) -> Vec<Entry> {
        self.with(|i| i.entries.clone())
    }

    /// The JSON fields so far.
    pub fn fields(&self) -> Map<String, Value> {
        self.with(|i| i.fields.clone())
    }

    /// Records every rule of the zone's lists that matches `q`, and lists that are not loaded.
    pub fn matches(&self, snap: &Snapshot, zone: &ZonePolicy, q: &QueryName) {
        let name = q.as_str();
        for &i in zone.allow.iter().chain(zone.block.iter()) {
            if let Some(l) = snap.lists.get(usize::from(i))
                && let Some(e) = &l.error
            {
                self.line(
                    "warning",
                    format!(
                        "list {} is not loaded ({e}); the zone runs without it",
                        l.name
                    ),
                );
            }
        }
        let mut found = Vec::new();
        let vendor_list: Vec<u16> = zone.vendor_list.into_iter().collect();
        for (role, ids) in [
            ("allow", &zone.allow),
            ("block", &zone.block),
            ("block_vendors", &vendor_list),
            ("trial", &zone.trial),
            ("watch", &zone.watch),
        ] {
            for &i in ids.iter() {
                let Some(l) = snap.lists.get(usize::from(i)) else {
                    continue;
                };
                for (m, cloak_target) in [(&l.matcher, false), (&l.cloak, true)] {
                    m.find(q, |hit| {
                        if let Some(a) = payload_action(hit.payload, hit.exact) {
                            let attr = payload_attr(hit.payload).and_then(|x| l.attrs.get(x));
                            if role == "block_vendors"
                                && !attr.is_some_and(|a| zone.block_vendors.contains(&a.vendor))
                            {
                                return ControlFlow::<()>::Continue(());
                            }
                            found.push(RuleMatch {
                                role,
                                list: usize::from(i),
                                rule: name.get(hit.start..).unwrap_or(name).to_owned(),
                                exact: hit.exact,
                                cloak_target,
                                action: a.as_str(),
                                vendor: attr
                                    .map(|a| (a.vendor.to_string(), a.category, a.status.as_str())),
                            });
                        }
                        ControlFlow::<()>::Continue(())
                    });
                }
            }
        }
        self.with(|i| i.entries.push(Entry::Matches(found)));
    }

    /// Records what the answer policy sees: each alias target of the answer and its decision.
    pub fn uncloak(&self, snap: &Snapshot, zone: &ZonePolicy, w: &WireAnswer) {
        let Some(m) = w.decode() else {
            return;
        };
        for r in &m.answers {
            let Some(t) = crate::wire::alias_target(&r.data) else {
                continue;
            };
            let tq = QueryName::new(t.as_bytes());
            let what = match policy::decide_target(&snap.lists, zone, &tq) {
                Some(Decision::Block(v, _)) => format!(
                    "blocked by list {} rule {} ({})",
                    v.list_name,
                    v.rule,
                    v.ede_text()
                ),
                Some(Decision::Allow(v)) => {
                    format!("allowed by list {} rule {}", v.list_name, v.rule)
                }
                Some(Decision::Watch(_) | Decision::Trial(_)) | None => "no rule".into(),
            };
            self.line(
                "uncloak",
                format!("{} {} -> {t}: {what}", r.name, r.record_type()),
            );
        }
    }
}
