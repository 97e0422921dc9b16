//! A caller in another language on fake engines: with `conversation.language = "auto"` the
//! turn is answered with the heard language's head and the call keeps that language (a
//! one-word utterance heard as another does not change it); the reprompt and the voice
//! follow the call's language; without "auto" nothing follows the language.

use super::fakes::{
    bilingual_assistant, Harness, EN_PROMPT, EN_REPROMPT, EN_VOICE_RATE, RATE, RU_PROMPT,
    RU_REPROMPT,
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
    for (language, reprompt, voice) in [
        (Some("en"), EN_REPROMPT, EN_VOICE_RATE),
        (None, RU_REPROMPT, RATE),
    ] {
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
        assert_eq!(turn.reply_audio.rate, voice, "in the language's own voice");
        assert_eq!(
            turn.call_language.as_deref(),
            language,
            "silence changes nothing"
        );
    }
}

#[tokio::test]
async fn a_reply_is_spoken_in_the_voice_of_the_language_it_is_made_in() {
    let (a, _) = bilingual_assistant(
        &[
            ("Hello, when do you open tomorrow?", "en"),
            ("Скажите, пожалуйста, адрес.", "ru"),
        ],
        CallLanguage::Auto,
    );
    let speech = Pcm {
        samples: (0..RATE)
            .map(|i| if i % 2 == 0 { 0.2 } else { -0.2 })
            .collect(),
        rate: RATE,
    };
    let mut call = None;
    for (language, voice) in [("en", EN_VOICE_RATE), ("ru", RATE)] {
        let delivery = recording_turn::Delivery {
            rate: None,
            live: false,
            watch: &mut |_| {},
        };
        let mut timings = Timings::default();
        let turn =
            recording_turn::run(&a, Vec::new(), call, speech.clone(), delivery, &mut timings)
                .await
                .unwrap();
        assert_eq!(turn.call_language.as_deref(), Some(language));
        assert!(!turn.reply_audio.samples.is_empty());
        assert_eq!(turn.reply_audio.rate, voice, "answered in {language}");
        call = turn.call_language;
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
