//! The history against a real SQLite file.

use super::schema::MIGRATIONS;
use super::*;
use serde_json::json;

fn open() -> (tempfile::TempDir, History) {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(&dir.path().join("sub/history.db")).unwrap();
    (dir, h)
}

#[test]
fn a_call_keeps_its_turns_and_events_in_order() {
    let (_d, h) = open();
    h.call_started("c1", Transport::Stream).unwrap();
    h.add_event("c1", "Connected", &json!({"mode": "stream"}))
        .unwrap();
    h.add_turn("c1", "user", "hello", None, false, None)
        .unwrap();
    h.add_turn(
        "c1",
        "assistant",
        "hi there",
        Some(&json!({"total": 5.0})),
        true,
        Some("/audio/abc.wav"),
    )
    .unwrap();
    h.call_ended("c1", "ended", "assistant_hangup").unwrap();
    h.call_ended("c1", "failed", "later end is ignored")
        .unwrap();
    let c = h.call("c1").unwrap().unwrap();
    assert_eq!(c.transport, "stream");
    assert_eq!(
        (c.status.as_str(), c.outcome.as_deref()),
        ("ended", Some("assistant_hangup"))
    );
    let texts: Vec<_> = c
        .turns
        .iter()
        .map(|t| (t.role.as_str(), t.text.as_str()))
        .collect();
    assert_eq!(texts, [("user", "hello"), ("assistant", "hi there")]);
    assert!(c.turns[1].barged_in && !c.turns[0].barged_in);
    assert_eq!(c.turns[1].timings, Some(json!({"total": 5.0})));
    assert_eq!(
        (
            c.turns[0].audio_url.as_deref(),
            c.turns[1].audio_url.as_deref()
        ),
        (None, Some("/audio/abc.wav"))
    );
    assert_eq!(c.events[0]["event"], "Connected");
    assert_eq!(c.events[0]["mode"], "stream");
    assert!(h.call("nope").unwrap().is_none());
}

#[test]
fn a_call_keeps_the_language_it_was_last_answered_in() {
    let (_d, h) = open();
    h.call_started("c1", Transport::Stream).unwrap();
    assert_eq!(h.language("c1").unwrap(), None);
    assert_eq!(h.call("c1").unwrap().unwrap().language, None);
    h.set_language("c1", "en").unwrap();
    h.set_language("c1", "ru").unwrap();
    assert_eq!(h.language("c1").unwrap().as_deref(), Some("ru"));
    let shown = serde_json::to_value(h.call("c1").unwrap().unwrap()).unwrap();
    assert_eq!(shown["language"], "ru");
    let (listed, _) = h
        .list(&CallFilter {
            limit: 10,
            ..CallFilter::default()
        })
        .unwrap();
    assert_eq!(listed[0].language.as_deref(), Some("ru"));
    assert_eq!(h.language("nope").unwrap(), None);
}

#[test]
fn a_lead_is_stored_and_its_delivery_tracked() {
    let (_d, h) = open();
    h.call_started("c1", Transport::Recording).unwrap();
    let lead = Lead {
        name: "Ann".into(),
        phone: "+15551234567".into(),
        request: "a cake".into(),
    };
    let id = h.add_lead("c1", &lead, "pending").unwrap();
    let shown = &h.call("c1").unwrap().unwrap().leads;
    assert_eq!(
        (shown[0]["name"].as_str(), shown[0]["delivery"].as_str()),
        (Some("Ann"), Some("pending"))
    );
    h.lead_attempt(id, Some("503"), false).unwrap();
    let row = |h: &History| -> (String, String, i64, Option<String>, bool) {
        h.lock()
            .query_row(
                "SELECT phone, delivery, attempts, last_error, delivered_at IS NOT NULL
                 FROM leads WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap()
    };
    assert_eq!(
        row(&h),
        (
            "+15551234567".into(),
            "pending".into(),
            1,
            Some("503".into()),
            false
        )
    );
    h.lead_attempt(id, None, false).unwrap();
    assert_eq!(
        row(&h),
        ("+15551234567".into(), "delivered".into(), 2, None, true)
    );
    let other = h.add_lead("c1", &lead, "pending").unwrap();
    h.lead_attempt(other, Some("timeout"), true).unwrap();
    let failed: String = h
        .lock()
        .query_row(
            "SELECT delivery FROM leads WHERE id = ?1",
            params![other],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failed, "failed");
}

#[test]
fn a_placed_call_stays_outbound_through_its_events() {
    let (_d, h) = open();
    let at = h
        .call_placed("o1", "+79001112233", Some(&json!({"order": 42})))
        .unwrap();
    let c = h.call("o1").unwrap().unwrap();
    assert_eq!(
        (c.status.as_str(), c.direction.as_str()),
        ("pending", "outbound")
    );
    assert_eq!((c.created_at, c.started_at), (at, None));
    assert_eq!(c.phone.as_deref(), Some("+79001112233"));
    assert_eq!(c.context, Some(json!({"order": 42})));
    h.call_started("o1", Transport::Stream).unwrap();
    let c = h.call("o1").unwrap().unwrap();
    assert_eq!(
        (c.status.as_str(), c.direction.as_str()),
        ("active", "outbound")
    );
    assert!(c.started_at.is_some());
    h.call_ended("o1", "failed", "486 Busy Here").unwrap();
    let c = h.call("o1").unwrap().unwrap();
    assert_eq!(
        (c.status.as_str(), c.outcome.as_deref()),
        ("failed", Some("486 Busy Here"))
    );
    assert!(h.call_placed("o1", "+79001112233", None).is_err());
}

#[test]
fn list_is_newest_first_bounded_paged_and_filtered() {
    let (_d, h) = open();
    for id in ["a", "b", "c"] {
        h.call_started(id, Transport::Recording).unwrap();
    }
    h.call_placed("o1", "+79001112233", None).unwrap();
    h.call_ended("b", "ended", "hangup").unwrap();
    let page = |f: CallFilter| -> (Vec<String>, u64) {
        let (calls, total) = h.list(&f).unwrap();
        (calls.into_iter().map(|c| c.call_id).collect(), total)
    };
    let all = |limit, offset| CallFilter {
        limit,
        offset,
        ..Default::default()
    };
    assert_eq!(page(all(2, 0)), (vec!["o1".into(), "c".into()], 4));
    assert_eq!(page(all(2, 2)), (vec!["b".into(), "a".into()], 4));
    let later = CallFilter {
        since: now_ms() + 60_000,
        ..all(10, 0)
    };
    assert_eq!(page(later), (vec![], 0));
    let outbound = CallFilter {
        direction: Some("outbound".into()),
        ..all(10, 0)
    };
    assert_eq!(page(outbound), (vec!["o1".into()], 1));
    let hung_up = CallFilter {
        outcome: Some("hangup".into()),
        ..all(10, 0)
    };
    assert_eq!(page(hung_up), (vec!["b".into()], 1));
    // A substring of the number; LIKE's wildcards are plain characters here.
    let by_phone = |p: &str| CallFilter {
        phone: Some(p.into()),
        ..all(10, 0)
    };
    assert_eq!(page(by_phone("1112")), (vec!["o1".into()], 1));
    assert_eq!(page(by_phone("%")), (vec![], 0));
    let active = CallFilter {
        status: Some("active".into()),
        until: Some(now_ms() + 60_000),
        ..all(10, 0)
    };
    assert_eq!(page(active).1, 2);
}

#[test]
fn reopening_keeps_data_and_does_not_migrate_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    History::open(&path)
        .unwrap()
        .call_started("x", Transport::Recording)
        .unwrap();
    let h = History::open(&path).unwrap();
    assert!(h.call("x").unwrap().is_some());
    let v: usize = h
        .lock()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, MIGRATIONS.len());
    let mode: String = h
        .lock()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = History::open(&path).err().unwrap();
    assert!(
        format!("{err:#}").contains("newer than this voxd"),
        "{err:#}"
    );
}

#[test]
fn outbound_calls_without_a_report_expire_as_failed() {
    let (_d, h) = open();
    h.call_placed("silent", "+79001112233", None).unwrap();
    h.call_placed("fresh", "+79001112234", None).unwrap();
    h.call_placed("answered", "+79001112235", None).unwrap();
    h.call_started("answered", Transport::Stream).unwrap();
    h.lock()
        .execute(
            "UPDATE calls SET created_at = ?1 WHERE id IN ('silent', 'answered')",
            params![now_ms() - 3_600_000],
        )
        .unwrap();
    assert_eq!(h.expire_pending(600).unwrap(), ["silent"]);
    let c = h.call("silent").unwrap().unwrap();
    assert_eq!(
        (c.status.as_str(), c.outcome.as_deref()),
        ("failed", Some("no_report"))
    );
    assert_eq!(h.call("fresh").unwrap().unwrap().status, "pending");
    assert_eq!(h.call("answered").unwrap().unwrap().status, "active");
    assert!(h.expire_pending(600).unwrap().is_empty());
}

#[test]
fn purge_removes_old_calls_with_their_turns_and_leads() {
    let (_d, h) = open();
    h.call_started("old", Transport::Recording).unwrap();
    h.add_turn("old", "user", "hi", None, false, None).unwrap();
    let lead = Lead {
        name: "Ann".into(),
        phone: "+15551234567".into(),
        request: "a cake".into(),
    };
    h.add_lead("old", &lead, "none").unwrap();
    h.call_started("new", Transport::Recording).unwrap();
    h.add_lead("new", &lead, "none").unwrap();
    let long_ago = now_ms() - 40 * 86_400_000;
    h.lock()
        .execute(
            "UPDATE calls SET created_at = ?1 WHERE id = 'old'",
            params![long_ago],
        )
        .unwrap();
    h.lock()
        .execute(
            "UPDATE leads SET at = ?1 WHERE call_id = 'old'",
            params![long_ago],
        )
        .unwrap();
    assert_eq!(h.purge(0).unwrap(), 0);
    assert_eq!(h.purge(30).unwrap(), 1);
    assert!(h.call("old").unwrap().is_none());
    assert!(h.call("new").unwrap().is_some());
    let orphans: i64 = h
        .lock()
        .query_row("SELECT COUNT(*) FROM turns", [], |r| r.get(0))
        .unwrap();
    assert_eq!(orphans, 0);
    let leads: Vec<Option<String>> = h
        .lock()
        .prepare("SELECT call_id FROM leads")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        leads,
        [Some("new".to_string())],
        "the old call's lead went with it"
    );
}

#[test]
fn events_are_bounded_in_size_and_number_per_call() {
    let (_dir, h) = open();
    h.call_started("c1", Transport::Recording).unwrap();
    let big = json!({"reason": "x".repeat(3 * MAX_EVENT_DETAILS), "code": 486, "caller": "+7900"});
    h.add_event("c1", "Connected", &big).unwrap();
    for i in 0..MAX_EVENTS_PER_CALL + 10 {
        h.add_event("c1", "Transferred", &json!({"i": i})).unwrap();
    }
    for _ in 0..3 {
        h.add_event("c1", "Disconnected", &json!({"reason": "bye"}))
            .unwrap();
    }
    let call = h.call("c1").unwrap().unwrap();
    let events = &call.events;
    assert_eq!(
        events.len(),
        MAX_EVENTS_PER_CALL + 1,
        "the first end is kept past the cap, and only it"
    );
    let first = &events[0];
    assert_eq!(first["truncated"], true, "{first}");
    assert_eq!(
        (first["code"].as_i64(), first["caller"].as_str()),
        (Some(486), Some("+7900"))
    );
    assert!(first.get("reason").is_none(), "{first}");
    assert_eq!(events.last().unwrap()["event"], "Disconnected");
}
