"""Any stdio MCP server as a Streamable HTTP service: one child process per session, bound to its user."""
