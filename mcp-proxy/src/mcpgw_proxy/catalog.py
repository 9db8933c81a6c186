"""The service catalog: how to run well-known stdio MCP servers behind the proxy.

Each entry names the runtime the server needs, its default command, the release to pin, the plain environment it
expects and the secret variables an operator must supply as references (never values; the vault resolver fills them
in). Secrets go in the environment only, never in the command line. It also says what the server needs around it:
the internet (a network of its own, shared with Traefik only, instead of the internal one), and mounts (a named
volume it writes, or a directory of the host). `just new-service NAME` scaffolds a services/ folder from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Runtime = Literal["python", "node", "binary"]
Network = Literal["internal", "internet"]


@dataclass(frozen=True)
class Mount:
    """A path of the server's container that must hold something."""

    target: str
    source: Literal["volume", "host"]  # a named volume of its own (kept across restarts), or a directory of the host
    writable: bool
    what: str  # what goes there, said in the scaffold and its messages


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
    version: str = ""  # the release a scaffold pins (PyPI/npm version, or the binary image's tag)
    network: Network = "internal"  # "internet": it calls out (an API, the pages it fetches, a database)
    mounts: tuple[Mount, ...] = ()
    image: str = ""  # binary runtime: the published image that ships the executable ...
    binary_path: str = ""  # ... and where in it
    system_packages: tuple[str, ...] = ()  # what it needs beyond its runtime, which the stock images lack

    @property
    def warnings(self) -> list[str]:
        """What an operator must know before enabling it; a scaffold carries these into its file."""
        found = [f"Unmaintained upstream: {self.unmaintained}."] if self.unmaintained else []
        if self.system_packages:
            found.append(
                f"Needs {', '.join(self.system_packages)}, which the stock {self.runtime}-server image lacks: build it "
                "from a Dockerfile of its own (docs/adding-a-service.md, Images) before enabling it."
            )
        return found


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
            version="2026.8.31",
            mounts=(Mount("/data", "host", False, "the directory it shares"),),
            notes="The directory is mounted read-only: its write tools fail. Drop `:ro` only if it must write.",
        ),
        CatalogEntry(
            "memory",
            "A knowledge graph kept in a JSON-lines file",
            "node",
            "@modelcontextprotocol/server-memory",
            ("npx", "-y", "@modelcontextprotocol/server-memory"),
            env={"MEMORY_FILE_PATH": "/data/memory.jsonl"},
            version="2026.8.31",
            mounts=(Mount("/data", "volume", True, "the knowledge graph"),),
            notes="One graph for everyone: every user who can sign in reads and writes the same file.",
        ),
        CatalogEntry(
            "fetch",
            "Fetch web pages and convert them to markdown",
            "python",
            "mcp-server-fetch",
            ("uvx", "mcp-server-fetch"),
            version="2026.10.24",
            network="internet",
            notes="Fetches any URL: run it on a network with no route to Redis, auth or other internal services.",
        ),
        CatalogEntry(
            "time",
            "Current time and time-zone conversion",
            "python",
            "mcp-server-time",
            ("uvx", "mcp-server-time"),
            version="2026.10.19",
        ),
        CatalogEntry(
            "git",
            "Read and operate on a git repository",
            "python",
            "mcp-server-git",
            ("uvx", "mcp-server-git", "--repository", "/repo"),
            # The repository belongs to another user than the server's: tell git it is safe to use.
            env={"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "/repo"},
            version="2026.10.19",
            mounts=(Mount("/repo", "host", True, "the git repository"),),
            system_packages=("git",),
            notes="Its tools commit and check out: every user who can sign in acts on the one repository.",
        ),
        CatalogEntry(
            "everything",
            "The MCP reference server exercising every protocol feature",
            "node",
            "@modelcontextprotocol/server-everything",
            ("npx", "-y", "@modelcontextprotocol/server-everything", "stdio"),
            version="2026.8.31",
        ),
        CatalogEntry(
            "sequential-thinking",
            "Structured step-by-step reasoning",
            "node",
            "@modelcontextprotocol/server-sequential-thinking",
            ("npx", "-y", "@modelcontextprotocol/server-sequential-thinking"),
            version="2026.8.31",
        ),
        CatalogEntry(
            "github",
            "GitHub's official MCP server (issues, pull requests, code)",
            "binary",
            "github/github-mcp-server",
            ("github-mcp-server", "stdio"),
            secrets={"GITHUB_PERSONAL_ACCESS_TOKEN": "a fine-grained GitHub token with the scopes the tools need"},
            notes="Replaces the deprecated npm package @modelcontextprotocol/server-github. Every user who can sign in "
            "acts with this one token.",
            version="v1.11.0",
            network="internet",
            image="ghcr.io/github/github-mcp-server",
            binary_path="/server/github-mcp-server",
        ),
        CatalogEntry(
            "postgres",
            "Read-only SQL against a PostgreSQL database",
            "node",
            "@modelcontextprotocol/server-postgres",
            ("npx", "-y", "@modelcontextprotocol/server-postgres", "postgresql://mcp_readonly@postgres:5432/app"),
            secrets={"PGPASSWORD": "the password of the read-only database user (libpq reads it from the environment)"},
            unmaintained=_ARCHIVED,
            notes="The URL argument must not carry the password: PGPASSWORD supplies it. Point it at your database; "
            "a database in this compose project must join the service's network.",
            version="0.6.2",
            network="internet",
        ),
        CatalogEntry(
            "sqlite",
            "SQL against a SQLite file",
            "python",
            "mcp-server-sqlite",
            ("uvx", "mcp-server-sqlite", "--db-path", "/data/db.sqlite"),
            unmaintained=_ARCHIVED,
            version="2025.4.25",
            mounts=(Mount("/data", "volume", True, "the database file"),),
        ),
        CatalogEntry(
            "playwright",
            "Drive a headless browser",
            "node",
            "@playwright/mcp",
            ("npx", "-y", "@playwright/mcp", "--headless", "--isolated"),
            version="0.0.83",
            network="internet",
            system_packages=("chromium",),
            notes="It browses any URL a user's model asks for: a server-side request forgery tool, like fetch.",
        ),
        CatalogEntry(
            "slack",
            "Read and post Slack messages",
            "node",
            "@modelcontextprotocol/server-slack",
            ("npx", "-y", "@modelcontextprotocol/server-slack"),
            secrets={"SLACK_BOT_TOKEN": "the bot token (xoxb-...)", "SLACK_TEAM_ID": "the workspace id"},
            unmaintained=_ARCHIVED,
            version="2025.4.25",
            network="internet",
        ),
        CatalogEntry(
            "brave-search",
            "Web and local search with the Brave Search API",
            "node",
            "@brave/brave-search-mcp-server",
            ("npx", "-y", "@brave/brave-search-mcp-server"),
            secrets={"BRAVE_API_KEY": "a Brave Search API key"},
            notes="Replaces the archived npm package @modelcontextprotocol/server-brave-search.",
            version="2.1.4",
            network="internet",
        ),
    )
}
