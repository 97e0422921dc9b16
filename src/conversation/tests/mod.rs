//! The conversation and the reply pipeline on fake engines ([`fakes`]: scripted
//! transcripts and replies, a voice that makes 10 ms of audio per character) with a
//! test-driven clock: deterministic and fast, no model involved.

mod fakes;
mod languages;

use std::sync::Arc;

use super::assistant::Stop;
use super::recording_turn;
use super::reply::{Action, ReplyEvent, ReplyInput, ReplyRequest, Timings};
use super::tools::{ToolCall, Tools};
use super::turn_detector::{buzz, TurnEvent};
use super::{Assistant, Effect, Output, Update};
use crate::audio::Pcm;
use crate::engines::schedule::Deadline;
use crate::engines::{ChatMessage, Role};
use fakes::{
    assistant, assistant_hearing, assistant_with_turn_model, FakeLlm, FakeStt, FakeTurnModel,
    Harness, RATE,
};

fn message(role: Role, text: &str) -> ChatMessage {
    ChatMessage::new(role, text)
}

#[tokio::test]
async fn a_turn_is_answered_piece_by_piece_up_to_the_sentence_limit() {
    let (a, llm) = assistant(
        &["When do you open?"],
        "We open at nine. Parking is free. Anything else?",
        None,
    );
    let mut h = Harness::new(a, "");
    h.caller_turn();
    h.advance(120);
    h.settle().await;
    h.play_out();
    assert_eq!(
        h.texts(),
        [
            "heard When do you open?",
            "replying We open at nine.",
            "replying Parking is free.",
            "AudioStart",
            "AudioStop",
            "said We open at nine. Parking is free.",
        ]
    );
    let frames = h
        .out
        .iter()
        .filter(|o| matches!(o, Output::Audio(_)))
        .count();
    assert_eq!(
        frames,
        (16 + 16) * 10 / 20,
        "every 20 ms frame of both pieces"
    );
    let (_, latency, interrupted) = h.said()[0].clone();
    assert!(!interrupted);
    assert!(latency.is_some_and(|ms| ms >= 120.0), "{latency:?}");
    assert_eq!(
        h.call.memory(),
        [
            message(Role::User, "When do you open?"),
            message(Role::Assistant, "We open at nine. Parking is free.")
        ]
    );
    assert_eq!(h.call.turns(), 1);
    let prompt = llm.prompts.lock().unwrap()[0].clone();
    assert_eq!(prompt[0], message(Role::System, "Be brief."));
    assert_eq!(
        prompt.last().unwrap(),
        &message(Role::User, "When do you open?")
    );
}

#[tokio::test]
async fn the_next_turn_sees_the_conversation_so_far() {
    let (a, llm) = assistant(&["Hi.", "And on Sunday?"], "Yes.", None);
    let mut h = Harness::new(a, "");
    for _ in 0..2 {
        h.caller_turn();
        h.settle().await;
        h.play_out();
    }
    let prompts = llm.prompts.lock().unwrap();
    assert_eq!(
        prompts[1][1..],
        [
            message(Role::User, "Hi."),
            message(Role::Assistant, "Yes."),
            message(Role::User, "And on Sunday?")
        ]
    );
}

/// A call whose caller asked about prices, with 0.3 s of voxd's 0.72 s first sentence played.
async fn talking_about_prices() -> (Harness, Arc<FakeLlm>) {
    let (a, llm) = assistant(
        &["Tell me about prices."],
        "Our basic plan costs ten euros a month and includes everything you need.",
        None,
    );
    let mut h = Harness::new(a, "");
    h.caller_turn();
    h.settle().await;
    h.advance(10);
    h.advance(300);
    assert!(h.conversation.speaking(h.now));
    (h, llm)
}

/// A reply of two sentences, 0.73 s and 0.8 s long.
const TWO_PLANS: &str = "Our basic plan costs ten euros a month and includes everything you \
                         need. The premium plan costs twenty euros and adds priority support.";

/// voxd 0.3 s into its reply about prices (1.6 s), the caller's next words scripted.
async fn interrupted_with(words: &str) -> Harness {
    // Speech over voxd is transcribed when it pauses, and again as a turn.
    let (a, _) = assistant(&["Tell me about prices.", words, words], TWO_PLANS, None);
    let mut h = Harness::new(a, "");
    h.caller_turn();
    h.settle().await;
    h.advance(10);
    h.advance(300);
    assert!(h.conversation.speaking(h.now));
    h
}

fn cleared(h: &Harness) -> bool {
    h.texts().contains(&"Clear".to_string())
}

#[tokio::test]
async fn barge_in_cuts_the_reply_and_memory_keeps_only_what_was_heard() {
    let mut h = interrupted_with("Wait, is there a discount?").await;
    // Speech over voxd for longer than a backchannel: voxd stops at 350 ms of it.
    h.hear(&buzz(320, RATE as usize));
    assert!(
        !cleared(&h),
        "still possibly a backchannel: {:?}",
        h.texts()
    );
    h.hear(&buzz(200, RATE as usize));
    assert!(cleared(&h), "{:?}", h.texts());
    assert!(!h.conversation.speaking(h.now));
    // What voxd said is kept once the caller's words are known.
    h.hear(&[0; RATE as usize]);
    h.settle().await;
    let said = h.said();
    assert_eq!(said.len(), 1, "{said:?}");
    let (text, _, interrupted) = &said[0];
    assert!(interrupted);
    assert!(
        text.starts_with("Our basic plan") && text.ends_with('…'),
        "{text}"
    );
    assert_eq!(h.call.memory()[1], message(Role::Assistant, text));
    h.play_out();
    assert_eq!(
        h.call.memory()[2],
        message(Role::User, "Wait, is there a discount?")
    );
}

#[tokio::test]
async fn a_backchannel_over_voxd_does_not_stop_it() {
    for words in ["Угу.", "Mm-hm.", ""] {
        let mut h = interrupted_with(words).await;
        h.hear(&buzz(200, RATE as usize));
        h.hear(&[0; 4 * RATE as usize / 10]);
        h.next_update().await;
        h.play_out();
        assert!(!cleared(&h), "{words}: {:?}", h.texts());
        let said = h.said();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(!said[0].2, "{words}: not interrupted");
        assert_eq!(h.call.memory().len(), 2, "{words}: no turn of the caller's");
    }
}

#[tokio::test]
async fn short_words_over_voxd_that_are_no_backchannel_interrupt_it() {
    let mut h = interrupted_with("Stop.").await;
    h.hear(&buzz(200, RATE as usize));
    h.hear(&[0; 4 * RATE as usize / 10]);
    h.next_update().await;
    assert!(cleared(&h), "{:?}", h.texts());
    h.hear(&[0; RATE as usize / 2]);
    h.settle().await;
    h.play_out();
    assert_eq!(h.call.memory()[2], message(Role::User, "Stop."));
}

#[tokio::test]
async fn words_over_voxd_still_being_heard_when_it_finishes_are_a_turn() {
    let mut h = interrupted_with("Any discounts?").await;
    // Short words over voxd, over before it finishes: heard out, not yet transcribed.
    h.hear(&buzz(200, RATE as usize));
    h.hear(&[0; 7 * RATE as usize / 10]);
    assert!(h.conversation.speaking(h.now));
    // voxd finishes; the caller is quiet; then the words are known.
    h.advance(1500);
    h.hear(&[0; RATE as usize / 50]);
    assert!(!h.conversation.speaking(h.now));
    h.next_update().await;
    h.settle().await;
    h.play_out();
    assert_eq!(h.call.memory()[2], message(Role::User, "Any discounts?"));
}

#[tokio::test]
async fn an_interruption_without_words_resumes_the_reply_from_the_cut_sentence() {
    let mut h = interrupted_with("").await;
    h.hear(&buzz(700, RATE as usize));
    assert!(cleared(&h), "{:?}", h.texts());
    let cut = h.now;
    // The cough is transcribed in the pause (no words), and its turn ends.
    h.hear(&[0; 6 * RATE as usize / 10]);
    h.settle().await;
    h.hear(&[0; 4 * RATE as usize / 10]);
    assert!(h.conversation.speaking(h.now), "{:?}", h.texts());
    assert!(h.now.duration_since(cut) < std::time::Duration::from_secs(2));
    h.play_out();
    let starts = h.texts().iter().filter(|t| *t == "AudioStart").count();
    assert_eq!(starts, 2, "{:?}", h.texts());
    let said = h.said();
    assert_eq!(said.len(), 1, "one reply, said once: {said:?}");
    assert_eq!(said[0].0, TWO_PLANS);
    assert!(!said[0].2);
    assert_eq!(h.call.memory().len(), 2, "the cough is no turn");
}

#[tokio::test]
async fn a_goodbye_ends_the_call_once_the_reply_has_played() {
    let (a, _) = assistant(&["Thanks, goodbye!"], "Goodbye, have a nice day.", None);
    let mut h = Harness::new(a, "");
    h.caller_turn();
    h.settle().await;
    h.advance(10);
    assert!(!h.out.contains(&Output::Hangup), "not while voxd talks");
    h.play_out();
    h.advance(10);
    assert_eq!(h.out.iter().filter(|o| **o == Output::Hangup).count(), 1);
}

#[tokio::test]
async fn a_tool_call_is_acted_on_and_never_spoken() {
    let tools = Tools {
        transfer: true,
        examples: Vec::new(),
        phone_country: crate::config::PhoneCountry::Ru,
        send_digits: false,
    };
    let reply = "Let me connect you. <tool_call>{\"name\": \"transfer\"}</tool_call>";
    let (a, _) = assistant(&["I want a person."], reply, Some(tools));
    let mut h = Harness::new(a, "");
    h.caller_turn();
    h.settle().await;
    assert!(h.out.contains(&Output::Tool(ToolCall::Transfer)));
    h.play_out();
    h.advance(10);
    assert!(h.out.contains(&Output::Transfer), "{:?}", h.texts());
    assert_eq!(h.said()[0].0, "Let me connect you.");
}

#[tokio::test]
async fn the_greeting_is_a_fixed_reply_through_the_same_road() {
    let (a, llm) = assistant(&[], "unused", None);
    let mut h = Harness::new(a, "Hello! How can I help?");
    h.settle().await;
    h.play_out();
    assert_eq!(
        h.texts(),
        [
            "replying Hello! How can I help?",
            "AudioStart",
            "AudioStop",
            "said Hello! How can I help?"
        ]
    );
    assert_eq!(h.said()[0].1, None, "the greeting answers no turn");
    assert!(
        llm.prompts.lock().unwrap().is_empty(),
        "no LLM for the greeting"
    );
    assert_eq!(
        h.call.memory(),
        [message(Role::Assistant, "Hello! How can I help?")]
    );
}

#[tokio::test]
async fn nothing_intelligible_gets_no_reply_and_no_memory() {
    let (a, llm) = assistant(&[""], "unused", None);
    let mut h = Harness::new(a, "");
    h.caller_turn();
    h.settle().await;
    h.advance(100);
    assert_eq!(h.texts(), ["heard "]);
    assert!(llm.prompts.lock().unwrap().is_empty());
    assert!(h.call.memory().is_empty());
}

#[tokio::test]
async fn the_recording_turn_joins_the_pieces_and_reprompts_on_silence() {
    let (a, _) = assistant(&["Hours?", ""], "We open at nine. Bye now.", None);
    let audio = Pcm {
        samples: vec![0.0; RATE as usize],
        rate: RATE,
    };
    let mut timings = Timings::default();
    let mut watched = Vec::new();
    let mut watch = |ev: &ReplyEvent| {
        if let ReplyEvent::Speech { text, .. } = ev {
            watched.push(text.clone());
        }
    };
    let delivery = recording_turn::Delivery {
        rate: None,
        live: false,
        watch: &mut watch,
    };
    let turn = recording_turn::run(&a, Vec::new(), None, audio.clone(), delivery, &mut timings)
        .await
        .unwrap();
    assert_eq!(turn.user_text, "Hours?");
    assert_eq!(turn.reply_text, "We open at nine. Bye now.");
    assert_eq!(turn.action, Action::Continue);
    let pieces = (16 + 8) * RATE as usize / 100;
    let pause = RATE as usize / 10;
    assert_eq!(turn.reply_audio.samples.len(), pieces + pause);
    let delivery = recording_turn::Delivery {
        rate: None,
        live: true,
        watch: &mut watch,
    };
    let silent = recording_turn::run(&a, Vec::new(), None, audio, delivery, &mut timings)
        .await
        .unwrap();
    assert_eq!(
        (silent.user_text.as_str(), silent.reply_text.as_str()),
        ("", "Say again?")
    );
    // Each piece, the reprompt too, was seen as it was made.
    assert_eq!(watched, ["We open at nine.", "Bye now.", "Say again?"]);
}

#[tokio::test]
async fn typed_words_get_the_tool_call_too() {
    let reply = "Goodbye! <hangup>";
    let (a, _) = assistant(&[], reply, None);
    let request = ReplyRequest {
        memory: Vec::new(),
        input: ReplyInput::Words("that's all".into()),
        rate: None,
        live: false,
        due: None,
    };
    let mut events = Vec::new();
    a.reply(request, &mut |ev| events.push(ev)).await.unwrap();
    let spoken: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            ReplyEvent::Speech { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(spoken, ["Goodbye!"]);
    let Some(ReplyEvent::Done(end)) = events.last() else {
        panic!("no Done: {events:?}");
    };
    assert_eq!(end.tool, Some(ToolCall::Hangup));
    assert_eq!(end.action(), Action::Hangup);
}

/// What the fake caller says for a second.
fn a_second_of_speech() -> Vec<i16> {
    vec![1000i16; RATE as usize]
}

#[tokio::test]
async fn a_reply_begun_in_the_pause_is_heard_only_once_the_turn_has_ended() {
    let (a, llm) = assistant(&["When do you open?"], "We open at nine.", None);
    let mut h = Harness::new(a, "");
    h.conversation
        .on_turn_event(TurnEvent::Paused(a_second_of_speech()), h.now);
    // The whole reply is made in the pause, and nothing of it goes out.
    h.settle().await;
    h.advance(250);
    assert!(h.texts().is_empty(), "{:?}", h.texts());
    assert!(h.call.memory().is_empty());
    // The turn ends: the reply is there at once, and the latency counts from now.
    h.conversation
        .on_turn_event(TurnEvent::TurnEnded(a_second_of_speech()), h.now);
    h.play_out();
    assert_eq!(
        h.texts(),
        [
            "heard When do you open?",
            "replying We open at nine.",
            "AudioStart",
            "AudioStop",
            "said We open at nine."
        ]
    );
    let (_, latency, _) = h.said()[0].clone();
    assert!(latency.is_some_and(|ms| ms < 20.0), "{latency:?}");
    assert_eq!(llm.prompts.lock().unwrap().len(), 1, "answered once");
    assert_eq!(h.call.turns(), 1);
}

#[tokio::test]
async fn a_caller_who_goes_on_after_a_pause_gets_one_reply_to_the_whole_sentence() {
    let (a, llm) = assistant(
        &["My number is", "My number is five five five."],
        "Thanks, noted.",
        None,
    );
    let mut h = Harness::new(a, "");
    h.conversation
        .on_turn_event(TurnEvent::Paused(a_second_of_speech()), h.now);
    h.settle().await;
    h.conversation.on_turn_event(TurnEvent::Resumed, h.now);
    h.advance(1000);
    assert!(h.texts().is_empty(), "the dropped reply said nothing");
    h.caller_turn();
    h.settle().await;
    h.play_out();
    assert_eq!(
        h.texts(),
        [
            "heard My number is five five five.",
            "replying Thanks, noted.",
            "AudioStart",
            "AudioStop",
            "said Thanks, noted."
        ]
    );
    assert_eq!(
        h.call.memory()[0],
        message(Role::User, "My number is five five five.")
    );
    assert_eq!(llm.prompts.lock().unwrap().len(), 2);
}

/// Speech, then silence until voxd answers (at most 2 s): how long the silence was. The
/// speculative reply is made in full as soon as it starts (the engines are fakes), and the
/// end-of-turn model's verdict (`model`: the assistant has one) is in by then.
async fn silence_before_the_reply(h: &mut Harness, model: bool) -> usize {
    h.hear(&buzz(800, RATE as usize));
    let mut quiet = 0;
    let mut settled = false;
    while quiet < 2000 {
        h.hear(&[0; RATE as usize / 50]);
        quiet += 20;
        if h.conversation.speculating() && !settled {
            h.settle().await;
            if model {
                h.verdict().await;
            }
            settled = true;
        }
        if h.texts().iter().any(|t| t.starts_with("heard")) {
            return quiet;
        }
    }
    panic!("no reply after 2 s of silence: {:?}", h.texts());
}

#[tokio::test]
async fn the_end_of_turn_listens_to_the_words() {
    let mut quiet = Vec::new();
    for heard in [
        "I need a table for two.",
        "What time do you open on Saturday?",
        "My number is",
    ] {
        let (a, _) = assistant(&[heard], "Sure.", None);
        let mut h = Harness::new(a, "");
        quiet.push(silence_before_the_reply(&mut h, false).await);
    }
    let [plain, complete, unfinished] = quiet[..] else {
        unreachable!()
    };
    assert_eq!(
        plain - complete,
        200,
        "a complete question ends after 300 ms, not 500"
    );
    assert_eq!(unfinished - plain, 500, "speech that goes on waits 1000 ms");
}

#[tokio::test]
async fn the_end_of_turn_model_decides_how_long_a_pause_may_be() {
    let plain = {
        let (a, _) = assistant(&["I need a table for two."], "Sure.", None);
        silence_before_the_reply(&mut Harness::new(a, ""), false).await
    };
    let mut quiet = Vec::new();
    for (heard, finished) in [
        ("I need a table for two.", Some(0.9)),
        ("I need a table for two.", Some(0.2)),
        ("My number is", Some(0.9)),
        ("What time do you open on Saturday?", Some(0.2)),
        ("What time do you open on Saturday?", None),
    ] {
        let a = assistant_with_turn_model(&[heard], "Sure.", FakeTurnModel(finished));
        let mut h = Harness::new(a, "");
        quiet.push(silence_before_the_reply(&mut h, true).await as isize - plain as isize);
    }
    assert_eq!(
        quiet,
        [-200, 500, 500, 500, -200],
        "finished: 300 ms; unfinished, or words that go on: 1000 ms; a failed model leaves \
         it to the words"
    );
}

#[tokio::test]
async fn a_verdict_on_a_pause_the_caller_ended_by_speaking_is_ignored() {
    let a = assistant_with_turn_model(&["I need a table"], "Sure.", FakeTurnModel(Some(0.9)));
    let mut h = Harness::new(a, "");
    let pause = |h: &mut Harness| {
        while !h.conversation.speculating() {
            h.hear(&[0; RATE as usize / 50]);
        }
    };
    h.hear(&buzz(800, RATE as usize));
    pause(&mut h);
    h.hear(&buzz(400, RATE as usize));
    pause(&mut h);
    // The first pause's verdict comes in the second pause, 200 ms into its silence: had it
    // counted, the turn would end 100 ms later; 150 ms later it is still the caller's pause.
    h.verdict().await;
    h.hear(&[0; 15 * RATE as usize / 100]);
    assert!(h.conversation.speculating(), "{:?}", h.texts());
}

/// A call whose caller has begun to speak, hearing the scripted words (a reply: "Noted.").
fn caller_speaking(heard: &[&str]) -> (Harness, Arc<FakeStt>) {
    let (a, _, stt) = assistant_hearing(heard, "Noted.", None);
    let mut h = Harness::new(a, "");
    h.conversation
        .on_turn_event(TurnEvent::SpeechStarted, h.now);
    (h, stt)
}

/// Takes in the work's results until no part of the caller's utterance is being
/// transcribed.
async fn listening_done(h: &mut Harness) {
    while h.conversation.listening_busy() {
        h.next_update().await;
    }
}

/// The whole turn: the `cut` the caller said, then half a second more.
fn a_turn_after(cut: Vec<i16>) -> Vec<i16> {
    let mut turn = cut;
    turn.extend(vec![1000i16; RATE as usize / 2]);
    turn
}

/// Ends the turn after the `cut` ([`a_turn_after`]) and plays the reply.
async fn the_turn_ends_after(h: &mut Harness, cut: Vec<i16>) -> Vec<i16> {
    let turn = a_turn_after(cut);
    h.conversation
        .on_turn_event(TurnEvent::TurnEnded(turn.clone()), h.now);
    h.settle().await;
    h.play_out();
    turn
}

#[tokio::test]
async fn words_heard_while_the_caller_spoke_leave_only_the_rest_to_transcribe() {
    let (mut h, stt) = caller_speaking(&["My number is", "five five five."]);
    let so_far = a_second_of_speech();
    h.conversation
        .on_turn_event(TurnEvent::Partial(so_far.clone()), h.now);
    // The part is transcribed in the background; its words are kept once it is done.
    listening_done(&mut h).await;
    the_turn_ends_after(&mut h, so_far).await;
    assert_eq!(h.texts()[0], "heard My number is five five five.");
    // At the end only the last half second was transcribed.
    assert_eq!(
        *stt.calls.lock().unwrap(),
        [RATE as usize, RATE as usize / 2]
    );
    assert_eq!(
        h.call.memory()[0],
        message(Role::User, "My number is five five five.")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_while_a_part_is_transcribed_speculates_once_it_is_done() {
    let (a, _, stt) = assistant_hearing(&["My number is", "five."], "Noted.", None);
    let mut h = Harness::new(a, "");
    h.conversation
        .on_turn_event(TurnEvent::SpeechStarted, h.now);
    let held = stt.hold.lock().unwrap();
    h.conversation
        .on_turn_event(TurnEvent::Partial(a_second_of_speech()), h.now);
    let mut so_far = a_second_of_speech();
    so_far.extend(vec![1000i16; RATE as usize / 2]);
    h.conversation
        .on_turn_event(TurnEvent::Paused(so_far.clone()), h.now);
    // The part's transcription starts, and waits for the engine the test holds.
    h.run_effects();
    h.advance(20);
    assert!(
        !h.conversation.speculating(),
        "not beside the part being transcribed"
    );
    drop(held);
    listening_done(&mut h).await;
    assert!(
        h.conversation.speculating(),
        "speculates once the part is done"
    );
    h.settle().await;
    h.conversation
        .on_turn_event(TurnEvent::TurnEnded(so_far), h.now);
    h.play_out();
    assert_eq!(h.texts()[0], "heard My number is five.");
    // The speculation transcribed only what the part had not.
    assert_eq!(
        *stt.calls.lock().unwrap(),
        [RATE as usize, RATE as usize / 2]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_cut_inside_a_word_is_stopped_and_the_turn_transcribed_whole() {
    // Only the whole utterance's words are scripted: the voided part must not take them.
    let (mut h, stt) = caller_speaking(&["My number is five."]);
    let held = stt.hold.lock().unwrap();
    let cut = a_second_of_speech();
    h.conversation
        .on_turn_event(TurnEvent::Partial(cut.clone()), h.now);
    // The caller went on too soon for the cut to be a word gap.
    h.conversation
        .on_turn_event(TurnEvent::PartialVoid(cut.len()), h.now);
    drop(held);
    listening_done(&mut h).await;
    let turn = the_turn_ends_after(&mut h, cut).await;
    assert_eq!(h.texts()[0], "heard My number is five.");
    assert_eq!(
        *stt.calls.lock().unwrap(),
        [turn.len()],
        "only the whole turn"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_words_of_a_part_heard_before_its_cut_was_voided_are_taken_back() {
    let (mut h, stt) = caller_speaking(&["My num", "My number is five."]);
    let cut = a_second_of_speech();
    h.conversation
        .on_turn_event(TurnEvent::Partial(cut.clone()), h.now);
    listening_done(&mut h).await;
    // A fast engine heard the part before the caller went on: its words are taken back.
    h.conversation
        .on_turn_event(TurnEvent::PartialVoid(cut.len()), h.now);
    let turn = the_turn_ends_after(&mut h, cut).await;
    assert_eq!(h.texts()[0], "heard My number is five.");
    assert_eq!(*stt.calls.lock().unwrap(), [RATE as usize, turn.len()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_still_transcribed_when_the_turn_ends_is_given_up() {
    let (mut h, stt) = caller_speaking(&["My number is five."]);
    let held = stt.hold.lock().unwrap();
    let cut = a_second_of_speech();
    h.conversation
        .on_turn_event(TurnEvent::Partial(cut.clone()), h.now);
    let turn = a_turn_after(cut);
    h.conversation
        .on_turn_event(TurnEvent::TurnEnded(turn.clone()), h.now);
    drop(held);
    h.settle().await;
    h.play_out();
    // The turn's own transcription heard the words; the part took none of them.
    assert_eq!(h.texts()[0], "heard My number is five.");
    assert_eq!(*stt.calls.lock().unwrap(), [turn.len()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(
    clippy::await_holding_lock,
    reason = "the fake engine's lock is held on purpose, to keep its one place taken; only a blocking thread waits for it"
)]
async fn a_transcription_given_up_while_it_waits_for_its_place_leaves_at_once() {
    let (a, _, stt) = assistant_hearing(&["First."], "Noted.", None);
    let audio = Pcm::from_i16(&a_second_of_speech(), RATE);
    let held = stt.hold.lock().unwrap();
    let load = |a: &Assistant| a.engine_load().stt;
    // The one speech place is taken by a transcription the test holds.
    let first = tokio::spawn({
        let (a, audio) = (a.clone(), audio.clone());
        async move { a.transcribe(audio, Deadline::NONE).await }
    });
    let until = |want: (usize, usize)| {
        let a = a.clone();
        async move {
            for _ in 0..200 {
                if (load(&a).running, load(&a).queued) == want {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            assert_eq!((load(&a).running, load(&a).queued), want);
        }
    };
    // The second is started only once the first has the place, so that it is the one queued.
    until((1, 0)).await;
    let stop = Arc::new(Stop::default());
    let second = tokio::spawn({
        let (a, stop) = (a.clone(), stop.clone());
        async move { a.transcribe_unless(audio, Deadline::NONE, stop).await }
    });
    until((1, 1)).await;
    stop.set();
    // It leaves the queue while the place is still taken.
    let given_up = tokio::time::timeout(std::time::Duration::from_secs(5), second)
        .await
        .expect("given up at once")
        .unwrap();
    assert_eq!(
        format!("{:#}", given_up.expect_err("stopped")),
        "transcription stopped"
    );
    assert_eq!(load(&a).queued, 0);
    drop(held);
    assert_eq!(first.await.unwrap().unwrap().text, "First.");
    assert_eq!(stt.calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn keys_stop_voxd_and_the_run_is_read_to_the_model_after_the_gap() {
    let (mut h, llm) = talking_about_prices().await;
    let out = h.conversation.pressed('1', h.now);
    assert!(out.contains(&Output::Clear), "a key stops voxd: {out:?}");
    h.out.extend(out);
    h.advance(500);
    let out = h.conversation.pressed('2', h.now);
    h.out.extend(out);
    // The run is read once the caller stops pressing for the gap (1 s here), not before.
    h.advance(900);
    assert_eq!(llm.prompts.lock().unwrap().len(), 1);
    h.advance(200);
    h.settle().await;
    let prompts = llm.prompts.lock().unwrap();
    assert_eq!(prompts.len(), 2, "one reply for the run of keys");
    assert_eq!(
        prompts[1].last(),
        Some(&message(Role::User, "(pressed 1 2)"))
    );
    drop(prompts);
    h.play_out();
    // The memory keeps the keys as the caller's turn, and the reply to them.
    let memory = h.call.memory();
    assert_eq!(
        memory[memory.len() - 2],
        message(Role::User, "(pressed 1 2)")
    );
    assert_eq!(memory.last().unwrap().role, Role::Assistant);
}

#[tokio::test]
async fn a_mapped_key_transfers_at_once_without_the_model() {
    let (a, llm) = assistant(&[], "Hello.", None);
    let mut h = Harness::new(a, "");
    let out = h.conversation.pressed('0', h.now);
    assert_eq!(out, vec![Output::Transfer]);
    h.advance(3000);
    tokio::task::yield_now().await;
    assert!(llm.prompts.lock().unwrap().is_empty());
    assert!(!h.out.contains(&Output::Transfer), "acted on once");
}

#[tokio::test]
async fn keys_the_model_presses_go_to_the_transport_and_the_call_goes_on() {
    let tools = Tools {
        transfer: false,
        examples: Vec::new(),
        phone_country: crate::config::PhoneCountry::Ru,
        send_digits: true,
    };
    let reply = "Choosing sales. <tool_call>{\"name\": \"send_digits\", \"arguments\": {\"digits\": \"2#\"}}</tool_call>";
    let (a, _) = assistant(&["For sales press two."], reply, Some(tools));
    let mut h = Harness::new(a, "");
    h.caller_turn();
    h.settle().await;
    assert!(h
        .out
        .contains(&Output::Tool(ToolCall::SendDigits("2#".into()))));
    h.play_out();
    h.advance(10);
    assert_eq!(h.said()[0].0, "Choosing sales.");
    assert!(!h.out.contains(&Output::Hangup) && !h.out.contains(&Output::Transfer));
}

/// The caller's turn has ended: a reply of one second of speech, reported as its task would.
fn a_reply_of_one_second(h: &mut Harness, id: u64) {
    let heard = ReplyEvent::Heard {
        text: "Hi.".into(),
        language: "en".into(),
        call_language: None,
    };
    let audio = Pcm {
        samples: vec![0.1; RATE as usize],
        rate: RATE,
    };
    let speech = ReplyEvent::Speech {
        audio,
        text: "Hello there.".into(),
    };
    for event in [heard, speech, ReplyEvent::Done(Default::default())] {
        let out = h.conversation.on_update(Update::Reply(id, event), h.now);
        h.out.extend(out);
    }
}

#[test]
fn the_machine_asks_for_its_work_and_names_when_it_next_needs_the_clock() {
    let (a, _) = assistant(&[], "", None);
    let mut h = Harness::new(a, "");
    assert_eq!(h.conversation.next_timeout(h.now), None, "nothing to do");
    h.caller_turn();
    let effects = h.conversation.effects();
    assert!(
        matches!(effects[..], [Effect::Reply { id: 1, .. }]),
        "{effects:?}"
    );
    assert_eq!(
        h.conversation.next_timeout(h.now),
        None,
        "waiting for the reply"
    );
    a_reply_of_one_second(&mut h, 1);
    let start = h.now;
    assert_eq!(
        h.conversation.next_timeout(start),
        Some(start),
        "speech is due"
    );
    // The clock is read only when the machine asks for it.
    let mut wakeups = 0;
    while let Some(at) = h.conversation.next_timeout(h.now) {
        assert!(at >= h.now, "a timeout in the past");
        h.now = at;
        let out = h.conversation.tick(at);
        h.out.extend(out);
        wakeups += 1;
        assert!(wakeups < 100, "woken too often: {:?}", h.texts());
    }
    let frames = h
        .out
        .iter()
        .filter(|o| matches!(o, Output::Audio(_)))
        .count();
    assert_eq!(frames, 50, "one second in 20 ms frames");
    // The first 200 ms (the lead) go at once, then a frame each time one is due, then the
    // end of the playout.
    assert_eq!(wakeups, 1 + 40 + 1);
    let played = h.now.duration_since(start);
    assert!(
        played >= std::time::Duration::from_secs(1)
            && played < std::time::Duration::from_millis(1010),
        "{played:?}"
    );
    assert_eq!(
        h.texts(),
        [
            "heard Hi.",
            "replying Hello there.",
            "AudioStart",
            "AudioStop",
            "said Hello there."
        ]
    );
    let effects = h.conversation.effects();
    assert!(
        matches!(effects[..], [Effect::Cancel(1)]),
        "the finished reply's work is let go: {effects:?}"
    );
}

#[test]
fn keys_and_pauses_ask_for_the_clock_and_the_end_of_turn_model() {
    let a = assistant_with_turn_model(&[], "", FakeTurnModel(Some(0.9)));
    let mut h = Harness::new(a, "");
    let out = h.conversation.pressed('5', h.now);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(
        h.conversation.next_timeout(h.now),
        Some(h.now + std::time::Duration::from_millis(1000)),
        "the run of keys is over after the gap"
    );
    h.conversation
        .on_turn_event(TurnEvent::Paused(a_second_of_speech()), h.now);
    let effects = h.conversation.effects();
    let judged = effects
        .iter()
        .find_map(|e| match e {
            Effect::JudgePause { pause, audio } => Some((*pause, audio.samples.len())),
            _ => None,
        })
        .expect("the model is asked about the pause");
    assert_eq!(judged, (1, RATE as usize));
}

#[test]
fn a_reply_that_played_out_between_two_looks_at_the_clock_still_ends() {
    let (a, _) = assistant(&[], "", None);
    let mut h = Harness::new(a, "");
    h.caller_turn();
    h.conversation.effects();
    // A reply whose last words played out before its end was reported.
    let heard = ReplyEvent::Heard {
        text: "Hi.".into(),
        language: "en".into(),
        call_language: None,
    };
    let speech = ReplyEvent::Speech {
        audio: Pcm {
            samples: vec![0.1; RATE as usize / 5],
            rate: RATE,
        },
        text: "Yes.".into(),
    };
    for event in [heard, speech] {
        let out = h.conversation.on_update(Update::Reply(1, event), h.now);
        h.out.extend(out);
    }
    while let Some(at) = h.conversation.next_timeout(h.now) {
        h.now = at;
        let out = h.conversation.tick(at);
        h.out.extend(out);
    }
    h.now += std::time::Duration::from_secs(1);
    let out = h.conversation.on_update(
        Update::Reply(1, ReplyEvent::Done(Default::default())),
        h.now,
    );
    h.out.extend(out);
    assert_eq!(
        h.conversation.next_timeout(h.now),
        Some(h.now),
        "the reply is over: the clock is needed now"
    );
    let out = h.conversation.tick(h.now);
    h.out.extend(out);
    assert_eq!(h.texts().last().unwrap(), "said Yes.");
}
