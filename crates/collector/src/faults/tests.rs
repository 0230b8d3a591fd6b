//! The fault stage on its real store, SQLite: each test drives the stage
//! through its handle as the collector does and reads the records back.

use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::Connection;
use watchpost_model::Severity;
use watchpost_model::api::FaultStatus;

use super::*;
use crate::db::{FaultFilter, NotificationFilter};
use crate::maintenance::WindowSpec;
use crate::time::rfc3339;

fn new_fault(series: &str, severity: Severity, at_ms: i64) -> NewFault {
    NewFault {
        key: FaultKey {
            rule: Arc::from("r"),
            series: series.to_string(),
        },
        severity,
        value: Some(95.0),
        at_ms,
        summary: "disk full".into(),
        host: "h1".into(),
        metric: "m".into(),
        labels: BTreeMap::from([("host".to_string(), "h1".to_string())]),
        unreachable: false,
        flap: true,
    }
}

fn no_reopen() -> FaultSettings {
    FaultSettings {
        reopen_within_ms: 0,
        ..FaultSettings::default()
    }
}

#[tokio::test]
async fn fault_lifecycle_is_recorded_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (faults, db) = Faults::open(dir.path(), no_reopen()).expect("open");
    let f = new_fault("m{host=\"h1\"}", Severity::Minor, 1_000_000);
    let key = f.key.clone();
    faults
        .write(vec![Command::Fault(Transition::Open(f.clone()))])
        .await
        .expect("write");
    faults
        .write(vec![
            Command::Fault(Transition::Raise {
                key: key.clone(),
                severity: Severity::Urgent,
                value: 99.0,
                at_ms: 1_060_000,
                summary: "s2".into(),
            }),
            Command::Fault(Transition::Refire {
                key: key.clone(),
                value: 97.0,
                at_ms: 1_070_000,
            }),
        ])
        .await
        .expect("write");
    assert_eq!(faults.open_fault_count(), 1);
    let listed = db
        .faults(FaultFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    let fault = db.fault(listed[0].id).await.expect("get").expect("exists");
    assert_eq!(fault.severity, Severity::Urgent);
    assert_eq!(fault.count, 2);
    // Deadlines follow the highest severity, counted from the opening.
    assert_eq!(fault.response_due, rfc3339(1_000_000 + 3_600_000));
    assert_eq!(fault.resolve_due, rfc3339(1_000_000 + 4 * 3_600_000));
    let kinds: Vec<&str> = fault.timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "severity_raised", "refired"]);
    drop((faults, db));

    let (faults, db) = Faults::open(dir.path(), no_reopen()).expect("reopen");
    assert_eq!(faults.open_fault_count(), 1);
    let open = db.open_faults().await.expect("open faults");
    assert_eq!(
        open,
        vec![(key.rule.to_string(), key.series.clone(), Severity::Urgent)]
    );
    faults
        .write(vec![Command::Fault(Transition::Resolve {
            key: key.clone(),
            value: Some(10.0),
            at_ms: 1_100_000,
            reason: "ok".into(),
        })])
        .await
        .expect("resolve");
    let fault = db.fault(fault.id).await.expect("get").expect("exists");
    assert_eq!(fault.status, FaultStatus::Resolved);
    assert_eq!(fault.resolved_at, Some(rfc3339(1_100_000)));
    assert_eq!(faults.open_fault_count(), 0);
    // A new firing opens a new record.
    faults
        .write(vec![Command::Fault(Transition::Open(f))])
        .await
        .expect("write");
    let listed = db
        .faults(FaultFilter {
            limit: 10,
            status: vec![FaultStatus::Open],
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_ne!(listed[0].id, fault.id);
}

#[tokio::test]
async fn open_and_resolve_in_one_commit_leaves_nothing_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (faults, _db) = Faults::open(dir.path(), FaultSettings::default()).expect("open");
    let f = new_fault("x", Severity::General, 5);
    let key = f.key.clone();
    faults
        .write(vec![
            Command::Fault(Transition::Open(f)),
            Command::Fault(Transition::Resolve {
                key,
                value: None,
                at_ms: 6,
                reason: "gone".into(),
            }),
        ])
        .await
        .expect("write");
    assert_eq!(faults.open_fault_count(), 0);
}

#[tokio::test]
async fn timeline_and_records_cannot_be_altered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (faults, db) = Faults::open(dir.path(), FaultSettings::default()).expect("open");
    faults
        .write(vec![Command::Fault(Transition::Open(new_fault(
            "x",
            Severity::General,
            5,
        )))])
        .await
        .expect("write");
    drop((faults, db));
    let conn = Connection::open(dir.path().join("watchpost.db")).expect("open");
    let e = conn
        .execute("UPDATE fault_events SET message = 'x'", [])
        .expect_err("append-only");
    assert!(e.to_string().contains("append-only"), "{e}");
    assert!(conn.execute("DELETE FROM faults", []).is_err());
    let e = conn.execute("INSERT INTO faults (rule, series_key, host, metric, labels, severity, status, summary, opened_at_ms, last_seen_ms, response_due_ms, resolve_due_ms) VALUES ('r', 'x', 'h', 'm', '{}', 'general', 'open', 's', 1, 1, 1, 1)", []).expect_err("one open per rule and series");
    assert!(e.to_string().contains("UNIQUE"), "{e}");
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = Connection::open(dir.path().join("watchpost.db")).expect("open");
    conn.pragma_update(None, "user_version", 99).expect("set");
    drop(conn);
    let e = Faults::open(dir.path(), FaultSettings::default())
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("newer"), "{e}");
}

#[tokio::test]
async fn people_ack_resolve_and_close_with_deadlines_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (faults, db) = Faults::open(dir.path(), FaultSettings::default()).expect("open");
    // Urgent: respond within 1 h, resolve within 4 h.
    let f = new_fault("a", Severity::Urgent, 0);
    faults
        .write(vec![Command::Fault(Transition::Open(f.clone()))])
        .await
        .expect("open");
    let id = db
        .faults(FaultFilter {
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("list")[0]
        .id;

    let close_early = faults
        .act(
            id,
            "li",
            10,
            FaultAction::Close {
                cause: "c".into(),
                handling: "h".into(),
            },
        )
        .await;
    assert!(matches!(close_early, Err(ActionError::Conflict(m)) if m.contains("resolve it before closing")));
    faults
        .act(
            id,
            "li",
            30 * 60_000,
            FaultAction::Ack {
                comment: Some("on it".into()),
            },
        )
        .await
        .expect("ack");
    let again = faults
        .act(id, "wang", 31 * 60_000, FaultAction::Ack { comment: None })
        .await;
    assert!(matches!(again, Err(ActionError::Conflict(m)) if m.contains("already acknowledged by li")));
    faults
        .act(
            id,
            "li",
            40 * 60_000,
            FaultAction::Assign {
                assignee: "wang".into(),
            },
        )
        .await
        .expect("assign");
    faults
        .act(
            id,
            "wang",
            41 * 60_000,
            FaultAction::Note {
                text: "disk swapped".into(),
            },
        )
        .await
        .expect("note");
    // Resolved after 5 h: response met, resolve missed.
    faults
        .act(
            id,
            "wang",
            5 * 3_600_000,
            FaultAction::Resolve {
                comment: "replaced the disk".into(),
            },
        )
        .await
        .expect("resolve");
    assert_eq!(faults.open_fault_count(), 0);
    faults
        .act(
            id,
            "wang",
            5 * 3_600_000 + 1,
            FaultAction::Close {
                cause: "disk failure".into(),
                handling: "replaced".into(),
            },
        )
        .await
        .expect("close");
    assert!(matches!(
        faults
            .act(id, "x", 1, FaultAction::Resolve { comment: "x".into() })
            .await,
        Err(ActionError::Conflict(_))
    ));
    assert_eq!(
        faults
            .act(999, "x", 1, FaultAction::Note { text: "x".into() })
            .await,
        Err(ActionError::NotFound(999))
    );

    let f = db.fault(id).await.expect("get").expect("exists");
    assert_eq!(f.status, FaultStatus::Closed);
    assert_eq!((f.response_met, f.resolve_met), (Some(true), Some(false)));
    assert_eq!(f.acknowledged_by.as_deref(), Some("li"));
    assert_eq!(f.assignee.as_deref(), Some("wang"));
    assert_eq!(
        (f.cause.as_deref(), f.handling.as_deref()),
        (Some("disk failure"), Some("replaced"))
    );
    let events: Vec<(&str, &str)> = f
        .timeline
        .iter()
        .map(|e| (e.kind.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        events,
        [
            ("opened", "system"),
            ("acknowledged", "li"),
            ("assigned", "li"),
            ("note", "wang"),
            ("resolved", "wang"),
            ("closed", "wang")
        ]
    );
}

#[tokio::test]
async fn a_fault_that_fires_soon_after_resolving_reopens_and_overdue_deadlines_are_marked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (faults, db) = Faults::open(dir.path(), FaultSettings::default()).expect("open");
    let f = new_fault("b", Severity::Urgent, 0);
    let key = f.key.clone();
    faults
        .write(vec![Command::Fault(Transition::Open(f.clone()))])
        .await
        .expect("open");
    let resolve = |at_ms| {
        Command::Fault(Transition::Resolve {
            key: key.clone(),
            value: None,
            at_ms,
            reason: "ok".into(),
        })
    };
    faults.write(vec![resolve(60_000)]).await.expect("resolve");
    // Fires again 5 minutes later: within the 10-minute window.
    faults
        .write(vec![Command::Fault(Transition::Open(NewFault {
            at_ms: 360_000,
            ..f.clone()
        }))])
        .await
        .expect("reopen");
    let all = db
        .faults(FaultFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(all.len(), 1, "same record");
    assert_eq!((all[0].status, all[0].count), (FaultStatus::Open, 2));
    assert_eq!(all[0].resolve_met, None);
    // Resolving within the hour counted as the response; the reopened fault
    // keeps that. Not resolved again within 4 h: the resolve deadline is
    // marked missed, once, and stays missed.
    faults
        .write(vec![Command::Tick {
            now_ms: 2 * 3_600_000,
        }])
        .await
        .expect("overdue");
    faults
        .write(vec![Command::Tick {
            now_ms: 5 * 3_600_000,
        }])
        .await
        .expect("overdue");
    faults
        .write(vec![Command::Tick {
            now_ms: 6 * 3_600_000,
        }])
        .await
        .expect("overdue");
    faults.write(vec![resolve(7 * 3_600_000)]).await.expect("resolve");
    let f1 = db.fault(all[0].id).await.expect("get").expect("exists");
    assert_eq!((f1.response_met, f1.resolve_met), (Some(true), Some(false)));
    let kinds: Vec<&str> = f1.timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["opened", "resolved", "reopened", "resolve_overdue", "resolved"]
    );
    // Firing again long after: a new record.
    faults
        .write(vec![Command::Fault(Transition::Open(NewFault {
            at_ms: 9 * 3_600_000,
            ..f
        }))])
        .await
        .expect("open");
    assert_eq!(
        db.faults(FaultFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list")
        .len(),
        2
    );
}

#[tokio::test]
async fn faults_inside_a_maintenance_window_are_suppressed_until_it_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (faults, db) = Faults::open(dir.path(), FaultSettings::default()).expect("open");
    let w = Window::new(WindowSpec {
        host: Some("h1".into()),
        ends_at_ms: 1_000_000,
        reason: "swap disks".into(),
        ticket: "CHG-7".into(),
        created_by: "li".into(),
        ..WindowSpec::default()
    })
    .expect("valid");
    let wid = faults.add_window(w).await.expect("window");
    faults
        .write(vec![Command::Fault(Transition::Open(new_fault(
            "s",
            Severity::Urgent,
            500_000,
        )))])
        .await
        .expect("open");
    let f = db
        .faults(FaultFilter {
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("list")
        .remove(0);
    assert_eq!(f.status, FaultStatus::Suppressed);
    // Not overdue while suppressed; back to open when the window ends.
    faults
        .write(vec![Command::Tick { now_ms: 999_999 }])
        .await
        .expect("tick");
    assert_eq!(
        db.fault(f.id).await.expect("get").expect("exists").status,
        FaultStatus::Suppressed
    );
    faults
        .write(vec![Command::Tick { now_ms: 1_000_000 }])
        .await
        .expect("tick");
    let f = db.fault(f.id).await.expect("get").expect("exists");
    assert_eq!(f.status, FaultStatus::Open);
    let kinds: Vec<&str> = f.timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "suppressed", "unsuppressed"]);
    assert_eq!(
        f.response_due,
        rfc3339(1_000_000 + 3_600_000),
        "the urgent hour counts from the window's end"
    );
    assert!(
        f.timeline[1].message.contains(&format!("#{wid} (CHG-7)")),
        "{}",
        f.timeline[1].message
    );
    drop((faults, db));
    let (_faults, db) = Faults::open(dir.path(), FaultSettings::default()).expect("reopen");
    assert_eq!(
        db.windows().await.expect("windows").len(),
        1,
        "windows survive a restart"
    );
}

#[tokio::test]
async fn urgent_faults_and_missed_deadlines_reach_managers_and_ack_stops_escalation() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("oncall.toml"),
        "[[team]]\nname = \"ops\"\nlead = \"zhang\"\nmanagers = [\"chen\"]\n\
         members = [ { name = \"li\" }, { name = \"zhang\" }, { name = \"chen\" } ]\n\
         rotation = { every = \"day\", handover = \"09:00\", start = \"2026-01-01\", order = [\"li\"] }\n",
    )
    .expect("roster");
    let config = crate::CollectorConfig::parse(
        "[collector]\noncall = \"oncall.toml\"\n[[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\n\
         [[route]]\nteam = \"ops\"\nchannels = [\"hook\"]\n",
        dir.path(),
    )
    .expect("config");
    let settings = FaultSettings {
        notify: config.notify.clone(),
        ..FaultSettings::default()
    };
    let (faults, db) = Faults::open(dir.path(), settings).expect("open");
    let t: i64 = "2026-11-23T03:00:00Z"
        .parse::<jiff::Timestamp>()
        .expect("ts")
        .as_millisecond();
    faults
        .write(vec![Command::Fault(Transition::Open(new_fault(
            "s",
            Severity::Urgent,
            t,
        )))])
        .await
        .expect("open");
    let rows = |db: Database| async move {
        let mut r = db
            .notifications(NotificationFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .expect("outbox");
        r.reverse();
        r.into_iter()
            .map(|n| (n.kind, n.recipient, n.status))
            .collect::<Vec<_>>()
    };
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        rows(db.clone()).await,
        [
            s("opened", "li", "pending"),
            s("escalated", "zhang", "pending"),
            s("urgent", "chen", "pending")
        ]
    );
    // Two hours later nobody has responded (urgent: respond within 1 h).
    faults
        .write(vec![Command::Tick {
            now_ms: t + 2 * 3_600_000,
        }])
        .await
        .expect("tick");
    let after = rows(db.clone()).await;
    assert_eq!(
        &after[3..],
        [s("overdue", "chen", "pending"), s("overdue", "li", "pending")]
    );
    faults
        .act(1, "li", t + 2 * 3_600_000 + 1, FaultAction::Ack { comment: None })
        .await
        .expect("ack");
    let after = rows(db.clone()).await;
    assert!(
        after.iter().all(|r| r.2 == "cancelled"),
        "escalation stops: {after:?}"
    );
    let f = db.fault(1).await.expect("read").expect("fault");
    assert!(
        f.timeline
            .iter()
            .any(|e| e.kind == "notify_cancelled" && e.message.contains("acknowledged by li")),
        "{:?}",
        f.timeline
    );
}
