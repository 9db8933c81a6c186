"""The service catalog: how to run well-known stdio MCP servers behind the proxy.

Each entry names the runtime the server needs, its default command, the plain environment it expects and the
secret variables an operator must supply as references (never values; the vault resolver fills them in). Secrets go
in the environment only, never in the command line. `just new-service NAME` scaffolds a services/ folder from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Runtime = Literal["python", "node", "binary"]


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    summary: str
    runtime: Runtime
    package: str  # PyPI or npm package, or the upstream project for a binary
    command: tuple[str, ...]
    secrets: dict[str, str] = field(default_factory=dict)  # variable -> what it is
    env: dict[str, str] = field(default_factory=dict)  # plain, non-secret defaults
    unmaintained: str | None = None  # why, when the package is archived or deprecated upstream
    notes: str = ""


_ARCHIVED = "archived by modelcontextprotocol/servers in 2025; no further fixes"

CATALOG: dict[str, CatalogEntry] = {
    entry.name: entry
    for entry in (
        CatalogEntry(
            "filesystem",
            "Read (and optionally write) files under the directories it is given",
            "node",
            "@modelcontextprotocol/server-filesystem",
            ("npx", "-y", "@modelcontextprotocol/server-filesystem", "/data"),
            notes="Mount /data read-only unless the service must write.",
        ),
        CatalogEntry(
            "memory",
            "A knowledge graph kept in a JSON-lines file",
            "node",
            "@modelcontextprotocol/server-memory",
            ("npx", "-y", "@modelcontextprotocol/server-memory"),
            env={"MEMORY_FILE_PATH": "/data/memory.jsonl"},
        ),
        CatalogEntry(
            "fetch",
            "Fetch web pages and convert them to markdown",
            "python",
            "mcp-server-fetch",
            ("uvx", "mcp-server-fetch"),
            notes="Fetches any URL: run it on a network with no route to Redis, auth or other internal services.",
        ),
        CatalogEntry(
            "time", "Current time and time-zone conversion", "python", "mcp-server-time", ("uvx", "mcp-server-time")
        ),
        CatalogEntry(
            "git",
            "Read and operate on a git repository",
            "python",
            "mcp-server-git",
            ("uvx", "mcp-server-git", "--repository", "/repo"),
        ),
        CatalogEntry(
            "everything",
            "The MCP reference server exercising every protocol feature",
            "node",
            "@modelcontextprotocol/server-everything",
            ("npx", "-y", "@modelcontextprotocol/server-everything", "stdio"),
        ),
        CatalogEntry(
            "sequential-thinking",
            "Structured step-by-step reasoning",
            "node",
            "@modelcontextprotocol/server-sequential-thinking",
            ("npx", "-y", "@modelcontextprotocol/server-sequential-thinking"),
        ),
        CatalogEntry(
            "github",
            "GitHub's official MCP server (issues, pull requests, code)",
            "binary",
            "github/github-mcp-server",
            ("github-mcp-server", "stdio"),
            secrets={"GITHUB_PERSONAL_ACCESS_TOKEN": "a fine-grained GitHub token with the scopes the tools need"},
            notes="Replaces the deprecated npm package @modelcontextprotocol/server-github.",
        ),
        CatalogEntry(
            "postgres",
            "Read-only SQL against a PostgreSQL database",
            "node",
            "@modelcontextprotocol/server-postgres",
            ("npx", "-y", "@modelcontextprotocol/server-postgres", "postgresql://mcp_readonly@postgres:5432/app"),
            secrets={"PGPASSWORD": "the password of the read-only database user (libpq reads it from the environment)"},
            unmaintained=_ARCHIVED,
            notes="The URL argument must not carry the password: PGPASSWORD supplies it.",
        ),
        CatalogEntry(
            "sqlite",
            "SQL against a SQLite file",
            "python",
            "mcp-server-sqlite",
            ("uvx", "mcp-server-sqlite", "--db-path", "/data/db.sqlite"),
            unmaintained=_ARCHIVED,
        ),
        CatalogEntry(
            "playwright",
            "Drive a headless browser",
            "node",
            "@playwright/mcp",
            ("npx", "-y", "@playwright/mcp", "--headless", "--isolated"),
        ),
        CatalogEntry(
            "slack",
            "Read and post Slack messages",
            "node",
            "@modelcontextprotocol/server-slack",
            ("npx", "-y", "@modelcontextprotocol/server-slack"),
            secrets={"SLACK_BOT_TOKEN": "the bot token (xoxb-...)", "SLACK_TEAM_ID": "the workspace id"},
            unmaintained=_ARCHIVED,
        ),
        CatalogEntry(
            "brave-search",
            "Web and local search with the Brave Search API",
            "node",
            "@brave/brave-search-mcp-server",
            ("npx", "-y", "@brave/brave-search-mcp-server"),
            secrets={"BRAVE_API_KEY": "a Brave Search API key"},
            notes="Replaces the archived npm package @modelcontextprotocol/server-brave-search.",
        ),
    )
}
