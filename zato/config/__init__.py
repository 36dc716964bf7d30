"""What every layer shares and none owns: server.conf's settings, the security definitions and channel
descriptions the checks work on. Imports nothing of the server, the CLI, the connectors or the web-admin."""
