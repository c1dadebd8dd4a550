//! The report as a SARIF 2.1.0 log ([`sarif`]) for code-scanning dashboards: the four rules
//! (`PGA001`..`PGA004`) and which rule each finding falls under.

use std::fmt::Write as _;

use serde_json::json;

use super::text::{ids_text, short_vendor};
use super::{Finding, PageReport, Report, Severity};

struct Rule {
    id: &'static str,
    name: &'static str,
    text: &'static str,
    level: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        id: "PGA001",
        name: "tracker-on-sensitive-page",
        text: "A third-party tracker loads on a sensitive page (crime reporting, health, a form collecting personal data).",
        level: "error",
    },
    Rule {
        id: "PGA002",
        name: "cname-cloaked-tracker",
        text: "A first-party host name is a CNAME alias for a tracker (CNAME cloaking).",
        level: "error",
    },
    Rule {
        id: "PGA003",
        name: "tracker",
        text: "A third-party tracker loads on the page.",
        level: "warning",
    },
    Rule {
        id: "PGA004",
        name: "csp-allows-tracker",
        text: "The Content-Security-Policy allows a tracker host, which a tag manager can load at run time.",
        level: "note",
    },
];

fn rule_for(p: &PageReport, f: &Finding) -> usize {
    if !f.cloaked_via.is_empty() {
        1
    } else if p.sensitive && f.severity == Severity::Critical {
        0
    } else if f
        .evidence
        .iter()
        .all(|e| e.kind == "csp_header" || e.kind == "csp_meta")
    {
        3
    } else {
        2
    }
}

/// The report as a SARIF 2.1.0 log: one result per finding, located at the page (URL, or the
/// input file's path so code scanning maps it to the repository) and, when known, the line.
pub fn sarif(r: &Report) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = RULES
        .iter()
        .map(|ru| {
            json!({
                "id": ru.id,
                "name": ru.name,
                "shortDescription": {"text": ru.text},
                "defaultConfiguration": {"level": ru.level},
            })
        })
        .collect();
    let mut results = Vec::new();
    for p in &r.pages {
        for f in &p.findings {
            let ri = rule_for(p, f);
            let ids = if f.ids.is_empty() {
                String::new()
            } else {
                format!(" ({})", ids_text(&f.ids))
            };
            let where_ = if p.sensitive {
                "sensitive page"
            } else {
                "page"
            };
            let mut text = format!(
                "{} {} tracker {}{ids} on {where_} {}",
                short_vendor(&f.vendor),
                f.category,
                f.host,
                p.url
            );
            if p.sensitive {
                let _ = write!(text, " [{}]", p.sensitive_reasons.join("; "));
            }
            let _ = write!(text, ". pixelguard: {}.", f.policy.describe());
            let mut physical = json!({"artifactLocation": {"uri": p.url}});
            if let Some(line) = f.line {
                physical["region"] = json!({"startLine": line});
            }
            results.push(json!({
                "ruleId": RULES[ri].id,
                "ruleIndex": ri,
                "level": f.severity.sarif_level(),
                "message": {"text": text},
                "locations": [{"physicalLocation": physical}],
                "partialFingerprints": {"pixelguardAudit/v1": format!("{}|{}|{}", f.vendor_id, f.host, p.url)},
                "properties": {
                    "severity": f.severity.as_str(),
                    "vendor_id": f.vendor_id,
                    "category": f.category,
                    "host": f.host,
                    "ids": f.ids,
                    "sensitive": p.sensitive,
                },
            }));
        }
    }
    json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {"driver": {
                "name": r.tool.name,
                "version": r.tool.version,
                "informationUri": "https://example.invalid/pixelguard",
                "rules": rules,
            }},
            "results": results,
        }],
    })
}
