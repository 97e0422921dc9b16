//! The assistant's tools: end the call, transfer it to a human operator, save a lead, press
//! keys on the call. Owns
//! the one fixed form a tool call takes in a reply (spoken text, then at most one
//! `<tool_call>{json}</tool_call>` or the older `<hangup>` marker), the llama.cpp grammar
//! that makes every constrained reply take that form, the tools' description for the system
//! prompt, and the parsing of a reply's tail back into a [`ToolCall`].

pub mod phone;

use serde::Deserialize;

pub use crate::calls::{Lead, ToolCall, MAX_DIGITS};
use crate::config::{PhoneCountry, ToolsConfig};
use crate::engines::Grammar;

/// Marker the system prompt may ask the model to emit when the call should end.
pub const HANGUP_MARKER: &str = "<hangup>";
/// Opens a tool call (the Hermes / Qwen2.5 chat-template form).
pub const CALL_OPEN: &str = "<tool_call>";
/// Closes a tool call.
pub const CALL_CLOSE: &str = "</tool_call>";

/// Most bytes a tool call can take under the grammar (its strings are bounded): the worker
/// lets a reply that has started one run this many tokens past its length limit, so a call
/// is never cut off half written.
pub const MAX_CALL_BYTES: usize = 400;

/// The tools a reply may call (from `[tools]`); none when `tools.enabled` is false.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// Offer `transfer` (the operator's number is set).
    pub transfer: bool,
    /// Exchanges (caller's words, assistant's reply) put before every call's history to
    /// show the model when and how to call the tools.
    pub examples: Vec<[String; 2]>,
    /// How a lead's national number is completed to E.164.
    pub phone_country: PhoneCountry,
    /// Offer `send_digits` (`tools.send_digits`).
    pub send_digits: bool,
}

impl Tools {
    pub fn from_config(cfg: &ToolsConfig) -> Option<Self> {
        cfg.enabled.then(|| Self {
            transfer: !cfg.operator_phone.is_empty(),
            examples: cfg.examples.clone(),
            phone_country: cfg.phone_country,
            send_digits: cfg.send_digits,
        })
    }

    /// The constraint every reply is decoded under: [`Self::grammar`], with room past the
    /// length limit for a tool call that has begun.
    pub fn llm_grammar(&self) -> Grammar {
        Grammar {
            gbnf: self.grammar(),
            tail_tokens: MAX_CALL_BYTES,
        }
    }

    /// The GBNF grammar every reply is decoded under: spoken text (no `<`, at least one
    /// visible character), then optionally the hangup marker or exactly one call of an
    /// offered tool, with its arguments in a fixed order and bounded length.
    pub fn grammar(&self) -> String {
        let mut calls = vec!["hangup", "lead"];
        if self.transfer {
            calls.insert(1, "transfer");
        }
        if self.send_digits {
            calls.push("digits");
        }
        format!(
            r#"root ::= [ \t\n]* [^< \t\n] [^<]* tail?
tail ::= "{HANGUP_MARKER}" | "{CALL_OPEN}" call "{CALL_CLOSE}"
call ::= {calls}
hangup ::= "{{\"name\": \"hangup\"}}"
transfer ::= "{{\"name\": \"transfer\"}}"
lead ::= "{{\"name\": \"save_lead\", \"arguments\": {{\"name\": " str ", \"phone\": " phone ", \"request\": " str "}}}}"
str ::= "\"" [^"\\<>\x00-\x1f]{{1,80}} "\""
phone ::= "\"" "+"? [0-9]{{7,15}} "\""
{digits}"#,
            calls = calls.join(" | "),
            digits = if self.send_digits {
                format!(
                    r#"digits ::= "{{\"name\": \"send_digits\", \"arguments\": {{\"digits\": \"" [0-9*#]{{1,{MAX_DIGITS}}} "\"}}}}"
"#
                )
            } else {
                String::new()
            }
        )
    }

    /// The tools' description for the system prompt. `hermes`: the model's chat template
    /// knows tool calls in `<tool_call>` tags (Qwen2.5, Hermes), so the description uses the
    /// words that template puts in the system message; otherwise a plain one.
    pub fn describe(&self, hermes: bool) -> String {
        let mut specs = vec![
            (
                "hangup",
                "End the call after saying goodbye.",
                serde_json::json!({}),
            ),
            (
                "save_lead",
                "Save the caller's name, phone number and request for the company.",
                serde_json::json!({
                    "name": {"type": "string"},
                    "phone": {"type": "string", "description": "digits, e.g. +79991234567"},
                    "request": {"type": "string"}
                }),
            ),
        ];
        if self.transfer {
            specs.insert(
                1,
                (
                    "transfer",
                    "Connect the caller to a human operator.",
                    serde_json::json!({}),
                ),
            );
        }
        if self.send_digits {
            specs.push((
                "send_digits",
                "Press keys on the phone, e.g. to choose an option in another company's menu.",
                serde_json::json!({
                    "digits": {"type": "string", "description": "the keys: 0-9, * and #, e.g. \"1\""}
                }),
            ));
        }
        if hermes {
            let mut out = String::from(
                "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n\
                 You are provided with function signatures within <tools></tools> XML tags:\n<tools>",
            );
            for (name, what, props) in &specs {
                let f = serde_json::json!({"type": "function", "function": {
                    "name": name, "description": what,
                    "parameters": {"type": "object", "properties": props}}});
                out.push('\n');
                out.push_str(&f.to_string());
            }
            out.push_str(
                "\n</tools>\n\nFor each function call, return a json object with function name \
                 and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n\
                 {\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>",
            );
            return out;
        }
        let mut out = String::from(
            "You can act: after your words, write one tool call as \
             <tool_call>{\"name\": \"TOOL\"}</tool_call>. Tools:",
        );
        for (name, what, _) in &specs {
            out.push_str(&format!("\n- {name}: {what}"));
        }
        out.push_str(
            "\nsave_lead takes arguments: <tool_call>{\"name\": \"save_lead\", \"arguments\": \
             {\"name\": \"Ann\", \"phone\": \"+15551234567\", \"request\": \"a cake\"}}</tool_call>",
        );
        out
    }
}

/// Where a reply's tail (a tool call or the hangup marker) begins in `text`, if it does.
pub fn tail_start(text: &str) -> Option<usize> {
    [HANGUP_MARKER, CALL_OPEN]
        .iter()
        .filter_map(|m| text.find(m))
        .min()
}

/// Length of the end of `text` that may be the start of a tail not yet complete (`<`,
/// `<tool_c`…), to hold back from speech.
pub fn partial_tail(text: &str) -> usize {
    let Some(i) = text.rfind('<') else { return 0 };
    let rest = &text[i..];
    if [HANGUP_MARKER, CALL_OPEN]
        .iter()
        .any(|m| m.starts_with(rest) && m.len() > rest.len())
    {
        rest.len()
    } else {
        0
    }
}

/// Why a tail is not a usable tool call.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not a tool call: {0:?}")]
    NotACall(String),
    #[error("tool call {0:?} is not JSON in the expected form")]
    BadJson(String),
    #[error("tool {0:?} is not offered")]
    NotOffered(String),
    #[error("save_lead: {0}")]
    BadLead(String),
    #[error("send_digits: {0:?} are not 1 to 20 keys (0-9, *, #)")]
    BadDigits(String),
}

#[derive(Deserialize)]
struct RawCall {
    name: String,
    #[serde(default)]
    arguments: serde_json::Value,
}

/// Reads a reply's tail (from [`tail_start`] on) as the call of an offered tool.
pub fn parse(tail: &str, tools: &Tools) -> Result<ToolCall, ParseError> {
    let tail = tail.trim();
    if tail.starts_with(HANGUP_MARKER) {
        return Ok(ToolCall::Hangup);
    }
    let body = tail
        .strip_prefix(CALL_OPEN)
        .and_then(|b| {
            b.split(CALL_CLOSE)
                .next()
                .filter(|_| b.contains(CALL_CLOSE))
        })
        .ok_or_else(|| ParseError::NotACall(tail.to_string()))?;
    let raw: RawCall =
        serde_json::from_str(body.trim()).map_err(|_| ParseError::BadJson(body.to_string()))?;
    match raw.name.as_str() {
        "hangup" => Ok(ToolCall::Hangup),
        "transfer" if tools.transfer => Ok(ToolCall::Transfer),
        "save_lead" => lead(&raw.arguments, tools.phone_country).map(ToolCall::SaveLead),
        "send_digits" if tools.send_digits => digits(&raw.arguments).map(ToolCall::SendDigits),
        other => Err(ParseError::NotOffered(other.to_string())),
    }
}

fn digits(args: &serde_json::Value) -> Result<String, ParseError> {
    let digits = args
        .get("digits")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let keys = digits
        .chars()
        .all(|c| c.is_ascii_digit() || c == '*' || c == '#');
    if keys && (1..=MAX_DIGITS).contains(&digits.len()) {
        Ok(digits.to_string())
    } else {
        Err(ParseError::BadDigits(digits.chars().take(40).collect()))
    }
}

fn lead(args: &serde_json::Value, country: PhoneCountry) -> Result<Lead, ParseError> {
    let field = |key: &str| {
        args.get(key)
            .and_then(|v| v.as_str())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ParseError::BadLead(format!("{key} is missing")))
    };
    let raw_phone = field("phone")?;
    let phone = phone::normalize(&raw_phone, country)
        .ok_or_else(|| ParseError::BadLead(format!("{raw_phone:?} is not a phone number")))?;
    Ok(Lead {
        name: field("name")?,
        phone,
        request: field("request")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Tools = Tools {
        transfer: true,
        examples: Vec::new(),
        phone_country: crate::config::PhoneCountry::Ru,
        send_digits: true,
    };

    #[test]
    fn tails_parse_into_calls() {
        assert_eq!(parse("<hangup>", &ALL), Ok(ToolCall::Hangup));
        assert_eq!(
            parse(r#"<tool_call>{"name": "hangup"}</tool_call>"#, &ALL),
            Ok(ToolCall::Hangup)
        );
        assert_eq!(
            parse(
                "<tool_call>\n{\"name\": \"transfer\", \"arguments\": {}}\n</tool_call>",
                &ALL
            ),
            Ok(ToolCall::Transfer)
        );
        let lead = r#"<tool_call>{"name": "save_lead", "arguments": {"name": "Ann Lee", "phone": "+7 (999) 123-45-67", "request": "a cake"}}</tool_call>"#;
        assert_eq!(
            parse(lead, &ALL),
            Ok(ToolCall::SaveLead(Lead {
                name: "Ann Lee".into(),
                phone: "+79991234567".into(),
                request: "a cake".into(),
            }))
        );
    }

    #[test]
    fn bad_or_unoffered_calls_are_refused() {
        let no_transfer = Tools {
            transfer: false,
            examples: Vec::new(),
            phone_country: crate::config::PhoneCountry::Ru,
            send_digits: false,
        };
        let transfer = r#"<tool_call>{"name": "transfer"}</tool_call>"#;
        assert_eq!(
            parse(transfer, &no_transfer),
            Err(ParseError::NotOffered("transfer".into()))
        );
        assert!(matches!(
            parse(r#"<tool_call>{"name": "transfer""#, &ALL),
            Err(ParseError::NotACall(_))
        ));
        assert!(matches!(
            parse("<tool_call>{name: transfer}</tool_call>", &ALL),
            Err(ParseError::BadJson(_))
        ));
        let bad_phone = r#"<tool_call>{"name": "save_lead", "arguments": {"name": "A", "phone": "12", "request": "x"}}</tool_call>"#;
        assert!(matches!(
            parse(bad_phone, &ALL),
            Err(ParseError::BadLead(_))
        ));
        let no_name = r#"<tool_call>{"name": "save_lead", "arguments": {"phone": "+15551234567", "request": "x"}}</tool_call>"#;
        assert!(matches!(parse(no_name, &ALL), Err(ParseError::BadLead(_))));
    }

    #[test]
    fn send_digits_presses_keys_when_offered() {
        let call = |digits: &str| {
            format!(
                r#"<tool_call>{{"name": "send_digits", "arguments": {{"digits": "{digits}"}}}}</tool_call>"#
            )
        };
        assert_eq!(
            parse(&call("1#"), &ALL),
            Ok(ToolCall::SendDigits("1#".into()))
        );
        for bad in ["", "12a", "1 2", &"1".repeat(21)] {
            assert!(
                matches!(parse(&call(bad), &ALL), Err(ParseError::BadDigits(_))),
                "{bad:?}"
            );
        }
        let without = Tools {
            send_digits: false,
            ..ALL
        };
        assert_eq!(
            parse(&call("1"), &without),
            Err(ParseError::NotOffered("send_digits".into()))
        );
        assert!(ALL.grammar().contains("send_digits"));
        assert!(!without.grammar().contains("send_digits"));
        assert!(ALL.describe(true).contains("send_digits"));
        assert!(!without.describe(false).contains("send_digits"));
    }

    #[test]
    fn tail_boundaries() {
        let text = "Goodbye! <tool_call>{\"name\": \"hangup\"}</tool_call>";
        assert_eq!(tail_start(text), Some(9));
        assert_eq!(tail_start("Bye. <hangup>"), Some(5));
        assert_eq!(tail_start("a < b"), None);
        assert_eq!(partial_tail("Bye. <tool_c"), 7);
        assert_eq!(partial_tail("Bye. <"), 1);
        assert_eq!(partial_tail("a < b"), 0);
        assert_eq!(partial_tail("no tail"), 0);
    }

    #[test]
    fn grammar_offers_transfer_only_with_an_operator() {
        assert!(ALL.grammar().contains("call ::= hangup | transfer | lead"));
        let g = Tools {
            transfer: false,
            examples: Vec::new(),
            phone_country: crate::config::PhoneCountry::Ru,
            send_digits: false,
        }
        .grammar();
        assert!(g.contains("call ::= hangup | lead"), "{g}");
        assert!(!Tools {
            transfer: false,
            examples: Vec::new(),
            phone_country: crate::config::PhoneCountry::Ru,
            send_digits: false,
        }
        .describe(false)
        .contains("transfer"));
        assert!(ALL.describe(true).contains("<tools>\n{\"function\""));
    }
}
