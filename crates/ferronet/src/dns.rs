//! DNS queries (work in progress).
