//! `voxd chat`: a conversation typed on standard input, answered through the reply
//! pipeline without a voice; tool calls are shown.

use std::io::BufRead;
use std::sync::Arc;

use anyhow::Result;

use crate::config::Config;
use crate::conversation::reply::{ReplyEvent, ReplyInput, ReplyRequest};
use crate::conversation::tools::Tools;
use crate::conversation::{Assistant, ReplySettings};
use crate::engines::llm::Llm;
use crate::engines::{ChatMessage, Role};

/// `voxd chat`: typed turns through the reply pipeline (no voice), tool calls shown.
pub fn run(cfg: &Config) -> Result<()> {
    let llm = Arc::new(Llm::load(&cfg.models.llm, &cfg.llm, 1, None)?);
    let tools = Tools::from_config(&cfg.tools);
    let assistant = Assistant::new(
        llm,
        &cfg.llm.system_prompt,
        tools,
        ReplySettings::from_config(cfg),
    );
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let mut memory: Vec<ChatMessage> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            break;
        }
        let request = ReplyRequest {
            memory: memory.clone(),
            input: ReplyInput::Words(line.clone()),
            rate: None,
            live: false,
            due: None,
        };
        let (mut pieces, mut tool) = (Vec::new(), None);
        rt.block_on(assistant.reply(request, &mut |ev| match ev {
            ReplyEvent::Speech { text, .. } => pieces.push(text),
            ReplyEvent::Done(end) => tool = end.tool,
            _ => {}
        }))?;
        let reply = pieces.join(" ");
        println!("{reply}");
        if let Some(tool) = tool {
            println!("[tool: {}] {tool:?}", tool.name());
        }
        memory.push(ChatMessage::new(Role::User, line));
        memory.push(ChatMessage::new(Role::Assistant, reply));
    }
    Ok(())
}
