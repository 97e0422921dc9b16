//! `voxd kb index`: reads the company's documents, splits them into passages and writes a
//! fresh index, swapped in whole for the old one (a daemon that has the old one open keeps
//! reading it until it restarts).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tantivy::{Index, IndexWriter, TantivyDocument};

use super::passages::{self, Format, Passage};
use super::{analyzer, Fields, MARKER};

/// What an indexing run read and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub files: usize,
    pub passages: usize,
    /// Files inside the given folders that are not .txt, .md or .html.
    pub skipped: usize,
}

/// Indexes the documents at `paths` (files, or folders searched recursively) into `dir`,
/// replacing the index there.
pub fn build(paths: &[PathBuf], dir: &Path) -> Result<Summary> {
    let mut files = Vec::new();
    let mut skipped = 0;
    for p in paths {
        if p.is_dir() {
            walk(p, &mut files, &mut skipped)?;
        } else if p.is_file() {
            if Format::of(p).is_none() {
                bail!(
                    "{}: not a .txt, .md or .html file (the knowledge base reads those)",
                    p.display()
                );
            }
            files.push(p.clone());
        } else {
            bail!("{}: no such file or folder", p.display());
        }
    }
    let mut all: Vec<Passage> = Vec::new();
    for f in &files {
        let text = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
        let text = String::from_utf8(text)
            .with_context(|| format!("{} is not UTF-8 text", f.display()))?;
        let format = Format::of(f).unwrap_or(Format::Text);
        all.extend(passages::split(&f.display().to_string(), &text, format));
    }
    if all.is_empty() {
        bail!("no text found to index: give .txt, .md or .html files, or folders of them");
    }
    write_index(&all, dir)?;
    Ok(Summary {
        files: files.len(),
        passages: all.len(),
        skipped,
    })
}

/// The documents under `dir`, in name order; hidden files and folders are left out.
fn walk(dir: &Path, files: &mut Vec<PathBuf>, skipped: &mut usize) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot read folder {}", dir.display()))?;
    entries.sort();
    for p in entries {
        let hidden = p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            walk(&p, files, skipped)?;
        } else if Format::of(&p).is_some() {
            files.push(p);
        } else {
            *skipped += 1;
        }
    }
    Ok(())
}

/// Writes the passages into a new folder beside `dir`, then puts it in `dir`'s place.
fn write_index(all: &[Passage], dir: &Path) -> Result<()> {
    if dir.exists() && !dir.join(MARKER).is_file() && !is_empty_dir(dir) {
        bail!(
            "{} exists and is not a knowledge base index: choose another kb.index",
            dir.display()
        );
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kb".into());
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = parent.unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create folder {}", parent.display()))?;
    let fresh = parent.join(format!(".{name}.new-{}", std::process::id()));
    let result = fill(all, &fresh).and_then(|()| swap(&fresh, dir));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&fresh);
    }
    result
}

fn fill(all: &[Passage], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (schema, fields) = Fields::schema();
    let index = Index::create_in_dir(dir, schema)
        .with_context(|| format!("cannot create an index in {}", dir.display()))?;
    index
        .tokenizers()
        .register(analyzer::NAME, analyzer::analyzer());
    let mut writer: IndexWriter = index.writer_with_num_threads(1, 50_000_000)?;
    for p in all {
        let mut doc = TantivyDocument::default();
        doc.add_text(fields.source, &p.source);
        doc.add_text(fields.heading, &p.heading);
        doc.add_text(fields.text, &p.text);
        writer.add_document(doc)?;
    }
    writer.commit()?;
    writer.wait_merging_threads()?;
    std::fs::write(dir.join(MARKER), "voxd knowledge base index\n")?;
    Ok(())
}

/// Replaces `dir` by `fresh` (the old index, if any, is removed).
fn swap(fresh: &Path, dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot remove the old index {}", dir.display()))?;
    }
    std::fs::rename(fresh, dir)
        .with_context(|| format!("cannot move the new index to {}", dir.display()))
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}
