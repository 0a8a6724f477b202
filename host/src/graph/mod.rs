//! graph (in progress)
