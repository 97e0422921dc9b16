//! Call history in SQLite (WAL): every call (with the language it was answered in), its
//! turns (who said what, timings, whether the caller interrupted), its lifecycle events, and
//! leads. Writes are committed as they happen, so a crash loses no finished turn. The schema
//! is migrated in numbered steps recorded in `PRAGMA user_version`; calls older than the
//! retention period are purged.

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

mod schema;
#[cfg(test)]
mod tests;

use super::Lead;
use crate::metrics::Transport;
use schema::migrate;

/// One turn as stored.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TurnRecord {
    pub role: String,
    pub text: String,
    #[serde(serialize_with = "rfc3339")]
    pub at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<Value>,
    pub barged_in: bool,
    /// Where voxd's reply audio is served while it is kept (`/audio/<id>.wav`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_url: Option<String>,
}

/// A call as stored; `turns` and `events` are filled by [`History::call`] only.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    pub call_id: String,
    pub transport: String,
    pub direction: String,
    pub phone: Option<String>,
    pub status: String,
    pub outcome: Option<String>,
    pub context: Option<Value>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: i64,
    #[serde(serialize_with = "rfc3339_opt")]
    pub started_at: Option<i64>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub ended_at: Option<i64>,
    /// The language the call was last answered in (null: the base keys').
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub turns: Vec<TurnRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leads: Vec<Value>,
}

/// Which calls [`History::list`] picks: created in `since..until` (Unix ms), of a direction,
/// outcome and status, whose phone number contains `phone`; `limit` of them from `offset`.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    pub since: i64,
    pub until: Option<i64>,
    pub direction: Option<String>,
    pub outcome: Option<String>,
    pub status: Option<String>,
    pub phone: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// A lead as stored, with its id, call and time (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLead {
    pub id: i64,
    pub call_id: String,
    pub lead: Lead,
    pub at: i64,
}

/// The history database. Cheap writes (WAL, one connection behind a mutex).
pub struct History {
    conn: Mutex<Connection>,
}

/// Most events stored for one call (its first ending `Disconnected` or `Failed` always is).
pub const MAX_EVENTS_PER_CALL: usize = 200;
/// Most bytes of an event's details (JSON) stored.
pub const MAX_EVENT_DETAILS: usize = 4096;

/// An event's details as stored: whole when small; else the fields that fit, each at most
/// 256 bytes of JSON, marked `"truncated": true`.
fn bounded_details(details: &Value) -> String {
    let whole = details.to_string();
    if whole.len() <= MAX_EVENT_DETAILS {
        return whole;
    }
    let mut kept = serde_json::Map::new();
    kept.insert("truncated".into(), Value::Bool(true));
    let mut size = 32;
    for (key, value) in details.as_object().into_iter().flatten() {
        let field = key.len() + value.to_string().len() + 4;
        if key.len() > 64 || field > 256 + 68 || size + field > MAX_EVENT_DETAILS {
            continue;
        }
        size += field;
        kept.insert(key.clone(), value.clone());
    }
    Value::Object(kept).to_string()
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Unix milliseconds as an RFC 3339 UTC timestamp, e.g. 2026-11-21T20:15:03.120Z.
pub fn to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn rfc3339<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&to_rfc3339(*ms))
}

fn rfc3339_opt<S: serde::Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => rfc3339(ms, s),
        None => s.serialize_none(),
    }
}

impl History {
    /// Opens (creating it and its directory) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        }
        let mut conn = Connection::open(path)
            .with_context(|| format!("cannot open the call history {}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
        )?;
        migrate(&mut conn).with_context(|| format!("cannot migrate {}", path.display()))?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that a call is live (creating it, or marking a pending one, or one a crash
    /// interrupted, active).
    pub fn call_started(&self, call_id: &str, transport: Transport) -> Result<()> {
        let now = now_ms();
        self.lock().execute(
            "INSERT INTO calls (id, transport, direction, status, created_at, started_at)
             VALUES (?1, ?2, 'inbound', 'active', ?3, ?3)
             ON CONFLICT (id) DO UPDATE SET status = 'active',
                 started_at = COALESCE(started_at, excluded.started_at)
             WHERE status IN ('pending', 'active', 'interrupted')",
            params![call_id, transport.as_str(), now],
        )?;
        Ok(())
    }

    /// Records an outbound call voxd is about to place: pending, with the number and the
    /// caller's context; returns its creation time (Unix ms). The scenario's events later make
    /// it active and ended like any call (its direction stays outbound).
    pub fn call_placed(&self, call_id: &str, phone: &str, context: Option<&Value>) -> Result<i64> {
        let now = now_ms();
        self.lock().execute(
            "INSERT INTO calls (id, transport, direction, phone, status, context, created_at)
             VALUES (?1, ?2, 'outbound', ?3, 'pending', ?4, ?5)",
            params![
                call_id,
                Transport::Stream.as_str(),
                phone,
                context.map(Value::to_string),
                now
            ],
        )?;
        Ok(now)
    }

    /// At start-up: the calls a previous run left live (it crashed, or was killed) are
    /// `interrupted`; their ids. Not ended: the scenario's `Disconnected` may still come,
    /// and a recording-mode call may go on.
    pub fn interrupt_active(&self) -> Result<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "UPDATE calls SET status = 'interrupted', outcome = 'voxd_restarted'
             WHERE status = 'active' AND ended_at IS NULL RETURNING id",
        )?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }

    /// The turns of a call in order (role, text): a conversation to take up again.
    pub fn conversation(&self, call_id: &str) -> Result<Vec<(String, String)>> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT role, text FROM turns WHERE call_id = ?1 ORDER BY id")?;
        let turns = stmt
            .query_map(params![call_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(turns)
    }

    /// Records the language a call is answered in from now on.
    pub fn set_language(&self, call_id: &str, language: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE calls SET language = ?2 WHERE id = ?1",
            params![call_id, language],
        )?;
        Ok(())
    }

    /// The language a call was last answered in, if it is stored and has one.
    pub fn language(&self, call_id: &str) -> Result<Option<String>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT language FROM calls WHERE id = ?1",
                params![call_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    /// Records the end of a call with its outcome (first end wins).
    pub fn call_ended(&self, call_id: &str, status: &str, outcome: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE calls SET status = ?2, outcome = ?3, ended_at = ?4
             WHERE id = ?1 AND ended_at IS NULL",
            params![call_id, status, outcome, now_ms()],
        )?;
        Ok(())
    }

    /// Appends a finished turn; committed before this returns.
    pub fn add_turn(
        &self,
        call_id: &str,
        role: &str,
        text: &str,
        timings: Option<&Value>,
        barged_in: bool,
        audio_url: Option<&str>,
    ) -> Result<()> {
        self.lock().execute(
            "INSERT INTO turns (call_id, role, text, at, timings, barged_in, audio)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                call_id,
                role,
                text,
                now_ms(),
                timings.map(Value::to_string),
                barged_in,
                audio_url
            ],
        )?;
        Ok(())
    }

    /// Appends a lifecycle event as the scenario reported it.
    pub fn add_event(&self, call_id: &str, event: &str, details: &Value) -> Result<()> {
        let conn = self.lock();
        let (stored, ends_stored): (usize, usize) = conn.query_row(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE event IN ('Disconnected', 'Failed'))
             FROM events WHERE call_id = ?1",
            params![call_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let first_end = matches!(event, "Disconnected" | "Failed") && ends_stored == 0;
        if stored >= MAX_EVENTS_PER_CALL && !first_end {
            tracing::debug!(call_id, event, "event not stored: the call has too many");
            return Ok(());
        }
        conn.execute(
            "INSERT INTO events (call_id, event, at, details) VALUES (?1, ?2, ?3, ?4)",
            params![call_id, event, now_ms(), bounded_details(details)],
        )?;
        Ok(())
    }

    /// Stores a lead the assistant took (`delivery`: "pending" when a webhook will be tried,
    /// "none" without one); returns its id. Committed before this returns.
    pub fn add_lead(&self, call_id: &str, lead: &Lead, delivery: &str) -> Result<i64> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO leads (call_id, name, phone, request, at, delivery)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                call_id,
                lead.name,
                lead.phone,
                lead.request,
                now_ms(),
                delivery
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Leads the webhook has not taken yet (delivery "pending" or "failed"), oldest first:
    /// what a restart delivers again.
    pub fn undelivered_leads(&self) -> Result<Vec<StoredLead>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT id, call_id, name, phone, request, at FROM leads
             WHERE delivery IN ('pending', 'failed') ORDER BY id",
        )?;
        let leads = stmt
            .query_map([], |r| {
                Ok(StoredLead {
                    id: r.get(0)?,
                    call_id: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    lead: Lead {
                        name: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                        phone: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                        request: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                    },
                    at: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(leads)
    }

    /// Records one webhook try for a lead: delivered, or failed with `error` (`delivery`
    /// becomes "failed" when no try is left, else stays "pending").
    pub fn lead_attempt(&self, id: i64, error: Option<&str>, last: bool) -> Result<()> {
        let delivery = match (error, last) {
            (None, _) => "delivered",
            (Some(_), true) => "failed",
            (Some(_), false) => "pending",
        };
        self.lock().execute(
            "UPDATE leads SET attempts = attempts + 1, delivery = ?2, last_error = ?3,
                 delivered_at = CASE WHEN ?2 = 'delivered' THEN ?4 END
             WHERE id = ?1",
            params![id, delivery, error, now_ms()],
        )?;
        Ok(())
    }

    /// Whether the history has this call as over: ended, or interrupted by a restart and
    /// started more than `longest_ms` ago (a call that long is over whatever happened).
    pub fn has_ended(&self, call_id: &str, longest_ms: i64) -> Result<bool> {
        let cutoff = now_ms().saturating_sub(longest_ms);
        Ok(self
            .lock()
            .query_row(
                "SELECT 1 FROM calls WHERE id = ?1 AND (ended_at IS NOT NULL
                    OR (status = 'interrupted' AND COALESCE(started_at, created_at) < ?2))",
                params![call_id, cutoff],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Whether the history has this call.
    pub fn exists(&self, call_id: &str) -> Result<bool> {
        Ok(self
            .lock()
            .query_row(
                "SELECT 1 FROM calls WHERE id = ?1",
                params![call_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The stored direction of a call (`inbound`, `outbound`, `test`), if it is stored.
    pub fn direction(&self, call_id: &str) -> Result<Option<String>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT direction FROM calls WHERE id = ?1",
                params![call_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Marks a call as a test call from the console.
    pub fn mark_test(&self, call_id: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE calls SET direction = 'test' WHERE id = ?1",
            params![call_id],
        )?;
        Ok(())
    }

    /// A call with its turns and events.
    pub fn call(&self, call_id: &str) -> Result<Option<CallRecord>> {
        let conn = self.lock();
        let Some(mut call) = conn
            .query_row(
                &format!("{SELECT_CALL} WHERE id = ?1"),
                params![call_id],
                call_row,
            )
            .optional()?
        else {
            return Ok(None);
        };
        let mut stmt = conn.prepare(
            "SELECT role, text, at, timings, barged_in, audio FROM turns WHERE call_id = ?1
             ORDER BY id",
        )?;
        call.turns = stmt
            .query_map(params![call_id], |r| {
                Ok(TurnRecord {
                    role: r.get(0)?,
                    text: r.get(1)?,
                    at: r.get(2)?,
                    timings: json_column(r.get(3)?),
                    barged_in: r.get(4)?,
                    audio_url: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt =
            conn.prepare("SELECT event, at, details FROM events WHERE call_id = ?1 ORDER BY id")?;
        call.events = stmt
            .query_map(params![call_id], |r| {
                let mut v =
                    json_column(r.get(2)?).unwrap_or_else(|| Value::Object(Default::default()));
                v["event"] = Value::String(r.get(0)?);
                v["at"] = Value::String(to_rfc3339(r.get(1)?));
                Ok(v)
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = conn.prepare(
            "SELECT name, phone, request, at, delivery FROM leads WHERE call_id = ?1 ORDER BY id",
        )?;
        call.leads = stmt
            .query_map(params![call_id], |r| {
                Ok(serde_json::json!({
                    "name": r.get::<_, Option<String>>(0)?,
                    "phone": r.get::<_, Option<String>>(1)?,
                    "request": r.get::<_, Option<String>>(2)?,
                    "at": to_rfc3339(r.get(3)?),
                    "delivery": r.get::<_, String>(4)?,
                }))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Some(call))
    }

    /// The calls `filter` picks, newest first, one page of them; and how many it picks in
    /// all.
    pub fn list(&self, filter: &CallFilter) -> Result<(Vec<CallRecord>, u64)> {
        const WHERE: &str = "WHERE created_at >= ?1 AND (?2 IS NULL OR created_at < ?2)
             AND (?3 IS NULL OR direction = ?3) AND (?4 IS NULL OR outcome = ?4)
             AND (?5 IS NULL OR status = ?5) AND (?6 IS NULL OR instr(phone, ?6) > 0)";
        let f = filter;
        let conn = self.lock();
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM calls {WHERE}"),
            params![f.since, f.until, f.direction, f.outcome, f.status, f.phone],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare(&format!(
            "{SELECT_CALL} {WHERE} ORDER BY created_at DESC, rowid DESC LIMIT ?7 OFFSET ?8"
        ))?;
        let calls = stmt
            .query_map(
                params![
                    f.since,
                    f.until,
                    f.direction,
                    f.outcome,
                    f.status,
                    f.phone,
                    f.limit,
                    f.offset
                ],
                call_row,
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok((calls, total as u64))
    }

    /// voxd's turns since `since` (Unix ms) that carry timings, the newest `limit`, oldest
    /// first: `(call_id, at, transport, timings)`.
    pub fn timed_replies(
        &self,
        since: i64,
        limit: u32,
    ) -> Result<Vec<(String, i64, String, Value)>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT t.call_id, t.at, c.transport, t.timings FROM turns t
             JOIN calls c ON c.id = t.call_id
             WHERE t.role = 'assistant' AND t.timings IS NOT NULL AND t.at >= ?1
             ORDER BY t.at DESC, t.id DESC LIMIT ?2",
        )?;
        let mut rows: Vec<_> = stmt
            .query_map(params![since, limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, json_column(r.get(3)?)))
            })?
            .filter_map(|r| match r {
                Ok((id, at, transport, Some(timings))) => Some(Ok((id, at, transport, timings))),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<rusqlite::Result<_>>()?;
        rows.reverse();
        Ok(rows)
    }

    /// Fails the outbound calls still pending after `secs` (the scenario never reported:
    /// Voximplant did not run it, or it died before its first event), with the outcome
    /// `no_report`; returns their ids.
    pub fn expire_pending(&self, secs: u64) -> Result<Vec<String>> {
        let now = now_ms();
        let cutoff = now - i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "UPDATE calls SET status = 'failed', outcome = 'no_report', ended_at = ?2
             WHERE status = 'pending' AND created_at < ?1 RETURNING id",
        )?;
        let ids = stmt
            .query_map(params![cutoff, now], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    }

    /// Deletes calls (with their turns and events) created more than `days` ago; returns how
    /// many. `days` = 0 keeps everything.
    pub fn purge(&self, days: u32) -> Result<usize> {
        if days == 0 {
            return Ok(0);
        }
        let cutoff = now_ms() - i64::from(days) * 86_400_000;
        let conn = self.lock();
        // Leads go with their calls' retention: a lead outlives its call's row otherwise.
        conn.execute("DELETE FROM leads WHERE at < ?1", params![cutoff])?;
        Ok(conn.execute("DELETE FROM calls WHERE created_at < ?1", params![cutoff])?)
    }
}

const SELECT_CALL: &str = "SELECT id, transport, direction, phone, status, outcome, context, \
     created_at, started_at, ended_at, language FROM calls";

fn call_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CallRecord> {
    Ok(CallRecord {
        call_id: r.get(0)?,
        transport: r.get(1)?,
        direction: r.get(2)?,
        phone: r.get(3)?,
        status: r.get(4)?,
        outcome: r.get(5)?,
        context: json_column(r.get(6)?),
        created_at: r.get(7)?,
        started_at: r.get(8)?,
        ended_at: r.get(9)?,
        language: r.get(10)?,
        turns: Vec::new(),
        events: Vec::new(),
        leads: Vec::new(),
    })
}

fn json_column(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}
