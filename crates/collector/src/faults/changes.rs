//! Change requests: requested → approved | rejected → in progress → done |
//! rolled back, or cancelled before it starts. Approval (by someone other
//! than the requester) creates the maintenance window for the change's
//! time and scope, linked to it; finishing or cancelling an approved
//! change ends its window then, so what still fails afterwards is
//! released and notified as at any window's end. Every step goes on the
//! change's append-only timeline, in the writer's transaction.

use watchpost_model::changes::{ChangeScope, ChangeStatus};

use super::ActionError;
use super::lifecycle::Lifecycle;
use crate::db::records::{ChangePatch, FaultRecords, NewChange, RecordError};
use crate::maintenance::{Window, WindowSpec};
use crate::time::rfc3339;

/// A change request, checked by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRequest {
    pub title: String,
    pub content: String,
    pub reason: String,
    pub impact: String,
    pub test_plan: String,
    pub rollback_plan: String,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub scope: ChangeScope,
}

/// What a person does to a change.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeOp {
    Request(Box<ChangeRequest>),
    Approve {
        comment: Option<String>,
    },
    Reject {
        reason: String,
    },
    Start,
    Finish {
        rolled_back: bool,
        reason: Option<String>,
    },
    Cancel,
}

/// What a committed change step means for the lifecycle's windows.
#[derive(Debug, Clone, Default)]
pub struct ChangeEffect {
    /// The change's id.
    pub id: i64,
    /// A window its approval created.
    pub window: Option<Window>,
    /// A window that ends now: (window, at).
    pub ended: Option<(i64, i64)>,
}

/// The window a change's scope and time make (checked as any window).
pub fn window_of(
    id: i64,
    title: &str,
    r: &ChangeScope,
    span: (i64, i64),
    by: &str,
    at_ms: i64,
) -> Result<Window, String> {
    Window::new(WindowSpec {
        id: 0,
        host: None,
        rule: None,
        hosts: r.hosts.clone(),
        rules: r.rules.clone(),
        matchers: r.matchers.clone(),
        starts_at_ms: span.0,
        ends_at_ms: span.1,
        reason: title.to_string(),
        ticket: format!("change #{id}"),
        created_by: by.to_string(),
        created_at_ms: at_ms,
        change_id: Some(id),
    })
}

impl Lifecycle {
    /// Carries out `op` by `actor` on change `id` (0 for a request).
    /// `Ok(Err(_))` is a refusal (nothing written).
    pub(super) fn change(
        &mut self,
        rec: &mut dyn FaultRecords,
        id: i64,
        op: &ChangeOp,
        actor: &str,
        at_ms: i64,
    ) -> Result<Result<ChangeEffect, ActionError>, RecordError> {
        let event = |rec: &mut dyn FaultRecords, id: i64, kind: &str, message: &str| {
            rec.append_change_event(id, at_ms, actor, kind, message)
        };
        if let ChangeOp::Request(r) = op {
            let id = rec.insert_change(&NewChange {
                title: &r.title,
                content: &r.content,
                reason: &r.reason,
                impact: &r.impact,
                test_plan: &r.test_plan,
                rollback_plan: &r.rollback_plan,
                starts_at_ms: r.starts_at_ms,
                ends_at_ms: r.ends_at_ms,
                scope: &r.scope,
                requested_by: actor,
                at_ms,
            })?;
            event(
                rec,
                id,
                "requested",
                &format!(
                    "requested for {} to {}: {}",
                    rfc3339(r.starts_at_ms),
                    rfc3339(r.ends_at_ms),
                    r.title
                ),
            )?;
            return Ok(Ok(ChangeEffect {
                id,
                ..ChangeEffect::default()
            }));
        }
        let Some(c) = rec.change(id)? else {
            return Ok(Err(ActionError::NotFound(id)));
        };
        let refuse = |why: String| Ok(Err(ActionError::Conflict(why)));
        let is = |want: &[ChangeStatus]| want.contains(&c.status);
        let status = c.status.as_str();
        let mut effect = ChangeEffect {
            id,
            ..ChangeEffect::default()
        };
        let (next, kind, message, decided, reason) = match op {
            ChangeOp::Request(_) => unreachable!("handled above"),
            ChangeOp::Approve { comment } => {
                if !is(&[ChangeStatus::Requested]) {
                    return refuse(format!(
                        "change {id} is {status}: only a requested change can be approved"
                    ));
                }
                if c.requested_by == actor {
                    return Ok(Err(ActionError::Forbidden(format!(
                        "change {id} was requested by {actor}: someone else must approve it"
                    ))));
                }
                let end = c.ends_at_ms;
                if end <= at_ms {
                    return refuse(format!(
                        "change {id}'s window ended at {}: request it again with a new window",
                        rfc3339(end)
                    ));
                }
                let mut window = match window_of(id, &c.title, &c.scope, (c.starts_at_ms, end), actor, at_ms)
                {
                    Ok(w) => w,
                    Err(e) => return refuse(format!("change {id}: {e}")),
                };
                window.id = rec.insert_window(&window)?;
                let text = comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default();
                let message = format!("approved; maintenance window #{} created{text}", window.id);
                effect.window = Some(window);
                (ChangeStatus::Approved, "approved", message, true, None)
            }
            ChangeOp::Reject { reason } => {
                if !is(&[ChangeStatus::Requested]) {
                    return refuse(format!(
                        "change {id} is {status}: only a requested change can be rejected"
                    ));
                }
                if c.requested_by == actor {
                    return Ok(Err(ActionError::Forbidden(format!(
                        "change {id} was requested by {actor}: someone else must decide on it"
                    ))));
                }
                (
                    ChangeStatus::Rejected,
                    "rejected",
                    format!("rejected: {reason}"),
                    true,
                    Some(reason.clone()),
                )
            }
            ChangeOp::Start => {
                if !is(&[ChangeStatus::Approved]) {
                    return refuse(format!(
                        "change {id} is {status}: a change starts only once it is approved"
                    ));
                }
                (
                    ChangeStatus::InProgress,
                    "started",
                    "started".to_string(),
                    false,
                    None,
                )
            }
            ChangeOp::Finish { rolled_back, reason } => {
                if !is(&[ChangeStatus::InProgress]) {
                    return refuse(format!(
                        "change {id} is {status}: only a change in progress can be finished"
                    ));
                }
                if let Some(w) = c.window_id {
                    rec.end_window(w, at_ms)?;
                    effect.ended = Some((w, at_ms));
                }
                if *rolled_back {
                    let why = reason.clone().unwrap_or_default();
                    (
                        ChangeStatus::RolledBack,
                        "rolled_back",
                        format!("rolled back: {why}"),
                        false,
                        Some(why),
                    )
                } else {
                    let note = reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
                    (
                        ChangeStatus::Done,
                        "done",
                        format!("done{note}"),
                        false,
                        reason.clone(),
                    )
                }
            }
            ChangeOp::Cancel => {
                if !is(&[ChangeStatus::Requested, ChangeStatus::Approved]) {
                    return refuse(format!(
                        "change {id} is {status}: only a change that has not started can be cancelled"
                    ));
                }
                if let Some(w) = c.window_id {
                    rec.end_window(w, at_ms)?;
                    effect.ended = Some((w, at_ms));
                }
                (
                    ChangeStatus::Cancelled,
                    "cancelled",
                    "cancelled".to_string(),
                    false,
                    None,
                )
            }
        };
        rec.update_change(
            id,
            &ChangePatch {
                status: next,
                decided_by: decided.then(|| actor.to_string()),
                window_id: effect.window.as_ref().map(|w| w.id),
                result_reason: reason,
            },
        )?;
        event(rec, id, kind, &message)?;
        Ok(Ok(effect))
    }

    /// A committed change step: windows it created or ended take effect.
    pub(super) fn change_committed(&mut self, effect: &ChangeEffect) {
        if let Some(w) = &effect.window {
            self.windows.push(w.clone());
        }
        if let Some((id, at)) = effect.ended
            && let Some(w) = self.windows.iter_mut().find(|w| w.id == id)
        {
            w.ends_at_ms = w.ends_at_ms.min(at.max(w.starts_at_ms + 1));
        }
    }
}
