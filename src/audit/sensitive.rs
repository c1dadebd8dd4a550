//! Sensitive pages: a page is sensitive when its URL, title or content text contains one of the
//! configured terms (defaults for police and health sites, [`DEFAULT_TERMS`]; `--terms FILE`
//! replaces them), or when its content holds a form that collects input. A tracker on a
//! sensitive page is the most severe finding, because the page itself (a rape-reporting form, a
//! sexual-health appointment) tells the tracker something about the visitor.
//!
//! Matching is on whole words, case-insensitive, after folding punctuation to spaces, so
//! `report-a-crime.html` matches "report a crime" and "rapeseed" does not match "rape". Site
//! chrome (`nav`, `header`, `footer`, `aside`) is not content (see [`super::extract`]): a
//! "Victim support" link in every page's footer would otherwise make every page sensitive.
//! Forms in the chrome and search-only forms do not count either.

use std::path::Path;

use url::Url;

use super::extract::Extracted;

/// The default terms: police and health services.
pub const DEFAULT_TERMS: &[&str] = &[
    // Police and justice.
    "report a crime",
    "report crime",
    "reporting a crime",
    "crime report",
    "report it",
    "rape",
    "sexual assault",
    "sexual abuse",
    "sexual violence",
    "sexual offence",
    "sexual offences",
    "domestic abuse",
    "domestic violence",
    "coercive control",
    "stalking",
    "harassment",
    "hate crime",
    "hate incident",
    "child abuse",
    "child sexual exploitation",
    "modern slavery",
    "forced marriage",
    "honour based abuse",
    "female genital mutilation",
    "victim",
    "victims",
    "witness",
    "witnesses",
    "missing person",
    "report fraud",
    "anonymously",
    // Health.
    "patient",
    "patients",
    "appointment",
    "appointments",
    "symptoms",
    "diagnosis",
    "sexual health",
    "mental health",
    "hiv",
    "sti",
    "pregnancy",
    "abortion",
    "contraception",
    "gender identity",
    "addiction",
    "drug and alcohol",
    "suicide",
    "self harm",
    "medical records",
    "prescription",
    "referral",
];

/// Most terms a terms file may hold.
pub const MAX_TERMS: usize = 1_000;

/// The terms a page is checked against.
#[derive(Debug, Clone)]
pub struct Terms {
    /// (as written, normalised with surrounding spaces).
    terms: Vec<(String, String)>,
}

/// Whether a page is sensitive, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sensitivity {
    /// Sensitive or not.
    pub sensitive: bool,
    /// Human-readable reasons, e.g. `URL contains "report a crime"`.
    pub reasons: Vec<String>,
}

/// Lower case, every run of non-alphanumeric characters as one space, padded with spaces.
fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(' ');
    for c in s.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    if !out.ends_with(' ') {
        out.push(' ');
    }
    out
}

/// %XX-decoding (lossy), for URL paths.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Terms {
    /// The [`DEFAULT_TERMS`].
    pub fn defaults() -> Terms {
        Terms::from_list(DEFAULT_TERMS.iter().copied())
    }

    fn from_list<'a>(list: impl Iterator<Item = &'a str>) -> Terms {
        let mut terms: Vec<(String, String)> = Vec::new();
        for t in list.take(MAX_TERMS) {
            let n = normalize(t);
            if n.trim().is_empty() || terms.iter().any(|(_, x)| *x == n) {
                continue;
            }
            terms.push((t.trim().to_owned(), n));
        }
        Terms { terms }
    }

    /// A terms file: one term per line; `#` starts a comment; blank lines are ignored; a line
    /// `@defaults` adds the [`DEFAULT_TERMS`].
    pub fn parse(text: &str) -> Terms {
        let mut list: Vec<&str> = Vec::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if line == "@defaults" {
                list.extend(DEFAULT_TERMS.iter().copied());
            } else {
                list.push(line);
            }
        }
        Terms::from_list(list.into_iter())
    }

    /// Reads a terms file (see [`Terms::parse`]).
    pub fn load(path: &Path) -> Result<Terms, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let t = Terms::parse(&text);
        if t.terms.is_empty() {
            return Err(format!("{}: no terms", path.display()));
        }
        Ok(t)
    }

    /// How many terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// True when there are no terms.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms found in `text`, at most `max`.
    fn found(&self, text: &str, max: usize) -> Vec<&str> {
        let n = normalize(text);
        self.terms
            .iter()
            .filter(|(_, t)| n.contains(t.as_str()))
            .map(|(orig, _)| orig.as_str())
            .take(max)
            .collect()
    }
}

fn quoted(list: &[&str]) -> String {
    list.iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the page's URL says: the path and query for web pages, the file name for saved files.
fn url_words(url: &Url) -> String {
    if url.scheme() == "file" {
        return url
            .path_segments()
            .and_then(|mut s| s.next_back().map(percent_decode))
            .unwrap_or_default();
    }
    let mut s = percent_decode(url.path());
    if let Some(q) = url.query() {
        s.push(' ');
        s.push_str(&percent_decode(&q.replace('+', " ")));
    }
    s
}

/// Decides whether a page is sensitive.
pub fn assess(url: &Url, page: &Extracted, terms: &Terms) -> Sensitivity {
    let mut reasons = Vec::new();
    let mut said: Vec<&str> = Vec::new();
    let sources = [
        ("URL", url_words(url)),
        ("title", page.title.clone().unwrap_or_default()),
        ("text", page.text.clone()),
    ];
    for (what, text) in &sources {
        // Each term is named once, where it is first found.
        let new: Vec<&str> = terms
            .found(text, 10)
            .into_iter()
            .filter(|t| !said.contains(t))
            .take(5)
            .collect();
        if !new.is_empty() {
            reasons.push(format!("{what} contains {}", quoted(&new)));
            said.extend(new);
        }
    }
    for f in page
        .forms
        .iter()
        .filter(|f| !f.in_chrome && !f.search_only && !f.fields.is_empty())
    {
        let shown: Vec<&str> = f.fields.iter().take(6).map(String::as_str).collect();
        let more = if f.fields.len() > shown.len() {
            ", …"
        } else {
            ""
        };
        reasons.push(format!(
            "form collects {} field{}: {}{more}",
            f.fields.len(),
            if f.fields.len() == 1 { "" } else { "s" },
            shown.join(", ")
        ));
        if reasons.len() >= 8 {
            break;
        }
    }
    Sensitivity {
        sensitive: !reasons.is_empty(),
        reasons,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::audit::extract::{FormInfo, extract};

    #[test]
    fn words_not_substrings() {
        let t = Terms::defaults();
        assert_eq!(t.found("Rapeseed oil festival", 5), Vec::<&str>::new());
        assert_eq!(
            t.found("Reporting RAPE: what happens next", 5),
            vec!["rape"]
        );
        assert_eq!(t.found("/report-a-crime.html", 5), vec!["report a crime"]);
    }

    #[test]
    fn url_title_text_and_forms() {
        let u = Url::parse("https://www.force.test/report-a-crime/sexual%20assault?x=1").unwrap();
        let page = Extracted {
            title: Some("Contact us".into()),
            text: "If you are a victim".into(),
            forms: vec![
                FormInfo {
                    fields: vec!["search \"q\"".into()],
                    search_only: true,
                    ..FormInfo::default()
                },
                FormInfo {
                    fields: vec!["textarea".into()],
                    search_only: false,
                    ..FormInfo::default()
                },
            ],
            ..Extracted::default()
        };
        let s = assess(&u, &page, &Terms::defaults());
        assert!(s.sensitive);
        assert_eq!(
            s.reasons,
            vec![
                "URL contains \"report a crime\", \"sexual assault\"".to_owned(),
                "text contains \"victim\"".to_owned(),
                "form collects 1 field: textarea".to_owned(),
            ]
        );
        let clean = extract(
            "<title>Opening hours</title><header><form><input name=q></form></header><p>Front counters open 9 to 5.</p>",
            &Url::parse("https://www.force.test/opening-hours").unwrap(),
        );
        assert_eq!(
            assess(
                &Url::parse("https://www.force.test/opening-hours").unwrap(),
                &clean,
                &Terms::defaults()
            ),
            Sensitivity::default()
        );
    }

    #[test]
    fn terms_file() {
        let t =
            Terms::parse("# ours\nbenefit claim\n\n@defaults # and the rest\nBenefit   Claim\n");
        assert_eq!(t.len(), DEFAULT_TERMS.len() + 1);
        assert_eq!(t.found("Start a benefit-claim", 5), vec!["benefit claim"]);
        let file = Url::parse("file:///home/patient/site/about.html").unwrap();
        assert!(
            !assess(&file, &Extracted::default(), &t).sensitive,
            "only the file name counts"
        );
    }
}
