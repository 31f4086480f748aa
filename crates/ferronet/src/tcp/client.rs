//! TCP client pool implementing `embedded-nal-async`'s `TcpConnect` (work in progress).
