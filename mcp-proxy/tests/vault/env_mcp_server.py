"""A stdio MCP server (standard library only) that reports on its own environment, for the resolver's proxy tests.

Tools: `pid`; `marker(name)`: the value of a NON-secret variable (which version of a rotated secret document the
child got); `digest(name)`: SHA-256 of a variable; `names`: the sorted variable names; `argv`: its command line;
`leak(name)`: writes a variable to stderr as is, base64, URL-encoded and JSON-escaped (the redaction test);
`block(path)`: returns once `path` exists (a request kept in flight as long as a test wants).
"""

import base64
import hashlib
import json
import os
import sys
import time
import urllib.parse

TOOLS = [
    {"name": name, "inputSchema": {"type": "object"}}
    for name in ("pid", "marker", "digest", "names", "argv", "leak", "block")
]


def reply(ident: object, result: dict[str, object]) -> None:
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": ident, "result": result}) + "\n")
    sys.stdout.flush()


def text(value: object) -> dict[str, object]:
    return {"content": [{"type": "text", "text": str(value)}], "isError": False}


def call(name: str, arguments: dict[str, str]) -> object:
    if name == "pid":
        return os.getpid()
    if name == "marker":
        return os.environ.get(arguments["name"], "")
    if name == "digest":
        return hashlib.sha256(os.environ.get(arguments["name"], "").encode()).hexdigest()
    if name == "names":
        return json.dumps(sorted(os.environ))
    if name == "argv":
        return json.dumps(sys.argv)
    if name == "leak":
        value = os.environ.get(arguments["name"], "")
        sys.stderr.write(f"plain {value}\n")
        sys.stderr.write(f"base64 {base64.b64encode(value.encode()).decode()}\n")
        sys.stderr.write(f"url {urllib.parse.quote(value, safe='')}\n")
        sys.stderr.write(f"json {json.dumps({'token': value})}\n")
        sys.stderr.flush()
        return "leaked"
    if name == "block":
        deadline = time.monotonic() + 60
        while not os.path.exists(arguments["path"]) and time.monotonic() < deadline:
            time.sleep(0.01)  # waits for the test's signal file, bounded
        return "released"
    return f"no tool {name}"


def main() -> None:
    for line in sys.stdin:
        message = json.loads(line)
        method, ident = message.get("method"), message.get("id")
        if method is None or ident is None:
            continue
        params = message.get("params") or {}
        if method == "initialize":
            info = {"name": "env", "version": "1"}
            reply(
                ident, {"protocolVersion": params["protocolVersion"], "capabilities": {"tools": {}}, "serverInfo": info}
            )
        elif method == "tools/list":
            reply(ident, {"tools": TOOLS})
        elif method == "tools/call":
            reply(ident, text(call(params.get("name"), params.get("arguments") or {})))
        elif method == "ping":
            reply(ident, {})
        else:
            error = {"code": -32601, "message": f"Method not found: {method}"}
            sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": ident, "error": error}) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
