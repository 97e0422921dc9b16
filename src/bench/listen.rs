//! `voxd bench listen`: listening while the caller speaks against transcribing the whole
//! utterance at the end. Each utterance (spoken by the voice, at 16 kHz) goes through the
//! turn detector as a call's audio would; its partial transcripts are made in order, and at
//! the end of the turn only the rest is transcribed. For both ways: the word error rate
//! against the words spoken, and the transcription that starts only once the caller has
//! said the last word (a part cut in the final silence counts, as it starts then).

use std::time::Instant;

use anyhow::Result;

use super::wer::wer;
use crate::audio::{resample, Pcm, STT_RATE};
use crate::config::Config;
use crate::conversation::turn_detector::{TurnDetector, TurnEvent};
use crate::conversation::Settings;
use crate::engines::stt::Stt;

/// What callers say: the real-time benchmarks' questions, longer requests and short answers.
const UTTERANCES: [&str; 11] = [
    "Hello, what time do you open on Saturday?",
    "Can I book a table for four people tonight?",
    "How much does the delivery cost?",
    "Do you have any vegetarian dishes?",
    "Hi, my name is John Smith, and I would like to book a table for four people tomorrow at seven in the evening.",
    "I ordered a pizza about an hour ago, the order number is four five two, and it still has not arrived.",
    "Could you tell me whether you deliver to the north side of the city, and how long it usually takes?",
    "My phone number is five five five, one two three four, please call me back when the table is ready.",
    "Yes.",
    "No, thank you.",
    "Okay.",
];

/// One utterance, both ways.
struct Measured {
    secs: f64,
    parts: usize,
    wer_whole: f64,
    wer_listening: f64,
    whole_ms: Vec<f64>,
    after_ms: Vec<f64>,
}

/// Measures every utterance `runs` times and prints a table and a summary.
pub async fn run(mut cfg: Config, runs: usize) -> Result<()> {
    let runs = runs.max(1);
    let engines = super::load_engines(&mut cfg).await?;
    let settings = Settings::from_config(&cfg).turns;
    println!(
        "partial transcripts after {} ms of new speech, at word gaps; {} runs",
        settings.partial_ms, runs
    );
    let (tts, stt) = (engines.tts.clone(), engines.stt.clone());
    let rows = tokio::task::spawn_blocking(move || -> Result<Vec<(String, Measured)>> {
        UTTERANCES
            .iter()
            .map(|text| {
                let pcm = resample::to_rate(tts.synthesize(text)?, STT_RATE)?;
                let mut samples = pcm.to_i16();
                samples.extend(vec![0; STT_RATE as usize * 7 / 10]);
                Ok((
                    text.to_string(),
                    measure(&stt, settings, &samples, text, runs)?,
                ))
            })
            .collect()
    })
    .await??;
    println!("\n| utterance | s | parts | WER whole | WER listening | STT after the last word: whole | listening |\n|---|---|---|---|---|---|---|");
    let (mut wer_whole, mut wer_listening, mut whole, mut after) =
        (0.0, 0.0, Vec::new(), Vec::new());
    for (text, mut m) in rows {
        let short: String = text.chars().take(40).collect();
        println!(
            "| {short}… | {:.1} | {} | {:.2} | {:.2} | {:.0} ms | {:.0} ms |",
            m.secs,
            m.parts,
            m.wer_whole,
            m.wer_listening,
            super::median(&mut m.whole_ms),
            super::median(&mut m.after_ms)
        );
        wer_whole += m.wer_whole / UTTERANCES.len() as f64;
        wer_listening += m.wer_listening / UTTERANCES.len() as f64;
        whole.extend(m.whole_ms);
        after.extend(m.after_ms);
    }
    println!(
        "\nmean WER: whole {wer_whole:.3}, listening {wer_listening:.3}; transcription after the last word, median: whole {:.0} ms, listening {:.0} ms",
        super::median(&mut whole),
        super::median(&mut after)
    );
    Ok(())
}

/// Runs `samples` (16 kHz, ending in silence) through the detector and transcribes it
/// both ways.
fn measure(
    stt: &Stt,
    settings: crate::conversation::turn_detector::TurnSettings,
    samples: &[i16],
    text: &str,
    runs: usize,
) -> Result<Measured> {
    let mut detector = TurnDetector::new(STT_RATE, settings);
    let (mut cuts, mut turn) = (Vec::new(), None);
    for frame in samples.chunks(STT_RATE as usize / 50) {
        for event in detector.push(frame) {
            match event {
                TurnEvent::Partial(so_far) => cuts.push(so_far.len()),
                TurnEvent::PartialVoid(end) => cuts.retain(|&cut| cut != end),
                TurnEvent::TurnEnded(all) => turn = Some(all),
                _ => {}
            }
        }
    }
    let turn = turn.ok_or_else(|| anyhow::anyhow!("no end of turn in {text:?}"))?;
    // The turn ends with its silence (and the VAD's hangover): a cut in it is after the
    // last word.
    let silence = (settings.end_silence_ms + 200) * STT_RATE as usize / 1000;
    let last_word = turn.len().saturating_sub(silence);
    let f32s = |s: &[i16]| Pcm::from_i16(s, STT_RATE).samples;
    let mut m = Measured {
        secs: turn.len() as f64 / f64::from(STT_RATE),
        parts: cuts.len(),
        wer_whole: 0.0,
        wer_listening: 0.0,
        whole_ms: Vec::new(),
        after_ms: Vec::new(),
    };
    for _ in 0..runs {
        let t = Instant::now();
        let whole = stt.transcribe(&f32s(&turn))?.text;
        m.whole_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        m.wer_whole = wer(text, &whole);

        let (mut words, mut from, mut after) = (String::new(), 0, 0.0);
        for &cut in &cuts {
            let t = Instant::now();
            let heard = stt.transcribe(&f32s(&turn[from..cut]))?.text;
            if cut >= last_word {
                after += t.elapsed().as_secs_f64() * 1000.0;
            }
            if !heard.is_empty() {
                words = crate::conversation::join_words(&words, &heard);
                from = cut;
            }
        }
        let t = Instant::now();
        let rest = stt.transcribe(&f32s(&turn[from..]))?.text;
        m.after_ms.push(after + t.elapsed().as_secs_f64() * 1000.0);
        m.wer_listening = wer(text, &crate::conversation::join_words(&words, &rest));
    }
    Ok(m)
}
