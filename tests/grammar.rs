//! The reply grammar against adversarial model output, on the real llama.cpp grammar sampler
//! and the real test model's vocabulary. llama.cpp aborts the whole process when a sampler
//! accepts a token its grammar cannot take, which happens only if the grammar leaves no token
//! allowed (a dead end). So every output below is forced through the grammar token by token:
//! where the model would write what the grammar refuses, the walk goes on with a token the
//! grammar allows, as sampling would. At every step some token must be allowed, the walk must
//! end, and what it wrote must be speech with, at most, one tail that parses.

mod common;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;
use voxd::conversation::tools::{self, Tools};

/// How one forced output went.
struct Walk {
    /// What the grammar let through, as text.
    written: String,
    /// The index of the first token of the output the grammar refused.
    refused_at: Option<usize>,
}

/// Tokens the grammar allows next.
fn allowed(model: &LlamaModel, grammar: &mut LlamaSampler) -> Vec<LlamaToken> {
    let all = (0..model.n_vocab()).map(|i| LlamaTokenData::new(LlamaToken(i), 0.0, 0.0));
    let mut data = LlamaTokenDataArray::from_iter(all, false);
    data.apply_sampler(grammar);
    data.data
        .iter()
        .filter(|d| d.logit().is_finite())
        .map(|d| d.id())
        .collect()
}

/// Forces `output` through the grammar; past a refusal, takes the first allowed token (the
/// end, when the grammar allows it) until the grammar is satisfied.
fn walk(model: &LlamaModel, gbnf: &str, output: &str) -> Walk {
    let vocab = model.vocab();
    let mut grammar = LlamaSampler::grammar(model, gbnf, "root").expect("the grammar loads");
    let mut forced = vocab.tokenize(output.as_bytes(), false, false).into_iter();
    let (mut written, mut refused_at, mut bytes) = (String::new(), None, Vec::new());
    for step in 0..2000 {
        let ok = allowed(model, &mut grammar);
        assert!(
            !ok.is_empty(),
            "dead end after {written:?} (forcing {output:?}): llama.cpp would abort"
        );
        let wanted = if refused_at.is_none() {
            forced.next()
        } else {
            None
        };
        let token = match wanted {
            Some(t) if ok.contains(&t) => t,
            // The output is done, or the grammar refused it from here: sampling would pick
            // an allowed token, and the end as soon as the grammar allows it.
            other => {
                if other.is_some() {
                    refused_at = Some(step);
                }
                if ok.iter().any(|t| vocab.is_eog(*t)) {
                    break;
                }
                ok[0]
            }
        };
        assert!(!vocab.is_eog(token));
        grammar.accept(token);
        bytes.extend(vocab.token_to_piece(token, false, None));
        written = String::from_utf8_lossy(&bytes).into_owned();
    }
    assert!(
        allowed(model, &mut grammar)
            .iter()
            .any(|t| vocab.is_eog(*t)),
        "the walk of {output:?} never reached an end: {written:?}"
    );
    Walk {
        written,
        refused_at,
    }
}

#[test]
fn adversarial_outputs_never_reach_a_dead_end_and_end_in_a_parseable_tail() {
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
    let backend = LlamaBackend::init().unwrap();
    let cfg = common::test_config();
    let model = LlamaModel::load_from_file(&backend, &cfg.models.llm, &LlamaModelParams::default())
        .expect("the test LLM loads");
    let mut tools_cfg = cfg.tools.clone();
    tools_cfg.enabled = true;
    tools_cfg.operator_phone = "+79990001122".into();
    tools_cfg.send_digits = true;
    let offered = Tools::from_config(&tools_cfg).expect("tools on");
    let gbnf = offered.grammar();

    let long = "x".repeat(300);
    let lead = |name: &str, phone: &str, request: &str| {
        format!(
            r#"Noted. <tool_call>{{"name": "save_lead", "arguments": {{"name": "{name}", "phone": "{phone}", "request": "{request}"}}}}</tool_call>"#
        )
    };
    let outputs = [
        // Nothing to say, whitespace only, a call with no speech before it.
        String::new(),
        " \n\t ".into(),
        r#"<tool_call>{"name": "transfer"}</tool_call>"#.into(),
        // Calls that are not offered, not closed, nested, closed without opening.
        r#"Sure. <tool_call>{"name": "rm -rf /"}</tool_call>"#.into(),
        r#"Sure. <tool_call>{"name": "transfer""#.into(),
        r#"Sure. <tool_call><tool_call>{"name": "hangup"}</tool_call></tool_call>"#.into(),
        "Sure. </tool_call> and <b>bold</b>".into(),
        // Text after a finished call or the marker.
        r#"Connecting you. <tool_call>{"name": "transfer"}</tool_call> and then more words"#.into(),
        "Goodbye! <hangup> no, wait".into(),
        // Lead arguments past their bounds, with quotes, escapes, markup, control characters.
        lead(&long, "+79991234567", "rolls"),
        lead("Tom \"the\" \\ <b>", "+7999", "x"),
        lead("Tom", "call me maybe", "rolls"),
        lead("Tom", "+7999123456789012345", "rolls"),
        lead("Tom\u{7}\n", "+79991234567", ""),
        format!(
            "{}, \"extra\": 1}}}}</tool_call>",
            lead("Tom", "+79991234567", "rolls").trim_end_matches("}}</tool_call>")
        ),
        // Keys: too many, not keys, an argument that is not a string, a well-formed call.
        r#"Pressing. <tool_call>{"name": "send_digits", "arguments": {"digits": "123456789012345678901234567890"}}</tool_call>"#.into(),
        r#"Pressing. <tool_call>{"name": "send_digits", "arguments": {"digits": "1; rm -rf"}}</tool_call>"#.into(),
        r#"Pressing. <tool_call>{"name": "send_digits", "arguments": {"digits": 5}}</tool_call>"#.into(),
        r#"Pressing one. <tool_call>{"name": "send_digits", "arguments": {"digits": "1#"}}</tool_call>"#.into(),
        // Speech in Russian and emoji, then the marker.
        "Спасибо за звонок, до свидания! 👋📞 <hangup>".into(),
    ];
    for output in &outputs {
        let w = walk(&model, &gbnf, output);
        let text = w.written.as_str();
        match tools::tail_start(text) {
            Some(i) => {
                assert!(!text[..i].trim().is_empty(), "{output:?} → {text:?}");
                assert!(!text[..i].contains('<'), "{output:?} → {text:?}");
                tools::parse(&text[i..], &offered)
                    .unwrap_or_else(|e| panic!("{output:?} → {text:?}: {e}"));
            }
            None => assert!(
                !text.contains('<') && !text.trim().is_empty(),
                "{output:?} → {text:?}"
            ),
        }
        if output.ends_with("no, wait") || output.ends_with("more words") {
            assert!(w.refused_at.is_some(), "nothing may follow a finished tail");
            assert!(text.ends_with('>'), "{text:?}");
        }
    }
    // A well-formed reply goes through untouched.
    let fine = r#"I'll connect you now. <tool_call>{"name": "transfer"}</tool_call>"#;
    let w = walk(&model, &gbnf, fine);
    assert_eq!((w.written.as_str(), w.refused_at), (fine, None));
}
