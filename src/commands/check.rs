//! `voxd check`: for each engine, whether its files are present and match the `SHA256SUMS`
//! beside them, whether it loads, and which language it serves.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::audio::Pcm;
use crate::config::Config;
use crate::engines::llm::Llm;
use crate::engines::smart_turn::SmartTurn;
use crate::engines::stt::Stt;
use crate::engines::tts::{voice_config_path, Tts};

/// What the checksum of one file says.
#[derive(Debug, PartialEq)]
pub enum Checksum {
    /// Matches its line in this `SHA256SUMS`.
    Verified(PathBuf),
    /// No `SHA256SUMS` beside it, or the file is not listed there.
    NotPinned,
    /// Differs from its line in this `SHA256SUMS`.
    Mismatch {
        sums: PathBuf,
        expected: String,
        actual: String,
    },
}

/// Checks `file` against the `SHA256SUMS` in its directory (the format of `sha256sum`).
pub fn checksum(file: &Path) -> Result<Checksum> {
    let sums = file.with_file_name("SHA256SUMS");
    let Ok(text) = std::fs::read_to_string(&sums) else {
        return Ok(Checksum::NotPinned);
    };
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let expected = text.lines().find_map(|line| {
        let (hash, listed) = line.split_once(char::is_whitespace)?;
        (listed.trim_start().trim_start_matches('*') == name).then(|| hash.to_ascii_lowercase())
    });
    let Some(expected) = expected else {
        return Ok(Checksum::NotPinned);
    };
    let actual = sha256_hex(file)?;
    Ok(if actual == expected {
        Checksum::Verified(sums)
    } else {
        Checksum::Mismatch {
            sums,
            expected,
            actual,
        }
    })
}

fn sha256_hex(file: &Path) -> Result<String> {
    let mut f =
        std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(ctx
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The language a model-set manifest declares for this file: `manifest.toml` beside it (as
/// scripts/download-models leaves it) or one directory up (`models/` in the repository).
pub fn declared_language(file: &Path) -> Option<String> {
    let name = file.file_name()?.to_str()?;
    let dir = file.parent()?;
    [dir.join("manifest.toml"), dir.join("../manifest.toml")]
        .iter()
        .filter_map(|m| std::fs::read_to_string(m).ok())
        .filter_map(|text| text.parse::<toml::Table>().ok())
        .find_map(|manifest| {
            let sets = manifest.get("sets")?.as_table()?;
            sets.values()
                .filter_map(|set| set.get("files")?.as_array())
                .flatten()
                .find(|f| f.get("name").and_then(|n| n.as_str()) == Some(name))?
                .get("language")?
                .as_str()
                .map(String::from)
        })
}

/// The locale a Piper voice config names (`language.code`, e.g. `ru_RU`).
fn voice_locale(voice: &Path) -> Option<String> {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(voice_config_path(voice)).ok()?).ok()?;
    json["language"]["code"].as_str().map(String::from)
}

/// One line per file: size and checksum. Err for a missing file or a mismatch.
fn inspect(file: &Path) -> Result<String> {
    let meta = std::fs::metadata(file).map_err(|_| anyhow!("MISSING"))?;
    let size = match meta.len() {
        n if n < 1_000_000 => format!("present, {n} bytes"),
        n => format!("present, {:.1} MB", n as f64 / 1e6),
    };
    match checksum(file)? {
        Checksum::Verified(sums) => Ok(format!("{size}, sha256 ok ({})", sums.display())),
        Checksum::NotPinned => Ok(format!(
            "{size}, sha256 not pinned (no line for it in a SHA256SUMS beside it)"
        )),
        Checksum::Mismatch {
            sums,
            expected,
            actual,
        } => bail!(
            "{size}, sha256 MISMATCH: {actual}, {} says {expected}: the file is damaged or not \
             the pinned one; download it again (scripts/download-models)",
            sums.display()
        ),
    }
}

/// A loaded engine: the detail after "ok" and the language it serves.
struct Loaded {
    detail: String,
    language: String,
    /// What works but may not work well.
    warning: Option<String>,
}

/// Inspects the files, loads the engine unless a file fails its checksum, prints the report.
/// Returns whether everything passed.
fn engine(name: &str, files: &[&Path], load: impl FnOnce() -> Result<Loaded>) -> bool {
    let mut lines = Vec::new();
    let mut corrupt = false;
    for file in files {
        match inspect(file) {
            Ok(s) => lines.push(format!("  {}: {s}", file.display())),
            Err(e) => {
                corrupt |= file.exists();
                lines.push(format!("  {}: {e:#}", file.display()));
            }
        }
    }
    let loaded = if corrupt {
        Err(anyhow!("not loaded: a file failed its checksum"))
    } else {
        load()
    };
    let ok = match &loaded {
        Ok(l) => {
            println!("{name}: ok ({})", l.detail);
            if let Some(w) = &l.warning {
                println!("{name}: warning: {w}");
            }
            lines.push(format!("  language: {}", l.language));
            true
        }
        Err(e) => {
            println!("{name}: FAILED: {e:#}");
            false
        }
    };
    lines.iter().for_each(|l| println!("{l}"));
    ok
}

/// Runs the whole check; an error when anything failed.
pub fn run(cfg: &Config) -> Result<()> {
    println!(
        "config: ok (bind {}, token {})",
        cfg.server.bind,
        if cfg.server.token.is_empty() {
            "not set"
        } else {
            "set"
        }
    );
    for warning in &cfg.warnings {
        println!("config: warning: {warning}");
    }
    let m = &cfg.models;
    let mut failed = 0;
    let stt_ok = engine("stt", &[&m.stt], || {
        let stt = Stt::configured(cfg)?;
        let langs = if stt.multilingual() {
            "multilingual"
        } else {
            "English only"
        };
        let prompt = match stt.prompt_size() {
            (0, _) => String::new(),
            (tokens, 0) => format!(", a prompt of {tokens} tokens"),
            (tokens, headings) => {
                format!(", a prompt of {tokens} tokens with {headings} knowledge-base headings")
            }
        };
        Ok(Loaded {
            detail: format!("{}, {langs}{prompt}", m.stt.display()),
            language: format!("{langs} (stt.language = \"{}\")", cfg.stt.language),
            warning: None,
        })
    });
    let llm_ok = engine("llm", &[&m.llm], || {
        let llm = Llm::load(&m.llm, &cfg.llm, 1, None)?;
        Ok(Loaded {
            warning: llm.template_warning().map(String::from),
            detail: m.llm.display().to_string(),
            language: declared_language(&m.llm).map_or_else(
                || "any (the model declares none; no manifest.toml entry for it)".into(),
                |l| format!("{l} (manifest.toml)"),
            ),
        })
    });
    let tts_ok = check_voice("tts", &m.voice, "models.voice", None, cfg);
    let voices_ok = cfg.language_voices().into_iter().all(|(code, voice)| {
        let key = format!("languages.{code}.voice");
        check_voice(&format!("tts ({code})"), &voice, &key, Some(&code), cfg)
    });
    let turn_ok = m.turn.as_os_str().is_empty()
        || engine("turn", &[&m.turn, &m.onnxruntime], || {
            let model = SmartTurn::load(&m.turn, &m.onnxruntime, 1)?;
            // Half a second of a vowel-like tone, then the short silence: a test decision.
            let mut samples: Vec<f32> = (0..8000)
                .map(|i| 0.2 * (i as f32 * 140.0 * std::f32::consts::TAU / 16_000.0).sin())
                .collect();
            samples.extend([0.0; 3200]);
            let started = std::time::Instant::now();
            model.finished(&Pcm {
                samples,
                rate: 16_000,
            })?;
            Ok(Loaded {
                detail: format!(
                    "{}, end-of-turn model, {} ms a decision",
                    m.turn.display(),
                    started.elapsed().as_millis()
                ),
                language: "multilingual (23 languages, Russian and English among them)".into(),
                warning: None,
            })
        });
    if m.turn.as_os_str().is_empty() {
        println!("turn: off (models.turn is empty: turns end on silence and words alone)");
    }
    for ok in [stt_ok, llm_ok, tts_ok, voices_ok, turn_ok] {
        failed += usize::from(!ok);
    }
    if failed > 0 {
        bail!(
            "{failed} engine(s) failed the check; fix the paths in the config, or fetch the \
             models again (scripts/download-models, scripts/fetch-test-models for the test set)"
        );
    }
    println!("all engines load");
    Ok(())
}

/// Loads the Piper voice `voice` (set by `key`) and voices a test phrase; for a language's
/// own voice (`code`), warns when the voice speaks another language.
fn check_voice(name: &str, voice: &Path, key: &str, code: Option<&str>, cfg: &Config) -> bool {
    let json = voice_config_path(voice);
    engine(name, &[voice, &json, &cfg.models.onnxruntime], || {
        let tts = Tts::load_voice(voice, key, &cfg.models, &cfg.tts, 1)?;
        let pcm = tts.synthesize("Test.")?;
        let spoken = tts.language();
        let warning = code
            .filter(|c| tts.language_code() != *c)
            .map(|c| format!("{key} speaks {spoken}, not {c}: callers heard in {c} get it"));
        Ok(Loaded {
            detail: format!(
                "{}, voice language {spoken}, {} Hz, {:.2} s test phrase",
                voice.display(),
                tts.rate(),
                pcm.duration_secs()
            ),
            language: format!(
                "{} (espeak-ng voice {spoken})",
                voice_locale(voice).unwrap_or_else(|| "not named in the voice config".into()),
            ),
            warning,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_reads_sha256sum_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model.bin");
        std::fs::write(&file, b"abc").unwrap();
        assert_eq!(checksum(&file).unwrap(), Checksum::NotPinned);
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let sums = dir.path().join("SHA256SUMS");
        std::fs::write(&sums, format!("{abc}  other.bin\n")).unwrap();
        assert_eq!(checksum(&file).unwrap(), Checksum::NotPinned);
        std::fs::write(&sums, format!("{abc} *model.bin\n")).unwrap();
        assert_eq!(checksum(&file).unwrap(), Checksum::Verified(sums.clone()));
        std::fs::write(&file, b"abd").unwrap();
        assert!(matches!(
            checksum(&file).unwrap(),
            Checksum::Mismatch { expected, .. } if expected == abc
        ));
    }

    #[test]
    fn declared_language_comes_from_a_manifest_beside_or_above() {
        let dir = tempfile::tempdir().unwrap();
        let set = dir.path().join("ru");
        std::fs::create_dir(&set).unwrap();
        let manifest = "[[sets.ru.files]]\nname = \"q.gguf\"\nlanguage = \"ru, en\"\n";
        std::fs::write(dir.path().join("manifest.toml"), manifest).unwrap();
        assert_eq!(
            declared_language(&set.join("q.gguf")).as_deref(),
            Some("ru, en")
        );
        assert_eq!(declared_language(&set.join("other.gguf")), None);
    }
}
