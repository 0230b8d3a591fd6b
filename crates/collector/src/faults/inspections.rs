//! The daily inspection record's rules, inside the writer's transaction:
//! before the day is signed a recording is plain; after, it is an
//! amendment and needs a reason. A day is signed once and reviewed once,
//! by someone other than the inspector.

use watchpost_model::inspections::InspectionResult;

use super::{ActionError, Lifecycle};
use crate::db::records::{FaultRecords, InspectionRow, RecordError};

/// A step on a day's inspection record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InspectionOp {
    /// Records an item's result.
    Check {
        /// The item's id (checked against the checklist by the caller).
        item: String,
        /// What was found.
        result: InspectionResult,
        /// What was seen.
        remark: String,
        /// Why a signed record is corrected.
        why: Option<String>,
        /// The reported fault opened for it.
        fault_id: Option<i64>,
    },
    /// The inspector signs the day.
    Sign {
        /// What they add.
        remark: String,
    },
    /// An approver or admin reviews the signed day.
    Review {
        /// What they add.
        remark: String,
    },
}

impl Lifecycle {
    pub(super) fn inspection(
        &mut self,
        rec: &mut dyn FaultRecords,
        day: &str,
        op: &InspectionOp,
        actor: &str,
        at_ms: i64,
    ) -> Result<Result<i64, ActionError>, RecordError> {
        let signatures = rec.inspection_signatures(day)?;
        match op {
            InspectionOp::Check {
                item,
                result,
                remark,
                why,
                fault_id,
            } => {
                let why = why.as_deref().map(str::trim).filter(|w| !w.is_empty());
                if let Some((signer, _)) = &signatures
                    && why.is_none()
                {
                    return Ok(Err(ActionError::Conflict(format!(
                        "the record of {day} was signed by {signer}: a correction is an amendment and needs why (--why)"
                    ))));
                }
                let why = if signatures.is_some() { why } else { None };
                let id = rec.insert_inspection_entry(&InspectionRow {
                    day,
                    item,
                    result: *result,
                    remark,
                    by: actor,
                    at_ms,
                    why,
                    fault_id: *fault_id,
                })?;
                Ok(Ok(id))
            }
            InspectionOp::Sign { remark } => {
                if let Some((signer, _)) = signatures {
                    return Ok(Err(ActionError::Conflict(format!(
                        "the record of {day} is already signed by {signer}: it cannot be signed twice (corrections are amendments)"
                    ))));
                }
                rec.sign_inspection(day, false, actor, at_ms, remark)?;
                Ok(Ok(0))
            }
            InspectionOp::Review { remark } => match signatures {
                None => Ok(Err(ActionError::Conflict(format!(
                    "the record of {day} is not signed yet: the inspector signs it before it is reviewed"
                )))),
                Some((_, Some(reviewer))) => Ok(Err(ActionError::Conflict(format!(
                    "the record of {day} was already reviewed by {reviewer}"
                )))),
                Some((signer, None)) if signer == actor => Ok(Err(ActionError::Forbidden(format!(
                    "{actor} signed the record of {day}: someone else must review it"
                )))),
                Some(_) => {
                    rec.sign_inspection(day, true, actor, at_ms, remark)?;
                    Ok(Ok(0))
                }
            },
        }
    }
}
