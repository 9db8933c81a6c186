"""Helpers for the cross-component tests: real servers on loopback, a ForwardAuth stand-in, a demo MCP server."""
