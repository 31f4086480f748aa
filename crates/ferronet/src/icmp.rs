//! ICMP sockets (work in progress).
