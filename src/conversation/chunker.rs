//! The one place LLM text becomes spoken pieces: reads a [`TextStream`], hands out whole
//! sentences (or a first long clause) as soon as they are written, holds back the reply's
//! tail (a tool call or the `<hangup>` marker, never spoken) and parses that tail once.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use super::tools::{self, ToolCall, Tools};
use crate::engines::{LlmEvent, TextStream};
use crate::sentences;

/// A reply being read piece by piece.
pub struct Chunker {
    stream: TextStream,
    pending: String,
    /// The reply's tail once it has begun: a tool call or the hangup marker, never spoken.
    tail: Option<String>,
    /// The tools the reply may call (None: only the `<hangup>` marker counts).
    tools: Option<Tools>,
    done: bool,
    started: Instant,
    first_text: Option<Duration>,
    /// When the generation ended (its `Done` came).
    text_done: Option<Instant>,
}

impl Chunker {
    pub fn new(stream: TextStream, tools: Option<Tools>) -> Self {
        Self {
            stream,
            pending: String::new(),
            tail: None,
            tools,
            done: false,
            started: Instant::now(),
            first_text: None,
            text_done: None,
        }
    }

    /// The next piece to speak, as soon as the model has written it: a complete sentence
    /// (the last one may lack its end mark), or with `clause_words > 0` a clause of at least
    /// that many words (ending in a comma, semicolon, colon or dash). None at the end.
    pub async fn next_piece(&mut self, clause_words: usize) -> Result<Option<String>> {
        loop {
            // What may be spoken: not a tail that is still being written.
            let speakable =
                &self.pending[..self.pending.len() - tools::partial_tail(&self.pending)];
            let sentence = sentences::ends(speakable).first().copied();
            let clause = (clause_words > 0)
                .then(|| sentences::first_long_clause(speakable, clause_words))
                .flatten();
            if let Some(end) = [sentence, clause].into_iter().flatten().min() {
                let rest = self.pending.split_off(end);
                let piece = std::mem::replace(&mut self.pending, rest.trim_start().to_string());
                return Ok(Some(piece.trim().to_string()));
            }
            if self.done {
                let mut last = std::mem::take(&mut self.pending);
                last.truncate(last.len() - tools::partial_tail(&last));
                return Ok((!last.trim().is_empty()).then(|| last.trim().to_string()));
            }
            self.receive().await?;
        }
    }

    /// Takes in the next event: text goes to what is spoken until a tail begins, then to
    /// the tail.
    async fn receive(&mut self) -> Result<()> {
        match self.stream.next().await {
            Some(LlmEvent::Text(t)) => {
                self.first_text
                    .get_or_insert_with(|| self.started.elapsed());
                match self.tail.as_mut() {
                    Some(tail) => tail.push_str(&t),
                    None => {
                        self.pending.push_str(&t);
                        if let Some(i) = tools::tail_start(&self.pending) {
                            self.tail = Some(self.pending.split_off(i));
                        }
                    }
                }
            }
            Some(LlmEvent::Done { .. }) => {
                self.done = true;
                self.text_done = Some(Instant::now());
            }
            Some(LlmEvent::Error(e)) => return Err(anyhow!(e)),
            None => return Err(anyhow!("LLM worker stopped mid-reply")),
        }
        Ok(())
    }

    /// Whether the tail is whole: the marker, or a call with its closing tag.
    fn tail_complete(&self) -> bool {
        self.tail
            .as_deref()
            .is_some_and(|t| t.starts_with(tools::HANGUP_MARKER) || t.contains(tools::CALL_CLOSE))
    }

    /// Lets the generation run to its end without speaking more of it, and returns the
    /// tool the reply called, if any. Without tools only the hangup marker counts; an
    /// unusable call is logged and ignored.
    pub async fn finish(&mut self) -> Result<Option<ToolCall>> {
        // Without tools a reply is not read past what was spoken.
        while !self.done && (self.tools.is_some() || self.tail.is_some()) && !self.tail_complete() {
            self.receive().await?;
        }
        let Some(tail) = &self.tail else {
            return Ok(None);
        };
        let Some(available) = &self.tools else {
            return Ok(tail
                .starts_with(tools::HANGUP_MARKER)
                .then_some(ToolCall::Hangup));
        };
        match tools::parse(tail, available) {
            Ok(call) => Ok(Some(call)),
            Err(e) => {
                tracing::warn!("tool call ignored: {e}");
                Ok(None)
            }
        }
    }

    /// Time from the request to the first piece of text, once there is one.
    pub fn first_text(&self) -> Option<Duration> {
        self.first_text
    }

    /// When the model finished writing, if the reply was read to its end.
    pub fn text_done(&self) -> Option<Instant> {
        self.text_done
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use super::*;

    /// A chunker over a finished generation that wrote `parts`.
    fn chunker(parts: &[&str], tools: Option<Tools>) -> Chunker {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for p in parts {
            tx.send(LlmEvent::Text(p.to_string())).unwrap();
        }
        tx.send(LlmEvent::Done {
            prompt_tokens: 1,
            prompt_evaluated: 1,
            generated: parts.len(),
        })
        .unwrap();
        Chunker::new(TextStream::new(rx, Arc::new(AtomicBool::new(false))), tools)
    }

    async fn pieces(c: &mut Chunker, clause_words: usize) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(p) = c.next_piece(clause_words).await.unwrap() {
            out.push(p);
        }
        out
    }

    #[tokio::test]
    async fn sentences_come_out_whole_across_token_boundaries() {
        let mut c = chunker(&["We op", "en at 9. Par", "king is fr", "ee"], None);
        assert_eq!(
            pieces(&mut c, 0).await,
            ["We open at 9.", "Parking is free"]
        );
        assert_eq!(c.finish().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_long_first_clause_is_a_piece_of_its_own() {
        let mut c = chunker(&["Well, of course we are open today, ", "until six."], None);
        assert_eq!(
            c.next_piece(4).await.unwrap().unwrap(),
            "Well, of course we are open today,"
        );
        assert_eq!(pieces(&mut c, 0).await, ["until six."]);
    }

    #[tokio::test]
    async fn the_hangup_marker_is_never_spoken_even_split_across_tokens() {
        let mut c = chunker(&["Goodbye! <han", "gup>"], None);
        assert_eq!(pieces(&mut c, 0).await, ["Goodbye!"]);
        assert_eq!(c.finish().await.unwrap(), Some(ToolCall::Hangup));
    }

    #[tokio::test]
    async fn a_tool_call_after_the_spoken_text_is_parsed_once() {
        let tools = Tools {
            transfer: true,
            examples: Vec::new(),
            phone_country: crate::config::PhoneCountry::Ru,
            send_digits: false,
        };
        let call = "<tool_call>{\"name\": \"transfer\"}</tool_call>";
        let mut c = chunker(&["One moment please.", call], Some(tools));
        assert_eq!(pieces(&mut c, 0).await, ["One moment please."]);
        assert_eq!(c.finish().await.unwrap(), Some(ToolCall::Transfer));
    }
}
