"""A workflow runner: the process an untrusted workflow runs in (design §8).

Started by the server as ``python -m claimflow.workflows.runtime.runner --source S`` with a
clean environment, it limits its own address space (``RLIMIT_AS``) before loading any workflow
code, loads the one workflow module it serves, says ``ready`` and then runs one run at a time.
The workflow's bindings here are proxies: setting a claim or denying access is recorded and
sent back with the result, and every environment, Management API or fetch call is a message to
the server, which checks the declaration and performs it. The process holds no secret key,
database URL, signing key or connection of the server, and it serves a single workflow, so the
secrets one workflow may read never live in a process another workflow's code runs in.

With ``--describe PATH...`` it loads the modules and prints their ``workflow_settings`` instead,
so the server learns a user workflow's declaration without running its code in-process.

With ``--user NAME`` (the server passes it when it runs as root) the runner switches to that
user for good (real, effective and saved ids, no supplementary groups) before any line of the
workflow runs: its top-level code, its ``run``, and anything it imports afterwards run as
``NAME``, which cannot read the server's database file or secret-key file (both mode 600) nor
switch back. Before the switch it reads the workflow's source and imports the modules the
source names from outside claimflow (library code, which may live where ``NAME`` cannot read,
such as an interpreter under ``/root``); the workflow's own code is compiled and run after it.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import importlib
import importlib.util
import io
import itertools
import os
import pwd
import resource
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import httpx

from claimflow.errors import BindingNotDeclared, WorkflowRuntimeError
from claimflow.tokens.reserved import ACCESS_TOKEN_RESERVED, ID_TOKEN_RESERVED
from claimflow.workflows.bindings import (
    REDACTED,
    Auth,
    Bindings,
    Env,
    EnvironmentVariable,
    Plan,
    TokenClaims,
    WorkflowLogger,
)
from claimflow.workflows.definition import Binding, Workflow
from claimflow.workflows.event import event_from_wire
from claimflow.workflows.fetch import Fetch, FetchRequest, FetchResponse
from claimflow.workflows.loading import load_workflow
from claimflow.workflows.management_client import ManagementAPIClient
from claimflow.workflows.runtime.protocol import encode_frame, read_frame


class _Channel:
    """The runner's end of the pipes: frames out, and binding calls waiting for replies."""

    def __init__(self, reader: asyncio.StreamReader, out_fd: int) -> None:
        self.reader = reader
        self._out_fd = out_fd
        self._ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}

    def send(self, message: dict[str, Any]) -> None:
        data = encode_frame(message)
        view = memoryview(data)
        while view:
            written = os.write(self._out_fd, view)
            view = view[written:]

    async def call(self, run: int, binding: str, args: dict[str, Any]) -> Any:
        call_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[call_id] = future
        try:
            self.send({"t": "call", "id": call_id, "run": run, "binding": binding, "args": args})
            reply = await future
        finally:
            self.pending.pop(call_id, None)
        if reply.get("ok"):
            return reply.get("value")
        error = reply.get("error") or {}
        if error.get("kind") == "not_declared":
            raise BindingNotDeclared(str(error.get("binding", binding)))
        raise WorkflowRuntimeError(str(error.get("message", "the server refused the call")))


class _ForwardedLogger(WorkflowLogger):
    """Log lines go to the server at once (it redacts secrets), so a run cut off at its
    deadline still leaves what it logged."""

    def __init__(self, channel: _Channel, run: int) -> None:
        super().__init__()
        self._channel = channel
        self._run = run

    def _log(self, level: str, message: str) -> None:
        self._channel.send({"t": "log", "run": self._run, "level": level, "message": str(message)})


class _ForwardedManagementAPI:
    """A ``ManagementTransport`` whose requests the server performs (with the declared scopes)."""

    def __init__(self, channel: _Channel, run: int) -> None:
        self._channel = channel
        self._run = run

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        body: Any | None,
        *,
        scopes: frozenset[str],
        time_left: float | None = None,
    ) -> httpx.Response:
        args = {"method": method, "path": path, "params": dict(params), "body": body}
        answer = await self._channel.call(self._run, Binding.MANAGEMENT_API.value, args)
        if answer.get("error") == "timeout":
            raise httpx.TimeoutException("the Management API call timed out")
        if "error" in answer:
            raise httpx.ConnectError(str(answer["error"]))
        return httpx.Response(int(answer["status"]), content=str(answer["body"]).encode("utf-8"))

    async def aclose(self) -> None:
        return None


def _bindings(
    channel: _Channel, run: int, declared: frozenset[Binding], trigger: str, env: dict[str, Any]
) -> Bindings:
    logger = _ForwardedLogger(channel, run)
    encodings: dict[int, bytes] = {}

    async def read_variable(key: str) -> EnvironmentVariable | None:
        # The server sent the variables declared by name with the run; others are asked for.
        value = env[key] if key in env else await channel.call(run, Binding.ENV.value, {"key": key})
        return None if value is None else EnvironmentVariable(value["value"], value["is_secret"])

    async def fetch(request: FetchRequest) -> FetchResponse:
        return FetchResponse.from_wire(
            await channel.call(run, Binding.FETCH.value, request.to_wire())
        )

    provided: dict[Binding, object] = {
        Binding.ACCESS_TOKEN: TokenClaims("access token", ACCESS_TOKEN_RESERVED, encodings),
        Binding.ID_TOKEN: TokenClaims("ID token", ID_TOKEN_RESERVED, encodings),
        Binding.M2M_TOKEN: TokenClaims("M2M token", ACCESS_TOKEN_RESERVED, encodings),
        Binding.AUTH: Auth(),
        Binding.PLAN: Plan(trigger),
        Binding.ENV: Env(read_variable),
        Binding.MANAGEMENT_API: ManagementAPIClient(_ForwardedManagementAPI(channel, run), logger),
        Binding.FETCH: Fetch(fetch),
    }
    return Bindings(declared, logger, provided)


def _claims(bindings: Bindings, binding: Binding) -> dict[str, list[Any]]:
    if binding not in bindings.declared:
        return {}
    claims: TokenClaims = getattr(bindings, binding.value)
    return {name: list(forms) for name, forms in claims.forms.items()}


class _RedactingStream(io.TextIOBase):
    """``sys.stdout`` / ``sys.stderr`` during a run whose event holds secrets: a ``print`` of
    the typed password reaches the server's stderr redacted, as Kinde redacts a password
    "logged out to the console" in password workflows."""

    def __init__(self, inner: TextIO, secrets: tuple[str, ...]) -> None:
        self._inner = inner
        self._secrets = sorted((s for s in secrets if s), key=len, reverse=True)

    def write(self, text: str) -> int:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return self._inner.write(text)

    def flush(self) -> None:
        self._inner.flush()


async def _run(channel: _Channel, workflow: Workflow, message: dict[str, Any]) -> None:
    run = int(message["run"])
    declared = frozenset(Binding(b) for b in message["declared"])
    event = event_from_wire(message["event"])
    env = message.get("env")
    bindings = _bindings(
        channel,
        run,
        declared,
        event.context.workflow.trigger.value,
        env if isinstance(env, dict) else {},
    )
    error: str | None = None
    streams = sys.stdout, sys.stderr
    if event.secrets:
        sys.stdout = _RedactingStream(streams[0], event.secrets)
        sys.stderr = _RedactingStream(streams[1], event.secrets)
    try:
        await workflow.entry(event, bindings)
    except asyncio.CancelledError:
        error = "cancelled at the deadline"
    except WorkflowRuntimeError as exc:
        error = str(exc)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        sys.stdout, sys.stderr = streams
    result: dict[str, Any] = {"t": "done", "run": run, "error": error, "denied": None}
    if error is None:
        result["access_token"] = _claims(bindings, Binding.ACCESS_TOKEN)
        result["id_token"] = _claims(bindings, Binding.ID_TOKEN)
        result["m2m_token"] = _claims(bindings, Binding.M2M_TOKEN)
        if Binding.PLAN in declared:
            plan = bindings.plan
            result["plan_denied"] = {"reasons": plan.reasons, "suggestions": plan.suggestions}
        if Binding.AUTH in declared:
            result["denied"] = bindings.auth.denied_reason
    try:
        channel.send(result)
    except ValueError as exc:  # a claim value JSON cannot carry (checked when it was set)
        channel.send({"t": "done", "run": run, "error": f"result not sendable: {exc}"})


async def _serve(source: str, in_fd: int, out_fd: int, text: str | None = None) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**16)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(in_fd, "rb", buffering=0)
    )
    channel = _Channel(reader, out_fd)
    workflow = load_workflow(source, text)
    channel.send({"t": "ready", "workflow": workflow.id})
    current: asyncio.Task[None] | None = None
    current_run: int | None = None
    while True:
        try:
            message = await read_frame(reader)
        except asyncio.IncompleteReadError:
            return  # the server closed the pipe: exit
        kind = message["t"]
        if kind == "run":
            current_run = int(message["run"])
            current = asyncio.create_task(_run(channel, workflow, message))
        elif kind == "reply":
            future = channel.pending.get(int(message["id"]))
            if future is not None and not future.done():
                future.set_result(message)
        elif kind == "cancel" and current is not None and message.get("run") == current_run:
            current.cancel()


def _limit_memory(megabytes: int) -> None:
    if megabytes > 0:
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _private_stdio() -> tuple[int, int]:
    """Keep the protocol's pipes to ourselves: a workflow's ``print`` goes to stderr, and its
    reads of stdin see nothing, so it cannot write frames by accident."""
    in_fd, out_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.close(devnull)
    return in_fd, out_fd


def _source_text(source: str) -> str | None:
    """The workflow's source, read without running it (None when it cannot be found)."""
    path: str | None = source
    if not source.endswith(".py"):
        with contextlib.suppress(ImportError, ValueError):
            spec = importlib.util.find_spec(source.split(":", 1)[0])
            path = spec.origin if spec is not None else None
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


AUTHOR_PACKAGES = ("claimflow.workflows", "claimflow.claims", "claimflow.errors")
"""What of claimflow a workflow may import (the author's API; no I/O when imported)."""

COMMON_MODULES = (
    "base64",
    "collections",
    "contextlib",
    "dataclasses",
    "datetime",
    "decimal",
    "enum",
    "functools",
    "hashlib",
    "hmac",
    "importlib.metadata",
    "importlib.resources",
    "ipaddress",
    "itertools",
    "json",
    "logging",
    "math",
    "random",
    "re",
    "secrets",
    "string",
    "time",
    "typing",
    "unicodedata",
    "urllib.parse",
    "uuid",
    "zoneinfo",
    "encodings.idna",
    "encodings.latin_1",
    "encodings.ascii",
    "encodings.utf_8",
)
"""Standard modules a workflow commonly uses, directly or through a library, imported before
the switch: where the interpreter's own files are readable by root only (a Python under
``/root``), a module first imported after it cannot be read."""


def _imported_modules(text: str) -> set[str]:
    """Absolute module names the source imports anywhere; of claimflow, only the author's API
    (the rest is the server's and is no workflow's business)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {
        n
        for n in names
        if n.split(".")[0] != "claimflow"
        or any(n == p or n.startswith(p + ".") for p in AUTHOR_PACKAGES)
    }


def _beside_workflows(name: str, directories: set[Path]) -> bool:
    """Whether the top-level module ``name`` would come from a workflow's own directory (or
    cannot be located): such a module is the workflow author's code, not a library."""
    try:
        spec = importlib.util.find_spec(name.split(".")[0])
    except (ImportError, ValueError):
        return True
    if spec is None:
        return True
    places = [spec.origin] if spec.origin and spec.has_location else []
    places += list(spec.submodule_search_locations or [])
    return any(
        directory in Path(place).resolve().parents or Path(place).resolve() == directory
        for place in places
        for directory in directories
    )


def _preload(sources: list[str]) -> dict[str, str]:
    """Read, while still privileged, the workflows' sources, and import the library modules
    they name: never one that lies beside a workflow (its top-level code must not run as the
    server's user). Returns the sources' text by source, to be compiled and run after the
    switch."""
    texts: dict[str, str] = {}
    for name in (*AUTHOR_PACKAGES, *COMMON_MODULES):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    directories = {Path(s).resolve().parent for s in sources if s.endswith(".py")}
    for source in sources:
        text = _source_text(source)
        if text is None:
            continue
        if source.endswith(".py"):
            texts[source] = text
        for name in sorted(_imported_modules(text)):
            if _beside_workflows(name, directories):
                continue
            with contextlib.suppress(Exception):
                importlib.import_module(name)
    return texts


def drop_privileges(user: str) -> None:
    """Become ``user`` for good: groups, then gid, then uid (as root, ``setuid`` sets the real,
    effective and saved ids, so there is no way back)."""
    entry = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    if entry.pw_uid != 0:
        try:
            os.setuid(0)
        except PermissionError:
            return
        raise SystemExit("the runner could switch back to root; refusing to run workflows")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="claimflow.workflows.runtime.runner")
    parser.add_argument("--source", help="the workflow module: a module name or a .py path")
    parser.add_argument("--memory-mb", type=int, default=0)
    parser.add_argument("--describe", nargs="*", default=None)
    parser.add_argument("--user", default=None, help="switch to this user before workflow code")
    args = parser.parse_args(argv)
    _limit_memory(args.memory_mb)
    in_fd, out_fd = _private_stdio()
    texts: dict[str, str] = {}
    if args.user:
        texts = _preload(args.describe if args.describe is not None else [args.source or ""])
        drop_privileges(args.user)
    if args.describe is not None:
        described: list[dict[str, Any]] = []
        for source in args.describe:
            try:
                loaded = load_workflow(source, texts.get(source))
                described.append({"settings": loaded.settings.to_wire()})
            except Exception as exc:  # reported to the server, which refuses to start
                described.append({"error": f"{type(exc).__name__}: {exc}"})
        os.write(out_fd, encode_frame({"t": "described", "workflows": described}))
        return
    if not args.source:
        parser.error("--source is required")
    asyncio.run(_serve(args.source, in_fd, out_fd, texts.get(args.source)))


if __name__ == "__main__":
    main(sys.argv[1:])
