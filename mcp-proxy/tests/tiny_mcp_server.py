"""A stdio MCP server in the standard library only, for tests that spawn hundreds of children.

It starts in a few milliseconds (run it with `python -S`), where the SDK-based echo demo needs most of a second of
CPU. Tools: `pid`, `echo(text)`, `crash(status)`. Enough of the protocol for raw-HTTP clients: initialize, ping,
tools/list, tools/call; notifications are read and ignored.
"""

import json
import os
import sys

TOOLS = [
    {"name": "pid", "description": "The server's process id.", "inputSchema": {"type": "object"}},
    {"name": "echo", "description": "Return the text.", "inputSchema": {"type": "object"}},
    {"name": "crash", "description": "Exit at once with `status`.", "inputSchema": {"type": "object"}},
]


def reply(ident: object, result: dict[str, object]) -> None:
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": ident, "result": result}) + "\n")
    sys.stdout.flush()


def text(value: object) -> dict[str, object]:
    return {"content": [{"type": "text", "text": str(value)}], "isError": False}


def main() -> None:
    for line in sys.stdin:
        message = json.loads(line)
        method, ident = message.get("method"), message.get("id")
        if method is None or ident is None:
            continue  # a notification or a response
        params = message.get("params") or {}
        if method == "initialize":
            info = {"name": "tiny", "version": "1"}
            reply(
                ident, {"protocolVersion": params["protocolVersion"], "capabilities": {"tools": {}}, "serverInfo": info}
            )
        elif method == "tools/list":
            reply(ident, {"tools": TOOLS})
        elif method == "tools/call":
            arguments = params.get("arguments") or {}
            match params.get("name"):
                case "pid":
                    reply(ident, text(os.getpid()))
                case "echo":
                    reply(ident, text(arguments.get("text", "")))
                case "crash":
                    os._exit(int(arguments.get("status", 3)))
                case other:
                    reply(ident, {"content": [{"type": "text", "text": f"no tool {other}"}], "isError": True})
        elif method == "ping":
            reply(ident, {})
        else:
            error = {"code": -32601, "message": f"Method not found: {method}"}
            sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": ident, "error": error}) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
