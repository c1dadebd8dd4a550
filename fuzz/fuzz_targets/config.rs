//! Config text through the loader the CLI and every reload use (`Config::from_str`: TOML,
//! then validation), and a config that validates through what start-up builds from it: the
//! snapshot (lists, zone policies, the network table, the upstream set) and the pipeline.
//!
//! Beyond "never panics": a rejected config gets at least one error, and every error names the
//! file and has a message. Configs with a file list are validated only: a list path the fuzzer
//! invents is not opened (it could be a device that never ends).

#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use pixelguard::config::{Config, ListSource, Overrides};
use pixelguard::fuzzing::Harness;

/// A folder with nothing in it: relative paths resolve into it and find nothing.
static BASE: LazyLock<std::path::PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("pixelguard-fuzz-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the config folder");
    dir
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let base: &Path = &BASE;
    match Config::from_str(text, "fuzz.toml", base, &Overrides::default()) {
        Err(errors) => {
            assert!(!errors.0.is_empty(), "a config rejected without an error");
            for e in &errors.0 {
                assert_eq!(e.file, "fuzz.toml");
                assert!(!e.message.is_empty(), "an error without a message");
            }
            let _ = errors.to_string();
        }
        Ok(config) => {
            let files = config
                .lists
                .values()
                .any(|l| matches!(l.source, ListSource::File(_)));
            if !files {
                let _ = Harness::from_config(config);
            }
        }
    }
});
