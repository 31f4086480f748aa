//! Raw IP sockets (work in progress).
