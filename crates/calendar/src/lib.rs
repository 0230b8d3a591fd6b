//! Working time: calendars (time zone, working weekdays, working hours,
//! public holidays, make-up working days 调休) and the severity policy that
//! turns a fault's severity and opening time into its response and resolve
//! deadlines. Pure computation over `jiff` times; no I/O but reading a
//! calendar file.

mod calendar;
mod policy;
mod work;

pub use calendar::{Calendar, CalendarError};
pub use policy::{Deadlines, OffHours, PolicyConfig, PolicyEntry, SeverityPolicy};
pub use work::{WorkDuration, WorkDurationError};
