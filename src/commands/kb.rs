//! `voxd kb`: build the index, search it, and ask the LLM a question the way a call would.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use crate::config::Config;
use crate::conversation::reply::{ReplyEvent, ReplyInput, ReplyRequest};
use crate::conversation::tools::Tools;
use crate::conversation::{Assistant, ReplySettings};
use crate::engines::llm::Llm;
use crate::kb::{build, Hit, KnowledgeBase};

/// `voxd kb index PATHS...`: (re)builds the index at `kb.index`.
pub fn index(cfg: &Config, paths: &[PathBuf]) -> Result<()> {
    let t = Instant::now();
    let s = build::build(paths, &cfg.kb.index)?;
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
    let llm = std::sync::Arc::new(Llm::load(&cfg.models.llm, &cfg.llm, 1, None)?);
    let tools = Tools::from_config(&cfg.tools);
    let settings = ReplySettings::from_config(cfg);
    let assistant = Assistant::new(llm, &cfg.llm.system_prompt, tools, settings).with_kb(Some(kb));
    let request = ReplyRequest {
        memory: Vec::new(),
        input: ReplyInput::Words(question.to_string()),
        rate: None,
        live: false,
        due: None,
    };
    let (mut pieces, mut tool) = (Vec::new(), None);
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    rt.block_on(assistant.reply(request, &mut |ev| match ev {
        ReplyEvent::Speech { text, .. } => pieces.push(text),
        ReplyEvent::Done(end) => tool = end.tool,
        _ => {}
    }))?;
    println!("answer: {}", pieces.join(" "));
    if let Some(tool) = tool {
        println!("tool: {} {tool:?}", tool.name());
    }
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
