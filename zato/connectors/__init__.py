"""Outgoing connections: Zato as the client of remote systems."""
