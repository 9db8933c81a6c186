"""stdio MCP server to Streamable HTTP bridge. Not built yet: see the mcp-proxy issue."""
