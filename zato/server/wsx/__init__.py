"""WebSocket channels on the servers' own HTTP port: handshake, one session per connected client,
and the per-worker registry that broadcasts to every client of a channel."""
