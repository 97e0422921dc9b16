//! The history's SQLite schema, migrated in numbered steps recorded in `PRAGMA
//! user_version`.

use anyhow::Result;
use rusqlite::Connection;

/// Schema steps; step N brings `user_version` from N to N + 1. Only ever append.
pub(super) const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE calls (
    id          TEXT PRIMARY KEY,
    transport   TEXT NOT NULL,
    direction   TEXT NOT NULL,
    phone       TEXT,
    status      TEXT NOT NULL,
    outcome     TEXT,
    context     TEXT,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    ended_at    INTEGER
);
CREATE INDEX calls_by_created ON calls (created_at);
CREATE TABLE turns (
    id          INTEGER PRIMARY KEY,
    call_id     TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    text        TEXT NOT NULL,
    at          INTEGER NOT NULL,
    timings     TEXT,
    barged_in   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX turns_by_call ON turns (call_id, id);
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    call_id     TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    event       TEXT NOT NULL,
    at          INTEGER NOT NULL,
    details     TEXT
);
CREATE INDEX events_by_call ON events (call_id, id);
CREATE TABLE leads (
    id          INTEGER PRIMARY KEY,
    call_id     TEXT REFERENCES calls (id) ON DELETE SET NULL,
    name        TEXT,
    phone       TEXT,
    request     TEXT,
    at          INTEGER NOT NULL
);
",
    r"
ALTER TABLE leads ADD COLUMN delivery TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE leads ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE leads ADD COLUMN last_error TEXT;
ALTER TABLE leads ADD COLUMN delivered_at INTEGER;
",
    r"
CREATE INDEX turns_by_time ON turns (at);
ALTER TABLE turns ADD COLUMN audio TEXT;
",
    r"
ALTER TABLE calls ADD COLUMN language TEXT;
",
];

/// Brings the database to the newest schema; refuses one newer than this voxd knows.
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > MIGRATIONS.len() {
        anyhow::bail!(
            "the database is at schema version {version}, newer than this voxd knows ({}); \
             upgrade voxd",
            MIGRATIONS.len()
        );
    }
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", step + 1)?;
        tx.commit()?;
        tracing::info!(version = step + 1, "call history schema migrated");
    }
    Ok(())
}
