"""The start-up path stays lean: modules only some requests need are imported on first use.

Every worker start pays for what the main process imported before forking it (``bench/startup.py``
measures the time; this test keeps the list). A new top-level import of one of these modules on the
serving path fails here with the module that pulled it in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each is imported on first use: by an HTML error page (html), a UUID route or request id (uuid), a
# cookie expiry (email.utils; the Date header has its own formatter), a user's __main__ script in a
# worker (runpy), the main listing its user modules before a fork (sysconfig), the console (repl,
# prompt_toolkit), a WebSocket route (websockets), the reloader (watchfiles), --version (platform),
# a non-ASCII host name to bind (encodings.idna: socket.getaddrinfo loads it for any str host),
# the manager's exit policy and replacement bookkeeping (a process exits, a restart or reload
# starts a replacement: all after the first fork), a file response's type (mimetypes), TLS
# (runtime.tls: only with --tls-cert or --auto-tls).
LAZY = (
    "email.utils",
    "encodings.idna",
    "html",
    "mimetypes",
    "platform",
    "prompt_toolkit",
    "repl",
    "runpy",
    "runtime.supervisor.policy",
    "runtime.supervisor.replacements",
    "runtime.tls",
    "sysconfig",
    "uuid",
    "watchfiles",
    "websockets",
)

PROBE = textwrap.dedent(
    """
    import json, sys
    from runtime import cli
    from runtime.supervisor import main, worker  # the main process and what a fork runs
    import runtime.server

    options = cli.parse_command(["app_module:app", "-w", "2"])
    from runtime import launch
    options = launch.resolve_tls(options)
    app = cli.load_app(options.target)
    from runtime.server import sockets
    sockets.bind("127.0.0.1", 0).close()
    sockets.bind("localhost", 0).close()
    print(json.dumps(sorted(name for name in LAZY if name in sys.modules)))
    """
)


def test_serving_path_imports_none_of_the_lazy_modules(tmp_path: Path) -> None:
    (tmp_path / "app_module.py").write_text(
        "from runtime import App, text\n\n"
        "app = App('Lean')\n\n"
        "@app.get('/')\n"
        "async def index(request):\n"
        "    return text('ok')\n"
    )
    code = f"LAZY = {LAZY!r}\n" + PROBE
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    if loaded:
        # name the importer, so the failure says where to look
        why = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        ).stderr
        raise AssertionError(f"imported at start-up: {loaded}\n-X importtime:\n{why}")
