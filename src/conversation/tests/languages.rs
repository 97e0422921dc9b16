//! A caller in another language on fake engines: with `conversation.language = "auto"` the
//! turn is answered with the heard language's head and the call keeps that language (a
//! one-word utterance heard as another does not change it); the reprompt follows the call's
//! language; without "auto" nothing follows the language.

use super::fakes::{
    bilingual_assistant, Harness, EN_PROMPT, EN_REPROMPT, RATE, RU_PROMPT, RU_REPROMPT,
};
use super::recording_turn;
use crate::audio::Pcm;
use crate::config::CallLanguage;
use crate::conversation::reply::Timings;
use crate::engines::{ChatMessage, Role};

/// The system message of each prompt the LLM was given.
fn system_prompts(prompts: &[Vec<ChatMessage>]) -> Vec<String> {
    prompts
        .iter()
        .map(|p| {
            assert_eq!(p[0].role, Role::System);
            p[0].content.clone()
        })
        .collect()
}

/// Lets the caller say one turn and voxd answer it.
async fn one_turn(h: &mut Harness) {
    h.caller_turn();
    h.advance(100);
    h.settle().await;
    h.play_out();
}

#[tokio::test]
async fn an_english_caller_on_an_auto_russian_line_is_answered_in_english_and_stays_so() {
    let (a, llm) = bilingual_assistant(
        &[
            ("Hello, when do you open tomorrow?", "en"),
            ("Да.", "ru"),
            ("Скажите, пожалуйста, адрес.", "ru"),
        ],
        CallLanguage::Auto,
    );
    let mut h = Harness::new(a, "");
    assert_eq!(h.call.language(), None);
    one_turn(&mut h).await;
    assert_eq!(h.call.language().as_deref(), Some("en"));
    one_turn(&mut h).await;
    assert_eq!(
        h.call.language().as_deref(),
        Some("en"),
        "one word heard as Russian keeps English"
    );
    one_turn(&mut h).await;
    assert_eq!(h.call.language().as_deref(), Some("ru"));
    let prompts = llm.prompts.lock().unwrap().clone();
    assert_eq!(
        system_prompts(&prompts),
        [EN_PROMPT, EN_PROMPT, RU_PROMPT],
        "the head follows the call's language"
    );
    let live = h.call.live_view();
    assert_eq!(live["language"], "ru", "{live}");
}

#[tokio::test]
async fn the_reprompt_follows_the_calls_language() {
    let (a, _) = bilingual_assistant(&[("", ""), ("", "")], CallLanguage::Auto);
    let silence = Pcm {
        samples: vec![0.0; RATE as usize],
        rate: RATE,
    };
    for (language, reprompt) in [(Some("en"), EN_REPROMPT), (None, RU_REPROMPT)] {
        let delivery = recording_turn::Delivery {
            rate: None,
            live: false,
            watch: &mut |_| {},
        };
        let call = language.map(String::from);
        let mut timings = Timings::default();
        let turn = recording_turn::run(
            &a,
            Vec::new(),
            call,
            silence.clone(),
            delivery,
            &mut timings,
        )
        .await
        .unwrap();
        assert_eq!(turn.reply_text, reprompt);
        assert_eq!(
            turn.call_language.as_deref(),
            language,
            "silence changes nothing"
        );
    }
}

#[tokio::test]
async fn without_auto_every_turn_gets_the_base_keys() {
    let (a, llm) = bilingual_assistant(
        &[("Hello, when do you open tomorrow?", "en")],
        CallLanguage::Base,
    );
    let mut h = Harness::new(a, "");
    one_turn(&mut h).await;
    assert_eq!(h.call.language(), None);
    let prompts = llm.prompts.lock().unwrap().clone();
    assert_eq!(system_prompts(&prompts), [RU_PROMPT]);
}
