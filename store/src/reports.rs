//! Reports: read-only aggregates over the call history (`cdrs`, `queue_events`,
//! `call_quality`, `agent_states`) and the
//! departments (groups of queues) they can be filtered by.
//!
//! Every query groups by a time bucket in UTC (`time / bucket_ms`, integer division on both
//! databases) and by at most one dimension (queue, agent, area code, caller); the caller folds
//! the buckets into local days, weeks or hours of its time zone. So no query depends on a
//! database's date functions, summer time is right, and a result is at most one row per
//! dimension and bucket of the window (the history itself never crosses into memory).
//!
//! Queued calls are read from `queue_calls`, one row per call (node, Call-ID) and queue that
//! a trigger on `queue_events` keeps up to date (migration 0010): entered (`enqueue`),
//! answered and by whom (`answer`), conversation over (`complete`), or given up (`abandon`,
//! `timeout`). Nodes only append events; a report reads one covering index instead of
//! joining the event log with itself. Times are the event times.
//!
//! One query text serves both databases, except the caller expression (the part of `From`
//! before `@`), which each flavour writes with its own string functions: it must be written
//! exactly as in the expression index of migration 0010 for the index to be used.

mod agent_states;
mod departments;
mod quality;
mod queries;
mod seed;

pub use agent_states::{StateChange, StateTime};
pub use departments::Department;
pub use quality::{QualityRow, PREFIX_CHARS as QUALITY_PREFIX_CHARS};
pub use queries::{AgentRow, AreaHour, CallFilter, CallerRow, QueueRow, Window};

#[cfg(test)]
mod tests;
