//! `VOXD_<SECTION>_<KEY>` environment overrides of the configuration.

use anyhow::{bail, Result};

use super::conversation::legacy;
use super::Config;

/// `VOXD_*` variables that are not config keys: the config file's path, and what the
/// scripts, benchmarks and tests read.
const NOT_KEYS: [&str; 6] = [
    "VOXD_CONFIG",
    "VOXD_BIN",
    "VOXD_BENCH_RUNS",
    "VOXD_GGML_CMAKE_ARGS",
    "VOXD_TEST_LOG",
    "VOXD_TEST_THREADS",
];

/// Applies `VOXD_<SECTION>_<KEY>=value` for every key the defaults know. Values are read as
/// TOML literals when they parse (numbers, booleans, arrays), else as plain strings.
/// Returns a warning for each `VOXD_*` variable that names no key (a typo would otherwise
/// be ignored without a word, while an unknown key in the file is an error).
pub(super) fn apply_env_overrides(
    table: &mut toml::Table,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let mut defaults = toml::Table::try_from(Config::default())?;
    // The old `[stream]` keys, so `VOXD_STREAM_*` still work (moved, with a warning).
    let mut stream = toml::Table::new();
    for (key, section) in legacy::MOVED {
        if let Some(v) = defaults.get(section).and_then(|s| s.get(key)) {
            stream.insert(key.to_string(), v.clone());
        }
    }
    defaults.insert("stream".into(), toml::Value::Table(stream));
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix("VOXD_") else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let found = defaults.iter().find_map(|(section, keys)| {
            let key = rest.strip_prefix(section.as_str())?.strip_prefix('_')?;
            let default = keys.as_table()?.get(key)?;
            Some((section.clone(), key.to_string(), default.is_str()))
        });
        let Some((section, key, is_string)) = found else {
            if !NOT_KEYS.contains(&name.as_str()) {
                warnings.push(format!(
                    "{name} names no config key and is ignored (the form is \
                     VOXD_<SECTION>_<KEY>, e.g. VOXD_SERVER_BIND; see voxd.example.toml)"
                ));
            }
            continue;
        };
        // A string key takes the text as it is (an all-digit token or key stays a string).
        let value = (!is_string)
            .then(|| toml::from_str::<toml::Table>(&format!("v = {raw}")).ok())
            .flatten()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(raw));
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        let Some(section_table) = entry.as_table_mut() else {
            bail!("config section [{section}] is not a table");
        };
        section_table.insert(key, value);
    }
    Ok(warnings)
}
