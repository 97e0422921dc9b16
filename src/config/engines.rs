//! The engines' sections: `[models]` (which files), `[stt]`, `[llm]`, `[tts]`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    pub stt: PathBuf,
    pub llm: PathBuf,
    pub voice: PathBuf,
    pub onnxruntime: PathBuf,
    pub espeak_data: PathBuf,
    /// The end-of-turn model (Smart Turn v3); empty: turns end on silence and words alone.
    pub turn: PathBuf,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        let dir = PathBuf::from("models/test");
        Self {
            stt: dir.join("ggml-tiny.en.bin"),
            llm: dir.join("SmolLM2-135M-Instruct.Q4_1.gguf"),
            voice: dir.join("en_US-joe-medium.onnx"),
            onnxruntime: dir.join("libonnxruntime.so.1.24.4"),
            espeak_data: PathBuf::new(),
            turn: dir.join("smart-turn-v3.2-cpu.onnx"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SttConfig {
    pub language: String,
    pub threads: u32,
    pub beam_size: u32,
    pub temperature_fallback: bool,
    pub fit_audio_context: bool,
    pub use_gpu: bool,
    /// Words Whisper should expect (Whisper's initial prompt): the company's name, its
    /// products, street names. Empty: none.
    pub prompt: String,
    /// The knowledge base's headings go into Whisper's prompt too, before `prompt`.
    pub prompt_kb_headings: bool,
}

impl Default for SttConfig {
    fn default() -> Self {
        Self {
            language: "auto".into(),
            threads: 2,
            beam_size: 1,
            temperature_fallback: false,
            fit_audio_context: true,
            use_gpu: false,
            prompt: String::new(),
            prompt_kb_headings: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    pub system_prompt: String,
    pub max_reply_tokens: u32,
    pub max_sentences: u32,
    pub context_tokens: u32,
    pub threads: u32,
    pub temperature: f32,
    pub seed: u32,
    pub gpu_layers: u32,
    /// Replies written at once, each a sequence of the one batched context with its own
    /// KV cache (0: one per live call, `calls.max_live`). `workers` is its old name.
    #[serde(alias = "workers")]
    pub parallel: u32,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            system_prompt: "You are a friendly phone assistant for a small company. \
                Answer in one or two short sentences, in the caller's language. \
                When the caller says goodbye, say goodbye and end your reply with <hangup>."
                .into(),
            max_reply_tokens: 64,
            max_sentences: 2,
            context_tokens: 2048,
            threads: 2,
            temperature: 0.0,
            seed: 42,
            gpu_layers: 0,
            parallel: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TtsConfig {
    pub threads: u32,
    /// Sentences voiced at once (0: as many as `threads` fit in the cores).
    pub sessions: u32,
    pub speaker: i64,
    pub length_scale: f32,
    pub sentence_silence_ms: u32,
    pub reply_sample_rate: u32,
    pub deterministic: bool,
}

impl Default for TtsConfig {
    fn default() -> Self {
        Self {
            threads: 2,
            sessions: 0,
            speaker: 0,
            length_scale: 1.0,
            sentence_silence_ms: 200,
            reply_sample_rate: 0,
            deterministic: false,
        }
    }
}
