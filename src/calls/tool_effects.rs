//! What voxd does when the assistant calls a tool on a live call, whatever its transport:
//! count it, note it in the call's history events, and for `save_lead` store the lead, then
//! deliver it to the webhook in the background (retries with doubling waits, each try
//! recorded). The call never waits for the webhook and never fails because of it; leads a
//! previous run could not deliver are tried again at start-up.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::history::{now_ms, to_rfc3339, History};
use super::CallLog;
use super::{Lead, ToolCall};

/// Acts on `tool`, called by the assistant on the call `call_id`; a console `test` call's
/// lead is stored but never sent to the company's webhook.
pub fn called(state: &Arc<CallLog>, call_id: &str, tool: &ToolCall, test: bool) {
    state.metrics.tool_called(tool.name());
    let details = match tool {
        ToolCall::Hangup => json!({}),
        ToolCall::Transfer => json!({ "to": state.tools.operator_phone }),
        ToolCall::SaveLead(lead) => json!(lead),
        ToolCall::SendDigits(digits) => json!({ "digits": digits }),
    };
    state.record("a tool call", |h| {
        h.add_event(call_id, tool.name(), &details)
    });
    if let ToolCall::SaveLead(lead) = tool {
        save_lead(state, call_id, lead, test);
    }
}

/// Stores the lead first (so it is never lost), then starts its delivery.
fn save_lead(state: &Arc<CallLog>, call_id: &str, lead: &Lead, test: bool) {
    let webhook = &state.tools.lead_webhook;
    let delivery = if test {
        "test"
    } else if webhook.is_empty() {
        "none"
    } else {
        "pending"
    };
    let mut id = None;
    state.record("a lead", |h| {
        id = Some(h.add_lead(call_id, lead, delivery)?);
        Ok(())
    });
    tracing::info!(lead_id = id, "lead saved");
    tracing::debug!(lead_id = id, name = %lead.name, phone = %lead.phone, request = %lead.request, "the lead's details");
    if delivery != "pending" {
        return;
    }
    tokio::spawn(deliver(
        state.clone(),
        id,
        payload(id, call_id, lead, now_ms()),
    ));
}

/// Delivers again, in the background, the leads a previous run stored but the webhook has
/// not taken (voxd stopped between tries, or the tries ran out): called at start-up.
pub fn redeliver_stored(state: &Arc<CallLog>) {
    if state.tools.lead_webhook.is_empty() {
        return;
    }
    let leads = match state.query(History::undelivered_leads) {
        None => return,
        Some(Ok(leads)) => leads,
        Some(Err(e)) => {
            tracing::error!("cannot read the undelivered leads: {e:#}");
            return;
        }
    };
    if !leads.is_empty() {
        tracing::info!(
            leads = leads.len(),
            "delivering the leads a previous run kept"
        );
    }
    for stored in leads {
        let body = payload(Some(stored.id), &stored.call_id, &stored.lead, stored.at);
        tokio::spawn(deliver(state.clone(), Some(stored.id), body));
    }
}

/// The webhook's JSON for a lead taken at `at` (Unix ms).
fn payload(id: Option<i64>, call_id: &str, lead: &Lead, at: i64) -> Value {
    json!({
        "lead_id": id,
        "call_id": call_id,
        "name": lead.name,
        "phone": lead.phone,
        "request": lead.request,
        "created_at": to_rfc3339(at),
    })
}

/// POSTs the lead until the webhook answers 2xx or the tries run out.
async fn deliver(state: Arc<CallLog>, id: Option<i64>, payload: Value) {
    let cfg = &state.tools;
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(cfg.webhook_timeout_secs))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(lead_id = id, "lead webhook: cannot make a client: {e}");
            return;
        }
    };
    let mut wait = Duration::from_millis(cfg.webhook_backoff_ms);
    for attempt in 1..=cfg.webhook_attempts {
        let result = post(&client, &cfg.lead_webhook, &payload).await;
        let last = attempt == cfg.webhook_attempts;
        if let Some(id) = id {
            state.record("a lead delivery", |h| {
                h.lead_attempt(id, result.as_ref().err().map(String::as_str), last)
            });
        }
        match result {
            Ok(()) => {
                tracing::info!(lead_id = id, attempt, "lead delivered to the webhook");
                return;
            }
            Err(e) if last => {
                tracing::error!(lead_id = id, attempt, "lead not delivered, giving up: {e}");
                state.metrics.error("lead_webhook");
            }
            Err(e) => {
                tracing::warn!(
                    lead_id = id,
                    attempt,
                    retry_in_ms = wait.as_millis() as u64,
                    "lead webhook failed: {e}"
                );
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
    }
}

async fn post(client: &reqwest::Client, url: &str, payload: &Value) -> Result<(), String> {
    let resp = client
        .post(url)
        .json(payload)
        .send()
        .await
        // The webhook's URL (often holding a secret) stays out of the logs and the history.
        .map_err(|e| e.without_url().to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("the webhook answered {}", resp.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ToolsConfig;
    use crate::metrics::Transport;

    #[test]
    fn a_test_calls_lead_is_stored_but_never_sent() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::open(&dir.path().join("h.db")).unwrap();
        history.call_started("test-1", Transport::Stream).unwrap();
        let tools = ToolsConfig {
            lead_webhook: "http://127.0.0.1:9/leads".into(),
            ..Default::default()
        };
        let log = Arc::new(CallLog::new(Some(history), Default::default(), tools));
        let lead = Lead {
            name: "Ann".into(),
            phone: "+15551234567".into(),
            request: "a cake".into(),
        };
        // No runtime here: a delivery would have to be spawned on one, so none was.
        called(&log, "test-1", &ToolCall::SaveLead(lead), true);
        let stored = log.query(|h| h.call("test-1")).unwrap().unwrap().unwrap();
        assert_eq!(stored.leads[0]["delivery"], "test");
        assert!(log
            .query(History::undelivered_leads)
            .unwrap()
            .unwrap()
            .is_empty());
    }
}
