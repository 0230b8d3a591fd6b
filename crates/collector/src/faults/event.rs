//! The kinds of event on a fault's append-only timeline. Stored and shown
//! by their snake_case names (`watchpost_model::api::FaultEvent::kind`).

/// What happened to a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Opened,
    Reopened,
    Refired,
    SeverityRaised,
    Resolved,
    Acknowledged,
    Assigned,
    Note,
    Closed,
    Suppressed,
    Unsuppressed,
    ResponseOverdue,
    ResolveOverdue,
    NotifyQueued,
    NotifyCancelled,
    Notified,
    NotifyFailed,
    NotifyGaveUp,
    Feedback,
    Flapping,
    Stable,
}

impl EventKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Opened => "opened",
            EventKind::Reopened => "reopened",
            EventKind::Refired => "refired",
            EventKind::SeverityRaised => "severity_raised",
            EventKind::Resolved => "resolved",
            EventKind::Acknowledged => "acknowledged",
            EventKind::Assigned => "assigned",
            EventKind::Note => "note",
            EventKind::Closed => "closed",
            EventKind::Suppressed => "suppressed",
            EventKind::Unsuppressed => "unsuppressed",
            EventKind::ResponseOverdue => "response_overdue",
            EventKind::ResolveOverdue => "resolve_overdue",
            EventKind::NotifyQueued => "notify_queued",
            EventKind::NotifyCancelled => "notify_cancelled",
            EventKind::Notified => "notified",
            EventKind::NotifyFailed => "notify_failed",
            EventKind::NotifyGaveUp => "notify_gave_up",
            EventKind::Feedback => "feedback",
            EventKind::Flapping => "flapping",
            EventKind::Stable => "stable",
        }
    }
}
