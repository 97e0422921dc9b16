//! `voxd kb`: build the index, search it, and ask the LLM a question the way a call would.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use super::{Hit, KnowledgeBase};
use crate::config::Config;
use crate::engines::llm::Llm;
use crate::prompt::TurnPrompt;

/// `voxd kb index PATHS...`: (re)builds the index at `kb.index`.
pub fn index(cfg: &Config, paths: &[PathBuf]) -> Result<()> {
    let t = Instant::now();
    let s = super::build::build(paths, &cfg.kb.index)?;
    println!(
        "indexed {} passages from {} files into {} in {:.1} s{}",
        s.passages,
        s.files,
        cfg.kb.index.display(),
        t.elapsed().as_secs_f64(),
        if s.skipped > 0 {
            format!(" ({} other files skipped)", s.skipped)
        } else {
            String::new()
        }
    );
    if !cfg.kb.enabled {
        println!("set kb.enabled = true in the config and restart voxd to answer from it");
    }
    Ok(())
}

/// `voxd kb search QUESTION`: the best passages with their scores, as a call would get them
/// (`top` instead of `kb.top_k` when given).
pub fn search(cfg: &Config, question: &str, top: Option<usize>) -> Result<()> {
    let kb = KnowledgeBase::open(&cfg.kb.index, &cfg.kb)?;
    let t = Instant::now();
    let hits = kb.search_top(question, top.unwrap_or(cfg.kb.top_k as usize))?;
    let took = t.elapsed().as_secs_f64() * 1000.0;
    print_hits(&hits);
    eprintln!(
        "{} of {} passages in {took:.2} ms (kb.min_score {})",
        hits.len(),
        kb.passages(),
        cfg.kb.min_score
    );
    Ok(())
}

/// `voxd kb ask QUESTION`: the passages, then the LLM's answer to the question as the first
/// turn of a call (or the hand-off sentence when nothing matches).
pub fn ask(cfg: &Config, question: &str) -> Result<()> {
    let kb = KnowledgeBase::open(&cfg.kb.index, &cfg.kb)?;
    print_hits(&kb.search(question)?);
    let llm = Llm::load(&cfg.models.llm, &cfg.llm, 1)?;
    let goodbye = crate::turn::says_goodbye(question, &cfg.calls.hangup_phrases);
    let answer = match crate::prompt::for_turn(&llm, Some(&kb), &[], question, goodbye)? {
        TurnPrompt::Handoff(text) => text,
        TurnPrompt::Ask(messages) => {
            let rt = tokio::runtime::Builder::new_current_thread().build()?;
            rt.block_on(llm.reply(messages)?.collect(llm.max_sentences()))?
                .0
        }
    };
    println!("answer: {answer}");
    Ok(())
}

fn print_hits(hits: &[Hit]) {
    for (i, h) in hits.iter().enumerate() {
        let heading = if h.heading.is_empty() {
            String::new()
        } else {
            format!(" › {}", h.heading)
        };
        println!(
            "{}. [{:.2}] {}{heading}\n   {}",
            i + 1,
            h.score,
            h.source,
            h.text
        );
    }
}
