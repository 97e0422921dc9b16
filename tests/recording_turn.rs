//! The recording-URL turn end to end: Piper speaks, a real MP3/WAV is served over HTTP,
//! the real API transcribes, replies and synthesizes; the reply audio is fetched and heard.

mod common;

use common::{auth, client, harness, shared_words, wer, Served};
use serde_json::{json, Value};
use voxd::audio::decode;

const SENTENCE: &str = "Hello, I would like to book a table for two people tomorrow evening.";

async fn turn(call_id: &str, audio_url: &str) -> Value {
    let h = harness();
    let resp = client()
        .post(format!("http://{}/voximplant/process_audio", h.api))
        .header("Authorization", auth())
        .json(&json!({"call_id": call_id, "audio_url": audio_url, "duration": 4.0}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn mp3_round_trip_two_turns_with_history() {
    let h = harness();
    let spoken = h.speak(SENTENCE);
    let url = h.serve("turn1.mp3", Served::Bytes(common::encode(&spoken, "mp3")));

    let first = turn("call-roundtrip", &url).await;
    let user_text = first["user_text"].as_str().unwrap();
    assert!(wer(SENTENCE, user_text) <= 0.35, "heard {user_text:?}");
    let reply_text = first["reply_text"].as_str().unwrap();
    assert!(!reply_text.trim().is_empty());
    assert_eq!(first["call_id"], "call-roundtrip");
    assert_eq!(first["action"], "continue");
    for stage in ["download", "decode", "stt", "llm", "tts", "total"] {
        assert!(
            first["timings_ms"][stage].as_f64().unwrap() >= 0.0,
            "{stage}"
        );
    }
    assert!(first["timings_ms"]["stt"].as_f64().unwrap() > 0.0);

    // The reply audio: served without auth, a valid WAV over 0.5 s that says the reply.
    let audio_url = first["reply_audio_url"].as_str().unwrap();
    assert!(
        audio_url.starts_with(&format!("http://{}/audio/", h.api)),
        "{audio_url}"
    );
    let resp = reqwest::get(audio_url).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "audio/wav");
    let wav = resp.bytes().await.unwrap();
    let pcm = decode::decode(&wav, 600.0).unwrap();
    assert!(
        pcm.duration_secs() > 0.5,
        "reply lasts {} s",
        pcm.duration_secs()
    );
    let heard = h.hear(pcm);
    assert!(
        !shared_words(reply_text, &heard).is_empty(),
        "reply {reply_text:?} but the audio says {heard:?}"
    );

    // Second turn on the same call: the first exchange is in the history the LLM saw.
    let spoken2 = h.speak("What did I just ask you about?");
    let url2 = h.serve("turn2.wav", Served::Bytes(common::encode(&spoken2, "wav")));
    let second = turn("call-roundtrip", &url2).await;
    assert!(!second["reply_text"].as_str().unwrap().is_empty());
    assert_ne!(second["reply_audio_url"], first["reply_audio_url"]);
    let call = common::call_info("call-roundtrip").await;
    assert_eq!(call["turns"], 2, "{call}");
    let history = call["history"].as_array().unwrap();
    assert_eq!(history.len(), 4, "{call}");
    assert_eq!(history[0]["role"], "user");
    assert_eq!(history[0]["content"], user_text);
    assert_eq!(history[1]["role"], "assistant");
    assert_eq!(history[1]["content"], reply_text);
    assert_eq!(history[2]["content"], second["user_text"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn silence_gets_a_reprompt_not_an_llm_reply() {
    let h = harness();
    let silence = voxd::audio::Pcm {
        samples: vec![0.0; 8000 * 2],
        rate: 8000,
    };
    let url = h.serve(
        "silence.wav",
        Served::Bytes(common::encode(&silence, "wav")),
    );
    let body = turn("call-silence", &url).await;
    assert_eq!(body["user_text"], "");
    assert_eq!(
        body["reply_text"],
        common::test_config().calls.reprompt_text
    );
    assert_eq!(body["action"], "continue");
}

#[tokio::test(flavor = "multi_thread")]
async fn caller_goodbye_ends_the_call() {
    let h = harness();
    let spoken = h.speak("Thank you, goodbye.");
    let url = h.serve("bye.wav", Served::Bytes(common::encode(&spoken, "wav")));
    let body = turn("call-bye", &url).await;
    // Whisper hears "goodbye" or "bye bye" (Piper's voice varies a little from run to run):
    // either is a configured goodbye.
    let heard = body["user_text"].as_str().unwrap().to_lowercase();
    let phrases = common::test_config().calls.hangup_phrases;
    assert!(phrases.iter().any(|p| heard.contains(p.as_str())), "{body}");
    assert_eq!(body["action"], "hangup");
}

async fn event(body: Value) -> (u16, Value) {
    let h = harness();
    let resp = client()
        .post(format!("http://{}/voximplant/events", h.api))
        .header("Authorization", auth())
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn connected_answers_with_the_greeting_in_recording_mode_only() {
    let h = harness();
    let greeting = common::test_config().conversation.greeting;
    let (status, body) = event(json!({"call_id": "greet-rec", "event": "Connected"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["greeting_text"], greeting.as_str());
    let url = body["greeting_audio_url"].as_str().unwrap();
    let wav = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    let heard = h.hear(decode::decode(&wav, 60.0).unwrap());
    assert!(
        shared_words(&heard, &greeting).len() >= 3,
        "greeting heard as {heard:?}"
    );
    // A repeated Connected (a retry) plays it again, without a second greeting in the
    // history; every call's greeting is the one stored file.
    let (_, again) = event(json!({"call_id": "greet-rec", "event": "Connected"})).await;
    assert_eq!(again["greeting_audio_url"], body["greeting_audio_url"]);
    let (_, other) = event(json!({"call_id": "greet-rec-2", "event": "Connected"})).await;
    assert_eq!(other["greeting_audio_url"], body["greeting_audio_url"]);
    let history = common::call_info("greet-rec").await["history"].clone();
    assert_eq!(
        history,
        json!([{"role": "assistant", "content": greeting}]),
        "{history}"
    );

    // A media-stream call is greeted on the stream.
    let (status, body) =
        event(json!({"call_id": "greet-ws", "event": "Connected", "mode": "stream"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("greeting_audio_url").is_none(), "{body}");
    assert_eq!(common::call_info("greet-ws").await["history"], json!([]));

    let (status, body) =
        event(json!({"call_id": "greet-x", "event": "Connected", "mode": "fax"})).await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_progressive_turn_answers_with_the_words_and_streams_the_reply() {
    let h = harness();
    let spoken = h.speak(SENTENCE);
    let url = h.serve(
        "progressive.wav",
        Served::Bytes(common::encode(&spoken, "wav")),
    );
    let resp = client()
        .post(format!("http://{}/voximplant/process_audio", h.api))
        .header("Authorization", auth())
        .json(&json!({"call_id": "call-progressive", "audio_url": url, "progressive": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let started: Value = resp.json().await.unwrap();
    assert_eq!(started["progressive"], true, "{started}");
    let user_text = started["user_text"].as_str().unwrap();
    assert!(wer(SENTENCE, user_text) <= 0.35, "heard {user_text:?}");
    assert!(
        started.get("reply_text").is_none(),
        "not known yet: {started}"
    );
    assert!(started["timings_ms"]["stt"].as_f64().unwrap() > 0.0);

    // The audio comes as it is made, in MP3 by default: a stream of unknown length that
    // plays whole.
    let audio_url = started["reply_audio_url"].as_str().unwrap();
    assert!(audio_url.ends_with(".mp3"), "{audio_url}");
    let as_wav = reqwest::get(audio_url.replace(".mp3", ".wav"))
        .await
        .unwrap();
    assert_eq!(as_wav.status(), 404, "the reply is MP3 only");
    let resp = reqwest::get(audio_url).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "audio/mpeg");
    assert!(resp.content_length().is_none(), "chunked while it grows");
    let streamed = resp.bytes().await.unwrap();
    let pcm = decode::decode(&streamed, 600.0).unwrap();
    assert!(pcm.duration_secs() > 0.5, "{} s", pcm.duration_secs());

    // The result, once the audio has played: what a whole turn answers with.
    let reply_url = started["reply_url"].as_str().unwrap();
    assert!(reply_url.contains("/voximplant/replies/"), "{reply_url}");
    let resp = client()
        .get(format!("{reply_url}?wait_secs=20"))
        .header("Authorization", auth())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let result: Value = resp.json().await.unwrap();
    assert_eq!(result["done"], true, "{result}");
    assert_eq!(result["action"], "continue");
    assert_eq!(result["user_text"], started["user_text"]);
    assert_eq!(result["reply_audio_url"], started["reply_audio_url"]);
    let reply_text = result["reply_text"].as_str().unwrap();
    let heard = h.hear(pcm.clone());
    assert!(
        !shared_words(reply_text, &heard).is_empty(),
        "reply {reply_text:?} but the audio says {heard:?}"
    );
    // The words were answered before the reply was complete.
    let answered = started["timings_ms"]["total"].as_f64().unwrap();
    let complete = result["timings_ms"]["total"].as_f64().unwrap();
    assert!(answered < complete, "{answered} ms vs {complete} ms");

    // Fetched again, the finished file has its real length.
    let again = reqwest::get(audio_url).await.unwrap();
    assert_eq!(again.content_length(), Some(streamed.len() as u64));
    let whole = again.bytes().await.unwrap();
    assert_eq!(decode::decode(&whole, 600.0).unwrap().samples, pcm.samples);

    // The turn is in the call's history like any other.
    let call = common::call_info("call-progressive").await;
    assert_eq!(call["turns"], 1, "{call}");

    // The next turn asks for WAV: a stream whose header claims no length, as it grows.
    let resp = client()
        .post(format!("http://{}/voximplant/process_audio", h.api))
        .header("Authorization", auth())
        .json(&json!({"call_id": "call-progressive", "audio_url": url, "progressive": true, "format": "wav"}))
        .send()
        .await
        .unwrap();
    let started: Value = resp.json().await.unwrap();
    let wav_url = started["reply_audio_url"].as_str().unwrap();
    assert!(wav_url.ends_with(".wav"), "{started}");
    let resp = reqwest::get(wav_url).await.unwrap();
    assert_eq!(resp.headers()["content-type"], "audio/wav");
    let pcm = decode::decode(&resp.bytes().await.unwrap(), 600.0).unwrap();
    assert!(!h.hear(pcm).is_empty());
    let resp = client()
        .post(format!("http://{}/voximplant/process_audio", h.api))
        .header("Authorization", auth())
        .json(&json!({"call_id": "call-progressive", "audio_url": url, "progressive": true, "format": "ogg"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422, "an unknown format is refused");

    // A result needs the token, and an unknown one is a clear 404.
    let no_token = client().get(reply_url).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    let unknown = client()
        .get(format!("http://{}/voximplant/replies/0123", h.api))
        .header("Authorization", auth())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], "reply_not_found");
}
