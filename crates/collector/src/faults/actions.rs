//! What people do to a fault record and when they may: acknowledge (meets
//! the response deadline), resolve by hand (meets the resolve deadline),
//! close with a cause and the handling, add a note, assign. Each is checked
//! against the record's state inside the writer's transaction, so an
//! action and a rule's transition never race.

use std::sync::Arc;

use watchpost_model::api::FaultStatus;

use super::event::EventKind;
use super::lifecycle::{Lifecycle, is_live};
use super::transition::FaultKey;
use super::{ActionError, FaultAction};
use crate::db::records::{FaultRecords, RecordError, RecordPatch};
use crate::notify::Kind;
use crate::time::rfc3339;

impl Lifecycle {
    /// Carries out `action` by `actor` on fault `id`. `Ok(Err(_))` is a
    /// refusal (nothing written); `Err(_)` a storage failure.
    pub(super) fn act(
        &mut self,
        rec: &mut dyn FaultRecords,
        id: i64,
        actor: &str,
        at_ms: i64,
        action: &FaultAction,
    ) -> Result<Result<(), ActionError>, RecordError> {
        let Some(r) = rec.record(id)? else {
            return Ok(Err(ActionError::NotFound(id)));
        };
        let conflict = |m: String| Ok(Err(ActionError::Conflict(m)));
        let status = r.status;
        let live = is_live(status);
        let event = |rec: &mut dyn FaultRecords, kind: EventKind, message: &str| {
            rec.append_event(id, at_ms, actor, kind.as_str(), message)
        };
        match action {
            FaultAction::Ack { comment } => {
                if status == FaultStatus::Acknowledged {
                    let who = r.acknowledged_by.unwrap_or_default();
                    let when = r.acknowledged_at_ms.map(rfc3339).unwrap_or_default();
                    return conflict(format!("fault {id} was already acknowledged by {who} at {when}"));
                }
                if !live {
                    return conflict(format!(
                        "fault {id} is {}: there is nothing left to acknowledge",
                        status.as_str()
                    ));
                }
                rec.update(
                    id,
                    &RecordPatch {
                        // A suppressed fault stays suppressed; it is
                        // acknowledged when its window or parent releases it.
                        status: (status != FaultStatus::Suppressed).then_some(FaultStatus::Acknowledged),
                        acknowledged: Some((at_ms, actor.to_string())),
                        response_met: Some(r.response_met.unwrap_or(at_ms <= r.response_due_ms)),
                        ..RecordPatch::default()
                    },
                )?;
                let text = comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default();
                event(rec, EventKind::Acknowledged, &format!("acknowledged{text}"))?;
                self.on_acknowledged(rec, id, at_ms, actor)?;
            }
            FaultAction::Resolve { comment } => {
                if !live {
                    return conflict(format!("fault {id} is already {}", status.as_str()));
                }
                self.resolve(rec, id, at_ms, None)?;
                event(rec, EventKind::Resolved, &format!("resolved by hand: {comment}"))?;
                self.on_resolved(rec, id, at_ms)?;
                self.resolved_in_transaction(FaultKey {
                    rule: Arc::from(r.rule.as_str()),
                    series: r.series_key,
                });
            }
            FaultAction::Close { cause, handling } => {
                match status {
                    FaultStatus::Resolved => {}
                    FaultStatus::Closed => return conflict(format!("fault {id} is already closed")),
                    other => {
                        return conflict(format!(
                            "fault {id} is {}: resolve it before closing it",
                            other.as_str()
                        ));
                    }
                }
                rec.update(
                    id,
                    &RecordPatch {
                        status: Some(FaultStatus::Closed),
                        closed: Some((at_ms, cause.clone(), handling.clone())),
                        ..RecordPatch::default()
                    },
                )?;
                event(
                    rec,
                    EventKind::Closed,
                    &format!("closed. Cause: {cause}. Handling: {handling}"),
                )?;
                self.tell_reporter(rec, id, Kind::ReporterClosed, at_ms)?;
            }
            FaultAction::Feedback {
                satisfaction,
                comment,
            } => {
                return self.feedback(rec, id, actor, at_ms, *satisfaction, comment.as_deref());
            }
            FaultAction::Note { text } => {
                event(rec, EventKind::Note, text)?;
            }
            FaultAction::Assign { assignee } => {
                if status == FaultStatus::Closed {
                    return conflict(format!("fault {id} is closed"));
                }
                rec.update(
                    id,
                    &RecordPatch {
                        assignee: Some(assignee.clone()),
                        ..RecordPatch::default()
                    },
                )?;
                event(rec, EventKind::Assigned, &format!("assigned to {assignee}"))?;
            }
        }
        Ok(Ok(()))
    }
}
