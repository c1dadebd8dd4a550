//! List bodies through every list parser: the first byte picks the format (domains, hosts,
//! adblock, rpz, the TOML catalogue, or "guess", as for a list configured without `format`); the
//! rest is the list as downloaded. Runs the streaming line parser (`lists::parse::parse`), the
//! format guess, and the compile into a matcher (`lists::compile_bytes`, the path a download
//! and its disk copy take).
//!
//! Beyond "never panics": every rule the parser emits has a name that passes the list name
//! check, and the compiled matcher holds every such name; the report counts every rule.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pixelguard::config::{FetchOpts, ListConfig, ListFormat, ListSource};
use pixelguard::lists::{self, catalogue::Catalogue, name, parse};

const FORMATS: [Option<ListFormat>; 6] = [
    Some(ListFormat::Domains),
    Some(ListFormat::Hosts),
    Some(ListFormat::Adblock),
    Some(ListFormat::Rpz),
    Some(ListFormat::Catalogue),
    None,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(selector) % FORMATS.len()];
    let _ = parse::guess_format(body);

    let mut names = Vec::new();
    if let Some(f) = format.filter(|f| *f != ListFormat::Catalogue) {
        let report = parse::parse(lists::parser_format(f), body, |rule| {
            if let Err(e) = name::validate(&rule.name) {
                panic!(
                    "rule {:?} (line {}) is not a valid name: {e:?}",
                    rule.name, rule.line
                );
            }
            names.push(rule.name.into_owned());
        })
        .expect("reading from memory cannot fail");
        assert_eq!(report.rules, names.len() as u64);
        assert!(report.first_skipped.len() as u64 <= report.skipped_total());
    }
    if format == Some(ListFormat::Catalogue) {
        if let Ok(c) = Catalogue::parse(&String::from_utf8_lossy(body)) {
            for (host, _, _, _) in c.all_hosts() {
                let _ = host.len();
            }
            let _ = c.cloak_targets().count();
        }
    }

    let cfg = ListConfig {
        name: "fuzz".into(),
        source: ListSource::Url("https://lists.example/fuzz.txt".into()),
        format,
        fetch: FetchOpts::default(),
    };
    let compiled = lists::compile_bytes(&cfg, body, Path::new("fuzz.txt"));
    for n in &names {
        assert!(
            compiled.matcher.get(n).is_some(),
            "{n:?} was parsed but the compiled matcher does not hold it"
        );
    }
    let _ = (compiled.entries(), compiled.matcher.heap_bytes());
});
