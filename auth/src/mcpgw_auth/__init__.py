"""OAuth 2.1 authorization server and ForwardAuth verifier of the MCP OAuth Gateway."""
