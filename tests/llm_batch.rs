//! The batched LLM on the real test model: replies written together as sequences of one
//! context, each call's conversation kept in its own sequence between turns, a new call's
//! prompt head copied from another sequence instead of evaluated again (and cached at
//! start), replies served by deadline (one due later waits), and a dropped reply (barge-in,
//! hang-up) freeing its place at once, queued or mid-generation.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{test_config, wait_until};
use voxd::conversation::{Assistant, ReplySettings};
use voxd::engines::llm::Llm;
use voxd::engines::schedule::{Deadline, Due};
use voxd::engines::{ChatMessage, LlmEvent, Role, TextStream};

fn llm(sequences: usize, max_reply_tokens: u32) -> Llm {
    let mut cfg = test_config();
    cfg.llm.max_reply_tokens = max_reply_tokens;
    Llm::load(&cfg.models.llm, &cfg.llm, sequences, None).unwrap()
}

fn ask(question: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(Role::System, test_config().llm.system_prompt),
        ChatMessage::new(Role::User, question),
    ]
}

/// A finished reply: its text and how many prompt tokens it evaluated (not cached).
struct Written {
    text: String,
    prompt_tokens: usize,
    prompt_evaluated: usize,
}

impl Written {
    /// Asserts that less than 1/`part` of the prompt was evaluated, the rest being cached
    /// (`what`: whose prompt, for the message).
    fn assert_mostly_cached(&self, part: usize, what: &str) {
        assert!(
            self.prompt_evaluated < self.prompt_tokens / part,
            "{what} evaluated {} of {} prompt tokens",
            self.prompt_evaluated,
            self.prompt_tokens
        );
    }
}

async fn written(mut stream: TextStream) -> Written {
    let mut text = String::new();
    loop {
        match stream.next().await.expect("the LLM stopped mid-reply") {
            LlmEvent::Text(t) => text.push_str(&t),
            LlmEvent::Done {
                prompt_tokens,
                prompt_evaluated,
                ..
            } => {
                return Written {
                    text,
                    prompt_tokens,
                    prompt_evaluated,
                }
            }
            LlmEvent::Error(e) => panic!("{e}"),
        }
    }
}

const QUESTIONS: [&str; 4] = [
    "What is the capital of France?",
    "Can you tell me when your office opens tomorrow?",
    "How do I reset my password?",
    "Do you deliver pizza on Sundays?",
];

#[tokio::test(flavor = "multi_thread")]
async fn replies_written_together_are_the_replies_written_alone() {
    let llm = llm(4, 24);
    let mut alone = Vec::new();
    for q in QUESTIONS {
        alone.push(written(llm.reply(ask(q), None).unwrap()).await.text);
    }
    // Each question again, all four at once: greedy decoding of the same prompt in its
    // own sequence gives the same words, whatever else is in the batch.
    let streams: Vec<_> = QUESTIONS
        .iter()
        .map(|q| llm.reply(ask(q), None).unwrap())
        .collect();
    let together = futures_util::future::join_all(streams.into_iter().map(written)).await;
    for (a, t) in alone.iter().zip(&together) {
        assert!(!a.trim().is_empty());
        assert_eq!(a, &t.text);
    }
    assert!(llm.tokens_generated() > 0);
    assert_eq!(llm.lane().running, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_call_keeps_its_conversation_cached_between_turns() {
    let llm = llm(2, 16);
    let mut a = ask("Hi there, I want to book a table for two.");
    let mut b = ask("Hello! Where is your office?");
    let first_a = written(llm.reply(a.clone(), None).unwrap()).await;
    // Another call's turn comes in between: it takes the other sequence.
    let first_b = written(llm.reply(b.clone(), None).unwrap()).await;
    for (convo, reply) in [(&mut a, first_a.text), (&mut b, first_b.text)] {
        convo.push(ChatMessage::new(Role::Assistant, reply));
        convo.push(ChatMessage::new(Role::User, "And tomorrow?"));
    }
    for convo in [a, b] {
        let next = written(llm.reply(convo, None).unwrap()).await;
        next.assert_mostly_cached(3, "the next turn");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_call_copies_the_prompt_head_from_another_sequence_and_writes_the_same_words() {
    let shared = llm(2, 24);
    let first = written(shared.reply(ask(QUESTIONS[0]), None).unwrap()).await;
    assert_eq!(first.prompt_evaluated, first.prompt_tokens);
    // A new call takes the empty sequence (the first call's conversation stays where it
    // is) with the shared head copied from the first one: only its own words are evaluated.
    let second = written(shared.reply(ask(QUESTIONS[1]), None).unwrap()).await;
    second.assert_mostly_cached(2, "the new call");
    // The copied cache is the one evaluating the head gives: the same greedy words as on a
    // fresh engine.
    let fresh = written(llm(1, 24).reply(ask(QUESTIONS[1]), None).unwrap()).await;
    assert_eq!(fresh.prompt_evaluated, fresh.prompt_tokens);
    assert!(!fresh.text.trim().is_empty());
    assert_eq!(second.text, fresh.text);
    // The first call's conversation was not thrown away for it.
    let mut again = ask(QUESTIONS[0]);
    again.push(ChatMessage::new(Role::Assistant, first.text));
    again.push(ChatMessage::new(Role::User, "Thanks!"));
    let next = written(shared.reply(again, None).unwrap()).await;
    next.assert_mostly_cached(3, "the first call's next turn");
}

#[tokio::test(flavor = "multi_thread")]
async fn warming_up_caches_the_prompt_head_for_the_first_call() {
    let cfg = test_config();
    let shared = Arc::new(llm(2, 16));
    let settings = ReplySettings::from_config(&cfg);
    let assistant = Assistant::new(shared.clone(), &cfg.llm.system_prompt, None, settings);
    assistant.warm_up().await.unwrap();
    let first = written(shared.reply(ask(QUESTIONS[2]), None).unwrap()).await;
    first.assert_mostly_cached(2, "the first call");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_due_later_waits_for_the_one_due_now() {
    let llm = llm(2, 16);
    let later = Due::new(Deadline::NONE);
    let mut waiting = llm
        .reply_by(ask(QUESTIONS[0]), None, later.clone())
        .unwrap();
    // The reply due now is written to its end while the other one has not started.
    let now = written(llm.reply(ask(QUESTIONS[1]), None).unwrap()).await;
    assert!(!now.text.is_empty());
    assert!(
        tokio::time::timeout(Duration::from_millis(1), waiting.next())
            .await
            .is_err(),
        "the reply nobody waits for yet was written first"
    );
    // Once its caller waits for it, it is written.
    later.set(Deadline::now());
    assert!(!written(waiting).await.text.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_reply_frees_its_place_at_once_queued_or_mid_generation() {
    let llm = llm(1, 400);
    let story = "Tell me a very long story about a dragon, a knight and a village.";
    let mut long = llm.reply(ask(story), None).unwrap();
    assert!(matches!(long.next().await, Some(LlmEvent::Text(_))));
    // A second reply waits for the one sequence; its caller hangs up while it waits.
    let queued = llm.reply(ask(QUESTIONS[0]), None).unwrap();
    assert_eq!(llm.lane().queued, 1);
    drop(queued);
    assert_eq!(
        llm.lane().queued,
        0,
        "a hung-up reply still counts as queued"
    );
    // The caller of the long reply barges in: generation stops at the next step.
    drop(long);
    let lane = wait_until("free sequence", Duration::from_secs(5), || async {
        match llm.lane() {
            l if l.running == 0 => Ok(l),
            l => Err(format!("{l:?}")),
        }
    })
    .await;
    assert_eq!((lane.queued, lane.places), (0, 1));
    let stopped_at = llm.tokens_generated();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        llm.tokens_generated(),
        stopped_at,
        "the dropped reply is still being written"
    );
    // The next caller's reply takes the sequence at once.
    let next = written(llm.reply(ask(QUESTIONS[1]), None).unwrap()).await;
    assert!(!next.text.is_empty());
}
