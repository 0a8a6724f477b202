//! compile (in progress)
