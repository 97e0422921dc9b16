//! Real-time calls over the media stream, with a client that behaves like the scenario:
//! replies as start + media frames that say what the transcript says, barge-in, and every
//! kind of bad frame, with a parallel healthy call unaffected.

mod common;

use std::time::{Duration, Instant};

use common::{harness, shared_words, wait_until};
use serde_json::Value;
use voxd::bench::caller::{decode_media, is_event, is_type, Caller};
use voxd::transport::voximplant_ws::protocol::Encoding;

const QUESTION: &str = "Hello, can you tell me what time you open on Saturday?";

async fn active_calls() -> u64 {
    let v: Value = reqwest::get(format!("http://{}/health", harness().api))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["active_calls"].as_u64().unwrap()
}

/// One whole exchange: greeting, a question, the spoken answer checked by Whisper.
async fn conversation(encoding: Encoding, call_id: &str) {
    let h = harness();
    let mut c = Caller::connect(h.api, "", Some(common::TOKEN))
        .await
        .unwrap();
    c.start(encoding, call_id).await.unwrap();
    // The greeting comes first, as a complete start/media/stop stream.
    let greeted = c
        .wait_for(0, "greeting transcript", Duration::from_secs(20), |v| {
            is_type(v, "transcript") && v["role"] == "assistant"
        })
        .await
        .unwrap();
    let msgs = c.messages();
    assert!(is_event(&msgs[0].json, "start"), "{:?}", msgs[0].json);
    // The caller's stream is tagged "caller"; voxd's own carries no tag (the default
    // stream that the scenario's untagged ws.sendMediaTo(call) plays).
    assert!(
        msgs.iter().all(|m| m.json.get("tag").is_none()),
        "voxd's frames are untagged by default"
    );
    let greeting = decode_media(&msgs[..greeted]).unwrap();
    assert!(greeting.duration_secs() > 0.5);
    assert_eq!(greeting.rate, encoding.rate());

    let question = h.speak(QUESTION);
    let from = c.messages().len();
    c.stream(&question).await.unwrap();
    let user = c
        .wait_for(from, "user transcript", Duration::from_secs(20), |v| {
            is_type(v, "transcript") && v["role"] == "user"
        })
        .await
        .unwrap();
    let heard = c.messages()[user].json["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        common::wer(QUESTION, &heard) <= 0.35,
        "voxd heard {heard:?}"
    );
    let done = c
        .wait_for(user, "assistant transcript", Duration::from_secs(40), |v| {
            is_type(v, "transcript") && v["role"] == "assistant"
        })
        .await
        .unwrap();
    let msgs = c.messages();
    let said = msgs[done].json["text"].as_str().unwrap();
    assert!(msgs[done].json["final"].as_bool().unwrap());
    let latency = msgs[done].json["latency_ms"].as_f64().unwrap();
    assert!(latency > 0.0);
    let reply = &msgs[user..done];
    assert!(
        reply.iter().any(|m| is_event(&m.json, "stop")),
        "the reply stream is closed with stop"
    );
    let audio = decode_media(reply).unwrap();
    let text = h.hear(audio);
    assert!(
        !shared_words(said, &text).is_empty(),
        "transcript {said:?} but the audio says {text:?}"
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcm16_conversation() {
    conversation(Encoding::Pcm16, "ws-pcm16").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ulaw_conversation_with_a_misbehaving_call_beside_it() {
    let h = harness();
    // A client that sends garbage, then speech, and never reads a byte, at the same time.
    let bad = tokio::spawn(async move {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        use tokio_tungstenite::tungstenite::Message;
        let mut req = format!("ws://{}/voximplant/stream?call_id=ws-noisy", h.api)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("Authorization", common::auth().parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let junk = [
            "{this is not json",
            r#"{"event":"media","media":{"payload":"AAAA"}}"#,
            r#"{"event":"start","start":{"mediaFormat":{"encoding":"PCM8","sampleRate":8000}}}"#,
            r#"{"event":"media","media":{"payload":"%%%"}}"#,
            r#"{"event":"dance"}"#,
        ];
        for j in junk {
            ws.send(Message::Text(j.into())).await.unwrap();
        }
        let speech = h.speak("I am a second caller talking at the same time, and I never listen.");
        let pcm = voxd::audio::resample::to_rate(speech, 8000).unwrap();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let silence = vec![0.0f32; 8000 * 4];
        for chunk in pcm.samples.chunks(160).chain(silence.chunks(160)) {
            tick.tick().await;
            let bytes: Vec<u8> = chunk
                .iter()
                .flat_map(|&s| voxd::audio::wav::to_i16(s).to_le_bytes())
                .collect();
            let payload = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
            let frame =
                serde_json::json!({"event": "media", "media": {"payload": payload}}).to_string();
            if ws.send(Message::Text(frame.into())).await.is_err() {
                break; // voxd may hang up on a client that does not read
            }
        }
        ws
    });
    conversation(Encoding::Ulaw, "ws-ulaw").await;
    drop(bad.await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_stops_the_reply_and_a_click_does_not() {
    let h = harness();
    let mut c = Caller::connect(h.api, "?call_id=ws-barge", Some(common::TOKEN))
        .await
        .unwrap();
    c.start(Encoding::Pcm16, "ws-barge").await.unwrap();
    let greeted = c
        .wait_for(0, "greeting", Duration::from_secs(20), |v| {
            is_type(v, "transcript")
        })
        .await
        .unwrap();
    c.stream(&h.speak("Please tell me a long story about your company and its history."))
        .await
        .unwrap();
    let first_media = c
        .wait_for(greeted + 1, "reply audio", Duration::from_secs(40), |v| {
            is_event(v, "media")
        })
        .await
        .unwrap();
    c.silence(400).await.unwrap();

    // A 60 ms click while voxd talks: no barge-in.
    let click = voxd::audio::Pcm {
        samples: (0..960)
            .map(|i| ((i as f32 * 0.3).sin() * 0.8) * if i % 7 == 0 { 1.0 } else { 0.6 })
            .collect(),
        rate: 16_000,
    };
    let before_click = c.messages().len();
    c.stream(&click).await.unwrap();
    c.silence(700).await.unwrap();
    let after_click = c.messages();
    assert!(
        !after_click[before_click..]
            .iter()
            .any(|m| is_type(&m.json, "clear")),
        "a click cut the reply"
    );
    assert!(
        after_click[before_click..]
            .iter()
            .any(|m| is_event(&m.json, "media")),
        "the reply went on after the click"
    );
    assert!(
        !after_click[first_media..]
            .iter()
            .any(|m| is_type(&m.json, "transcript") && m.json["role"] == "assistant"),
        "the reply ended before the interruption; make it longer"
    );

    // Real speech: clear within 500 ms of its start, then no more media of that reply.
    let interruption = h.speak("Sorry, stop, I have another question.");
    let from = c.messages().len();
    let started = Instant::now();
    c.stream(&interruption).await.unwrap();
    let cleared = c
        .wait_for(from, "clear", Duration::from_secs(5), |v| {
            is_type(v, "clear")
        })
        .await
        .unwrap();
    let msgs = c.messages();
    let delay = msgs[cleared].at.duration_since(started);
    assert!(
        delay <= Duration::from_millis(500),
        "clear came {delay:?} after the interruption started"
    );
    // The caller falls silent and gets a new reply to the interruption: wait for its first
    // media frame, so that what comes between the clear and it is always there to check.
    let next = c
        .wait_for(
            cleared + 1,
            "media of the reply to the interruption",
            Duration::from_secs(40),
            |v| is_event(v, "media"),
        )
        .await
        .unwrap();
    let msgs = c.messages();
    let between: Vec<&Value> = msgs[cleared + 1..next].iter().map(|m| &m.json).collect();
    // Anything after the clear belongs to a new reply: its own start must come first.
    assert!(
        between.iter().any(|v| is_event(v, "start")),
        "media of the interrupted reply after clear: {between:?}"
    );
    // What was heard of the cut reply is reported (before the new reply plays), and the
    // history keeps only that.
    let cut = between
        .iter()
        .find(|v| is_type(v, "transcript") && v["role"] == "assistant")
        .expect("transcript of the cut reply");
    let cut_text = cut["text"].as_str().unwrap().to_string();
    let call = common::call_info("ws-barge").await;
    let history = call["history"].as_array().unwrap();
    assert!(
        history
            .iter()
            .any(|m| m["role"] == "assistant" && m["content"] == cut_text.as_str()),
        "{call}"
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_streams_end_or_are_ignored_cleanly() {
    let h = harness();
    // No token: refused before the upgrade.
    let err = tokio_tungstenite::connect_async(format!("ws://{}/voximplant/stream", h.api))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    // The token in the query works for scenarios that cannot set headers.
    let (ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{}/voximplant/stream?token={}",
        h.api,
        common::TOKEN
    ))
    .await
    .unwrap();
    drop(ws);

    // Unsupported encoding: closed with 1003.
    let mut c = Caller::connect(h.api, "?call_id=ws-opus", Some(common::TOKEN))
        .await
        .unwrap();
    c.send_text(
        r#"{"event":"start","start":{"mediaFormat":{"encoding":"OPUS","sampleRate":48000}}}"#
            .into(),
    )
    .await
    .unwrap();
    let code = wait_until(
        "close of the stream after an OPUS start",
        Duration::from_secs(5),
        || async { c.closed().ok_or("the socket is still open") },
    )
    .await;
    assert_eq!(code, Some(1003));

    // A 10 MB frame: the connection is dropped.
    let mut c = Caller::connect(h.api, "?call_id=ws-huge", Some(common::TOKEN))
        .await
        .unwrap();
    let huge = format!(
        r#"{{"event":"media","media":{{"payload":"{}"}}}}"#,
        "A".repeat(10 * 1024 * 1024)
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), c.send_text(huge))
        .await
        .unwrap();
    wait_until(
        "end of the connection after a 10 MB frame",
        Duration::from_secs(5),
        || async { c.closed().ok_or("the socket is still open") },
    )
    .await;

    // A start whose customParameters name an invalid call id (one rule for every entry
    // point): the stream is closed with 1008.
    let mut c = Caller::connect(h.api, "", Some(common::TOKEN))
        .await
        .unwrap();
    c.start(Encoding::Pcm8, "bad\nid").await.unwrap();
    let code = wait_until(
        "close of a stream whose call id is invalid",
        Duration::from_secs(5),
        || async { c.closed().ok_or("the socket is still open") },
    )
    .await;
    assert_eq!(code, Some(1008));

    // Garbage then a valid start: ignored, and the call still greets.
    let mut c = Caller::connect(h.api, "", Some(common::TOKEN))
        .await
        .unwrap();
    for junk in [
        "not json",
        r#"{"event":"unknown"}"#,
        r#"{"event":"media","media":{"payload":"AAAA"}}"#,
        r#"{"no":"event"}"#,
    ] {
        c.send_text(junk.into()).await.unwrap();
    }
    c.start(Encoding::Pcm8, "ws-junk").await.unwrap();
    c.send_text(r#"{"event":"media","media":{"payload":"!!not base64!!"}}"#.into())
        .await
        .unwrap();
    c.wait_for(0, "greeting after junk", Duration::from_secs(20), |v| {
        is_type(v, "transcript")
    })
    .await
    .unwrap();
    assert!(c.closed().is_none());

    // Socket closed: the call is freed.
    let before = active_calls().await;
    c.close().await;
    wait_until(
        "freeing of the call whose socket closed",
        Duration::from_secs(5),
        || async {
            let now = active_calls().await;
            if now < before {
                Ok(())
            } else {
                Err(format!("active_calls {now}, {before} before the close"))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goodbye_ends_the_call_with_hangup_and_a_clean_close() {
    let h = harness();
    let mut c = Caller::connect(h.api, "?call_id=ws-bye", Some(common::TOKEN))
        .await
        .unwrap();
    c.start(Encoding::Pcm16, "ws-bye").await.unwrap();
    let greeted = c
        .wait_for(0, "greeting", Duration::from_secs(20), |v| {
            is_type(v, "transcript")
        })
        .await
        .unwrap();
    assert!(common::call_info("ws-bye").await["history"]
        .as_array()
        .is_some());
    c.stream(&h.speak("Thank you very much, goodbye."))
        .await
        .unwrap();
    let hangup = c
        .wait_for(greeted + 1, "hangup", Duration::from_secs(60), |v| {
            is_type(v, "hangup")
        })
        .await
        .unwrap();
    let msgs = c.messages();
    // The goodbye reply was spoken in full before the hangup.
    let said = msgs[..hangup]
        .iter()
        .rev()
        .find(|m| is_type(&m.json, "transcript") && m.json["role"] == "assistant")
        .unwrap();
    assert!(!said.json["text"].as_str().unwrap().is_empty());
    assert!(msgs[greeted..hangup]
        .iter()
        .any(|m| is_event(&m.json, "stop")));
    let code = wait_until(
        "close of the stream after the hangup",
        Duration::from_secs(5),
        || async { c.closed().ok_or("the socket is still open") },
    )
    .await;
    assert_eq!(code, Some(1000), "a clean close after the hangup");
    // The call is gone.
    let resp = common::client()
        .get(format!("http://{}/voximplant/calls/ws-bye", h.api))
        .header("Authorization", common::auth())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_and_lost_frames_are_tolerated() {
    use base64::Engine;
    let h = harness();
    let mut c = Caller::connect(h.api, "?call_id=ws-jitter", Some(common::TOKEN))
        .await
        .unwrap();
    c.start(Encoding::Pcm16, "ws-jitter").await.unwrap();
    let question = voxd::audio::resample::to_rate(h.speak(QUESTION), 16_000).unwrap();
    let mut frames: Vec<(u64, Vec<i16>)> = question
        .samples
        .chunks(320)
        .chain(std::iter::repeat_n(&[0.0f32; 320][..], 100))
        .enumerate()
        .map(|(i, f)| {
            (
                i as u64 + 1,
                f.iter().map(|&s| voxd::audio::wav::to_i16(s)).collect(),
            )
        })
        .collect();
    // Every 10th frame swaps with its successor; every 37th is lost.
    for i in (9..frames.len() - 1).step_by(10) {
        frames.swap(i, i + 1);
    }
    frames.retain(|(n, _)| n % 37 != 0);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for (n, samples) in &frames {
        tick.tick().await;
        let payload =
            base64::engine::general_purpose::STANDARD.encode(Encoding::Pcm16.encode(samples));
        let msg = serde_json::json!({"event": "media", "media": {"chunk": n, "timestamp": (n - 1) * 320, "payload": payload}});
        c.send_text(msg.to_string()).await.unwrap();
    }
    let heard = wait_until("user transcript", Duration::from_secs(20), || async {
        let msgs = c.messages();
        let found = msgs
            .iter()
            .find(|m| is_type(&m.json, "transcript") && m.json["role"] == "user")
            .map(|m| m.json["text"].as_str().unwrap().to_string());
        found.ok_or_else(|| format!("none among {} messages", msgs.len()))
    })
    .await;
    assert!(
        common::wer(QUESTION, &heard) <= 0.35,
        "voxd heard {heard:?}"
    );
    c.close().await;
}

/// `pcm` without the near-silence Piper leaves after the words.
fn without_trailing_silence(mut pcm: voxd::audio::Pcm) -> voxd::audio::Pcm {
    let end = pcm
        .samples
        .iter()
        .rposition(|s| s.abs() > 0.02)
        .unwrap_or(0);
    pcm.samples.truncate(end + 1);
    pcm
}

/// The sum of the counters of `family` whose one label `label` is one of `values`, in a
/// `/metrics` text (a series not there counts 0).
fn counted(text: &str, family: &str, label: &str, values: &[&str]) -> f64 {
    values
        .iter()
        .map(|v| {
            let prefix = format!("{family}{{{label}=\"{v}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .map_or(0.0, |n| n.trim().parse().unwrap())
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_pauses_mid_sentence_gets_one_reply_to_the_whole_sentence() {
    let h = harness();
    let speculations = |text: &str| {
        counted(
            text,
            "voxd_speculative_replies_total",
            "outcome",
            &["used", "dropped", "skipped"],
        )
    };
    let before = speculations(&common::metrics_text(h.api).await);
    let mut c = Caller::connect(h.api, "", Some(common::TOKEN))
        .await
        .unwrap();
    c.start(Encoding::Pcm16, "ws-pause").await.unwrap();
    let greeted = c
        .wait_for(0, "greeting transcript", Duration::from_secs(30), |v| {
            is_type(v, "transcript") && v["role"] == "assistant"
        })
        .await
        .unwrap();
    // "My phone number is… five five five, one two three four.", with a 300 ms pause.
    let first = without_trailing_silence(h.speak("My phone number is"));
    let rest = h.speak("five five five, one two three four.");
    c.stream(&first).await.unwrap();
    c.silence(300).await.unwrap();
    c.stream(&rest).await.unwrap();
    let sent = c.messages().len();
    let talked_over = c.messages()[greeted + 1..sent]
        .iter()
        .find(|m| is_event(&m.json, "start") || is_type(&m.json, "transcript"))
        .map(|m| m.json.to_string());
    assert_eq!(
        talked_over, None,
        "voxd answered before the caller finished"
    );
    let answered = c
        .wait_for(sent, "assistant transcript", Duration::from_secs(60), |v| {
            is_type(v, "transcript") && v["role"] == "assistant"
        })
        .await
        .unwrap();
    let heard: Vec<String> = c.messages()[greeted + 1..answered]
        .iter()
        .filter(|m| is_type(&m.json, "transcript") && m.json["role"] == "user")
        .map(|m| m.json["text"].as_str().unwrap().to_lowercase())
        .collect();
    assert_eq!(heard.len(), 1, "one turn, one reply: {heard:?}");
    // Whisper writes the digits as "five five five", "555" or "5 5 5".
    let digits = heard[0].replace(' ', "");
    assert!(
        heard[0].contains("number") && (digits.contains("fivefive") || digits.contains("555")),
        "the whole sentence in one transcript: {heard:?}"
    );
    // The pause was noticed: a reply was begun in it (and dropped) or skipped as the
    // engines were busy with the other tests' calls.
    let after = speculations(&common::metrics_text(h.api).await);
    assert!(after > before, "{before} → {after}");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backchannel_over_voxd_is_no_turn_and_the_reply_goes_on() {
    let h = harness();
    let ignored = |text: &str| {
        counted(
            text,
            "voxd_interruptions_ignored_total",
            "kind",
            &["backchannel", "resumed"],
        )
    };
    let before = ignored(&common::metrics_text(h.api).await);
    let mut c = Caller::connect(h.api, "", Some(common::TOKEN))
        .await
        .unwrap();
    c.start(Encoding::Pcm16, "ws-backchannel").await.unwrap();
    let greeted = c
        .wait_for(0, "greeting", Duration::from_secs(20), |v| {
            is_type(v, "transcript")
        })
        .await
        .unwrap();
    c.stream(&h.speak("Please tell me a long story about your company and its history."))
        .await
        .unwrap();
    c.wait_for(greeted + 1, "reply audio", Duration::from_secs(40), |v| {
        is_event(v, "media")
    })
    .await
    .unwrap();
    c.silence(400).await.unwrap();
    // "Okay." while voxd talks: short, voxd talks on; longer, it stops and resumes.
    let from = c.messages().len();
    c.stream(&h.speak("Okay.")).await.unwrap();
    c.silence(2500).await.unwrap();
    let msgs = c.messages();
    let after = &msgs[from..];
    assert!(
        !after
            .iter()
            .any(|m| is_type(&m.json, "transcript") && m.json["role"] == "user"),
        "a backchannel became a turn: {:?}",
        after.iter().map(|m| m.json.to_string()).collect::<Vec<_>>()
    );
    if let Some(clear) = after.iter().position(|m| is_type(&m.json, "clear")) {
        let resumed = after[clear..]
            .iter()
            .find(|m| is_event(&m.json, "start"))
            .expect("the cut reply resumes");
        let within = resumed.at.duration_since(after[clear].at);
        assert!(within < Duration::from_secs(2), "resumed after {within:?}");
    }
    let late = msgs.len().saturating_sub(10);
    assert!(
        msgs[late..].iter().any(|m| is_event(&m.json, "media"))
            || msgs[from..]
                .iter()
                .any(|m| is_type(&m.json, "transcript") && m.json["role"] == "assistant"),
        "the reply went on"
    );
    let now = ignored(&common::metrics_text(h.api).await);
    assert_eq!(now, before + 1.0, "counted once as ignored");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_the_end_of_turn_model_hears_as_unfinished_gets_no_reply() {
    let h = harness();
    let unfinished = |text: &str| {
        counted(
            text,
            "voxd_end_of_turn_verdicts_total",
            "verdict",
            &["unfinished"],
        )
    };
    let before = unfinished(&common::metrics_text(h.api).await);
    let mut c = Caller::connect(h.api, "", Some(common::TOKEN))
        .await
        .unwrap();
    c.start(Encoding::Pcm16, "ws-model-pause").await.unwrap();
    let greeted = c
        .wait_for(0, "greeting transcript", Duration::from_secs(30), |v| {
            is_type(v, "transcript") && v["role"] == "assistant"
        })
        .await
        .unwrap();
    // "Your call cannot… be completed as dialed." (a recorded voice), with a 700 ms pause:
    // longer than the plain end of turn (500 ms), and the words alone ("Your call cannot")
    // tell nothing, so only the end-of-turn model keeps voxd quiet.
    let whole = common::prompt_cut("asterisk-en", "cannot-complete-as-dialed", &[1.0]).remove(0);
    let cut = (whole.samples.len() - 1600) / 2;
    let part = |samples: &[f32]| voxd::audio::Pcm {
        samples: samples.to_vec(),
        rate: whole.rate,
    };
    c.stream(&part(&whole.samples[..cut])).await.unwrap();
    c.silence(700).await.unwrap();
    c.stream(&part(&whole.samples[cut..])).await.unwrap();
    let sent = c.messages().len();
    let talked_over = c.messages()[greeted + 1..sent]
        .iter()
        .find(|m| is_event(&m.json, "start") || is_type(&m.json, "transcript"))
        .map(|m| m.json.to_string());
    assert_eq!(talked_over, None, "voxd answered in the caller's pause");
    let answered = c
        .wait_for(sent, "assistant transcript", Duration::from_secs(60), |v| {
            is_type(v, "transcript") && v["role"] == "assistant"
        })
        .await
        .unwrap();
    let heard: Vec<String> = c.messages()[greeted + 1..answered]
        .iter()
        .filter(|m| is_type(&m.json, "transcript") && m.json["role"] == "user")
        .map(|m| m.json["text"].as_str().unwrap().to_lowercase())
        .collect();
    assert_eq!(heard.len(), 1, "one turn, one reply: {heard:?}");
    assert!(
        heard[0].contains("call") && heard[0].contains("dialed"),
        "the whole sentence in one transcript: {heard:?}"
    );
    let after = unfinished(&common::metrics_text(h.api).await);
    assert!(
        after > before,
        "the model heard the pause: {before} → {after}"
    );
    c.close().await;
}

/// The close code voxd ended `c` with, once it has (at most `within` seconds from now).
async fn closed(c: &Caller, what: &str, within: u64) -> Option<u16> {
    wait_until(what, Duration::from_secs(within), || async {
        c.closed().ok_or("the socket is still open")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_garbage_and_too_fast_streams_are_closed() {
    use base64::Engine;
    let mut cfg = common::test_config();
    cfg.voximplant_stream.start_timeout_secs = 1;
    cfg.voximplant_stream.idle_timeout_secs = 2;
    let api = common::spawn_api(cfg, harness().engines.clone()).await;

    // Connected, never started: closed with 4408 after the start timeout.
    let t = Instant::now();
    let silent = Caller::connect(api, "", Some(common::TOKEN)).await.unwrap();
    assert_eq!(
        closed(&silent, "close of a stream without start", 5).await,
        Some(4408)
    );
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );

    // Started, then nothing: closed with 4408 after the idle timeout.
    let mut quiet = Caller::connect(api, "", Some(common::TOKEN)).await.unwrap();
    quiet.start(Encoding::Pcm16, "ws-quiet").await.unwrap();
    assert_eq!(
        closed(&quiet, "close of a stream that went quiet", 6).await,
        Some(4408)
    );

    // Binary frames instead of the JSON protocol: closed with 1008.
    let mut binary = Caller::connect(api, "", Some(common::TOKEN)).await.unwrap();
    binary.start(Encoding::Pcm16, "ws-binary").await.unwrap();
    for _ in 0..150 {
        if binary.send_binary(vec![0u8; 320]).await.is_err() {
            break;
        }
    }
    assert_eq!(
        closed(&binary, "close of a binary stream", 5).await,
        Some(1008)
    );

    // Twenty seconds of audio sent at once: dropped beyond a short burst, then closed.
    let mut fast = Caller::connect(api, "", Some(common::TOKEN)).await.unwrap();
    fast.start(Encoding::Pcm16, "ws-fast").await.unwrap();
    let payload = base64::engine::general_purpose::STANDARD.encode(vec![0u8; 640]);
    for chunk in 1..=1000u64 {
        let msg =
            serde_json::json!({"event": "media", "media": {"chunk": chunk, "payload": payload}});
        if fast.send_text(msg.to_string()).await.is_err() {
            break;
        }
    }
    assert_eq!(
        closed(&fast, "close of a too fast stream", 5).await,
        Some(1008)
    );

    // The same, with a start sent again before each burst: a start does not renew the
    // real-time budget.
    let mut restarting = Caller::connect(api, "", Some(common::TOKEN)).await.unwrap();
    'bursts: for _ in 0..30 {
        if restarting
            .start(Encoding::Pcm16, "ws-restarting")
            .await
            .is_err()
        {
            break;
        }
        for chunk in 1..=75u64 {
            let msg = serde_json::json!({"event": "media", "media": {"chunk": chunk, "payload": payload}});
            if restarting.send_text(msg.to_string()).await.is_err() {
                break 'bursts;
            }
        }
    }
    assert_eq!(
        closed(
            &restarting,
            "close of a stream restarted to send too fast",
            5
        )
        .await,
        Some(1008)
    );

    // voxd goes on serving.
    let health = reqwest::get(format!("http://{api}/health")).await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_stream_cannot_take_over_a_live_call() {
    let h = harness();
    let mut first = Caller::connect(h.api, "", Some(common::TOKEN))
        .await
        .unwrap();
    first.start(Encoding::Pcm16, "ws-owned").await.unwrap();
    first
        .wait_for(0, "greeting", Duration::from_secs(30), |v| {
            is_type(v, "transcript")
        })
        .await
        .unwrap();
    // The same call id, on another socket: refused, by the query or by customParameters.
    let by_query = Caller::connect(h.api, "?call_id=ws-owned", Some(common::TOKEN))
        .await
        .unwrap();
    assert_eq!(
        closed(&by_query, "close of a stream by query", 5).await,
        Some(1008)
    );
    let mut by_start = Caller::connect(h.api, "", Some(common::TOKEN))
        .await
        .unwrap();
    by_start.start(Encoding::Pcm16, "ws-owned").await.unwrap();
    assert_eq!(
        closed(&by_start, "close of a stream by start", 5).await,
        Some(1008)
    );
    // The call goes on on its own socket.
    first.silence(200).await.unwrap();
    assert!(first.closed().is_none());
    first.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voximplants_other_spellings_a_call_on_hold_and_keys() {
    let h = harness();
    let mut cfg = common::test_config();
    cfg.voximplant_stream.idle_timeout_secs = 6;
    cfg.dtmf.actions = [("9".to_string(), voxd::config::KeyAction::Hangup)].into();
    let api = common::spawn_api(cfg, h.engines.clone()).await;
    let assistant_said = |v: &Value| is_type(v, "transcript") && v["role"] == "assistant";

    // The MIME names, and the rate deciding linear PCM: voxd answers in what it was sent.
    for (i, (format, encoding)) in [
        (
            serde_json::json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}),
            Encoding::Ulaw,
        ),
        (
            serde_json::json!({"encoding": "PCM16", "sampleRate": 8000}),
            Encoding::Pcm8,
        ),
        (
            serde_json::json!({"encoding": "audio/PCMA"}),
            Encoding::Alaw,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = Caller::connect(api, "", Some(common::TOKEN)).await.unwrap();
        c.start_as(encoding, format.clone(), &format!("ws-wire-{i}"))
            .await
            .unwrap();
        let greeted = c
            .wait_for(0, "greeting", Duration::from_secs(20), assistant_said)
            .await
            .unwrap();
        let msgs = c.messages();
        let said = &msgs[0].json["start"]["mediaFormat"];
        assert_eq!(said["encoding"], encoding.wire_name(), "{format}");
        let greeting = decode_media(&msgs[..greeted]).unwrap();
        assert_eq!(greeting.rate, encoding.rate(), "{format}");
        c.close().await;
    }
    // An encoding voxd cannot play: closed with 1003.
    let mut opus = Caller::connect(api, "", Some(common::TOKEN)).await.unwrap();
    let format = serde_json::json!({"encoding": "audio/opus", "sampleRate": 48000});
    opus.start_as(Encoding::Pcm16, format, "ws-opus")
        .await
        .unwrap();
    assert_eq!(
        closed(&opus, "close of an opus stream", 5).await,
        Some(1003)
    );

    // On hold: no frame at all for twice the idle timeout, but the socket answers voxd's
    // pings: the call goes on.
    let mut c = Caller::connect(api, "", Some(common::TOKEN)).await.unwrap();
    c.start(Encoding::Pcm16, "ws-hold").await.unwrap();
    c.wait_for(0, "greeting", Duration::from_secs(20), assistant_said)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(13)).await;
    assert_eq!(c.closed(), None, "a call on hold was closed");

    // Keys: a run is read to the model, which answers it; a mapped key hangs up at once.
    let from = c.messages().len();
    c.press("1").await.unwrap();
    c.press("2").await.unwrap();
    let heard = c
        .wait_for(from, "the keys", Duration::from_secs(20), |v| {
            is_type(v, "transcript") && v["role"] == "user"
        })
        .await
        .unwrap();
    assert_eq!(
        c.messages()[heard].json["text"],
        "(The caller pressed 1 2 on the phone keypad.)"
    );
    c.wait_for(
        heard,
        "the reply to the keys",
        Duration::from_secs(40),
        assistant_said,
    )
    .await
    .unwrap();
    c.press("x").await.unwrap();
    c.press("9").await.unwrap();
    c.wait_for(heard, "hangup", Duration::from_secs(5), |v| {
        is_type(v, "hangup")
    })
    .await
    .unwrap();
    assert_eq!(
        closed(&c, "close after the hangup key", 5).await,
        Some(1000)
    );
    let health = reqwest::get(format!("http://{api}/health")).await.unwrap();
    assert_eq!(health.status(), 200);
}
