//! Secrets from systemd credentials (`LoadCredential=` puts them in `$CREDENTIALS_DIRECTORY`,
//! readable by voxd alone): the tokens and the Voximplant key, kept out of the config file.
//!
//! A file named after its key (`server.admin_token`, or `voxd_server.admin_token` as the unit's
//! `LoadCredential=voxd:/etc/voxd/credentials` names the files of that directory) sets the key.
//! The config file comes first, a credential over it, a `VOXD_*` variable over both.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// The keys a credential may set. `voximplant.credentials` is a key file's path: the
/// credential's own path is used; the others take the file's text.
const SECRETS: [&str; 5] = [
    "server.token",
    "server.scenario_token",
    "server.admin_token",
    "voximplant.api_key",
    "voximplant.credentials",
];

/// The prefix of the names systemd gives a directory's files (`LoadCredential=voxd:DIR`).
const UNIT_PREFIX: &str = "voxd_";

/// Largest credential read (a token or an API key is far smaller).
const MAX_BYTES: u64 = 64 * 1024;

/// Applies the credentials in `dir` (`$CREDENTIALS_DIRECTORY`) to the config table. Returns
/// warnings: a key the file sets too, a file that names no secret.
pub(super) fn apply_credentials(table: &mut toml::Table, dir: &Path) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the credentials in {}", dir.display()))?;
    let mut names: Vec<_> = entries
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot read the credentials in {}", dir.display()))?;
    names.sort();
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let key = name.strip_prefix(UNIT_PREFIX).unwrap_or(&name);
        if !SECRETS.contains(&key) {
            warnings.push(format!(
                "credential {name:?} names no voxd secret and is ignored (the names are {})",
                SECRETS.join(", ")
            ));
            continue;
        }
        let path = dir.join(&name);
        let value = if key == "voximplant.credentials" {
            path.to_string_lossy().into_owned()
        } else {
            read_secret(&path)?
        };
        let (section, field) = key.split_once('.').expect("SECRETS are section.key");
        let entry = table
            .entry(section)
            .or_insert_with(|| toml::Value::Table(Default::default()));
        let Some(section_table) = entry.as_table_mut() else {
            bail!("config section [{section}] is not a table");
        };
        let before = section_table.insert(field.into(), toml::Value::String(value));
        if before.is_some_and(|v| v.as_str() != Some("")) {
            warnings.push(format!(
                "{key} is set in the config file and as a credential: the credential is used \
                 (remove it from the file)"
            ));
        }
    }
    Ok(warnings)
}

/// A token's text: UTF-8, without the line end an editor or `echo` leaves, not empty.
fn read_secret(path: &Path) -> Result<String> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read credential {}", path.display()))?
        .len();
    if size > MAX_BYTES {
        bail!(
            "credential {} holds {size} bytes, more than a secret's {MAX_BYTES}",
            path.display()
        );
    }
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read credential {}", path.display()))?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("credential {} is not UTF-8 text", path.display()))?;
    let text = text.trim_end_matches(['\n', '\r']);
    if text.trim().is_empty() {
        bail!("credential {} is empty", path.display());
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_from(files: &[(&str, &str)], toml: &str) -> (Result<Vec<String>>, toml::Table) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let mut table: toml::Table = toml::from_str(toml).unwrap();
        let got = apply_credentials(&mut table, dir.path());
        (got, table)
    }

    #[test]
    fn credentials_set_their_keys_with_or_without_the_units_prefix() {
        let (warnings, t) = table_from(
            &[
                ("voxd_server.scenario_token", "scen-123\n"),
                ("server.admin_token", "adm 456"),
                ("voxd_voximplant.credentials", "{}"),
                ("voxd_notes.txt", "hello"),
            ],
            "[server]\nadmin_token = \"old\"\nscenario_token = \"\"\n",
        );
        let warnings = warnings.unwrap();
        assert_eq!(t["server"]["scenario_token"].as_str(), Some("scen-123"));
        assert_eq!(t["server"]["admin_token"].as_str(), Some("adm 456"));
        let key_file = t["voximplant"]["credentials"].as_str().unwrap();
        assert!(
            key_file.ends_with("/voxd_voximplant.credentials"),
            "{key_file}"
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("server.admin_token is set in the config file"));
        assert!(warnings[1].starts_with("credential \"voxd_notes.txt\" names no voxd secret"));
    }

    #[test]
    fn empty_oversized_or_binary_credentials_are_errors_naming_the_file() {
        for (text, want) in [
            ("\n".to_string(), "is empty"),
            ("x".repeat(70_000), "more than a secret's"),
        ] {
            let (got, _) = table_from(&[("server.token", &text)], "");
            let err = format!("{:#}", got.unwrap_err());
            assert!(err.contains("server.token") && err.contains(want), "{err}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server.token"), [0xff, 0xfe]).unwrap();
        let err = apply_credentials(&mut toml::Table::new(), dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("not UTF-8"), "{err:#}");
        let missing = dir.path().join("absent");
        let err = apply_credentials(&mut toml::Table::new(), &missing).unwrap_err();
        assert!(format!("{err:#}").contains("cannot read the credentials in"));
    }
}
