//! Daily inspections (日常巡检) as the HTTP API shows them: the checklist
//! items due on a day, what staff recorded for each (normal or abnormal,
//! a remark, who and when), the inspector's signature, the reviewer's,
//! and the amendments made after signing (who, when, why).

use serde::{Deserialize, Serialize};

/// What an inspector found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InspectionResult {
    /// As it should be.
    Normal,
    /// Something is wrong.
    Abnormal,
}

impl InspectionResult {
    /// `normal` or `abnormal`.
    pub fn as_str(self) -> &'static str {
        match self {
            InspectionResult::Normal => "normal",
            InspectionResult::Abnormal => "abnormal",
        }
    }

    /// 正常 or 异常.
    pub fn chinese(self) -> &'static str {
        match self {
            InspectionResult::Normal => "正常",
            InspectionResult::Abnormal => "异常",
        }
    }

    /// Reads `normal` or `abnormal` (also 正常, 异常).
    pub fn parse(s: &str) -> Option<InspectionResult> {
        match s.trim() {
            "normal" | "正常" => Some(InspectionResult::Normal),
            "abnormal" | "异常" => Some(InspectionResult::Abnormal),
            _ => None,
        }
    }
}

/// A checklist item as declared in `collector.inspections`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionItem {
    /// Stable id (`ups-panel`).
    pub id: String,
    /// What to check (`UPS 面板告警灯`).
    pub name: String,
    /// `room:A-201` or `group:system=社保`.
    pub scope: String,
    /// When it is due, as declared (`daily`, `working`, `mon,thu`, `month:1`).
    pub days: String,
}

/// One recording of an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionEntry {
    /// Row id.
    pub id: i64,
    /// The item's id.
    pub item: String,
    /// What was found.
    pub result: InspectionResult,
    /// What was seen.
    pub remark: String,
    /// Who recorded it.
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
    /// Made after the day was signed: a correction, with `why`.
    pub amendment: bool,
    /// Why a signed record was corrected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The reported fault opened for an abnormal finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_id: Option<i64>,
}

/// A due item and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemState {
    /// The item.
    pub item: InspectionItem,
    /// The latest recording (amendments included), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<InspectionEntry>,
}

/// A signature on a day's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Who.
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
    /// What they added.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remark: String,
}

/// A day's inspection record (`GET /api/v1/inspections?date=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionDay {
    /// `2026-12-01`, in the calendar's zone.
    pub date: String,
    /// The items due that day.
    pub items: Vec<ItemState>,
    /// The inspector's signature: the record is immutable after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<Signature>,
    /// The reviewer's (an approver or admin, not the inspector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed: Option<Signature>,
    /// Every recording, oldest first (amendments marked).
    pub entries: Vec<InspectionEntry>,
    /// Items due.
    pub due: usize,
    /// Items recorded.
    pub done: usize,
    /// Items whose latest result is abnormal.
    pub abnormal: usize,
}

/// `POST /api/v1/inspections/checks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    /// The item's id.
    pub item: String,
    /// `normal` or `abnormal`.
    pub result: String,
    /// What was seen (required when abnormal).
    #[serde(default)]
    pub remark: Option<String>,
    /// The day (default: today in the calendar's zone).
    #[serde(default)]
    pub date: Option<String>,
    /// Why a signed day is corrected (required then).
    #[serde(default)]
    pub why: Option<String>,
    /// Open a reported fault for an abnormal finding, of this severity.
    #[serde(default)]
    pub open_fault: Option<String>,
    /// On whose behalf (admins and shared tokens only, as for faults).
    #[serde(default)]
    pub by: Option<String>,
}

/// `POST /api/v1/inspections/{date}/sign` and `/review`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignBody {
    /// What the signer adds.
    #[serde(default)]
    pub remark: Option<String>,
    /// On whose behalf (admins and shared tokens only).
    #[serde(default)]
    pub by: Option<String>,
}
