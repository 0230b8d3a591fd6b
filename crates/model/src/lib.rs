//! Domain types shared by the agent, the collector and `watchpostctl`:
//! fault severities, human durations (`"10s"`, `"1h30m"`), sizes
//! (`"256MiB"`) and the JSON shapes of the collector's HTTP API. No I/O
//! and no async here.

pub mod api;
pub mod changes;
mod duration;
pub mod inspections;
pub mod inventory;
pub mod names;
pub mod reports;
mod severity;
mod size;

pub use duration::{DurationError, HumanDuration, format_duration, format_offset, parse_duration};
pub use severity::{Severity, UnknownSeverity};
pub use size::{format_size, parse_size};
