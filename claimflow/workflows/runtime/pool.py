"""Runner processes, supervised by the server: spawn, hand out, stop at the deadline, replace.

Each untrusted workflow has its own pool of warm runners (``size`` of them), one run per runner
at a time. A runner is *spawned* (``asyncio.create_subprocess_exec`` of a fresh interpreter,
never a fork of the server, which holds secrets in memory) with an explicit minimal environment
and no inherited descriptors but its pipes.

The server owns the clock: a run that has not answered at its deadline fails at once and the
caller moves on. Its runner is told to cancel; if it does not answer within ``kill_grace``
seconds (blocking code, a busy loop, a swallowed cancellation) it is killed with SIGKILL and
replaced, in the background. A runner that dies is replaced when it is next needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from claimflow.errors import BindingNotDeclared, WorkflowConfigError, WorkflowRuntimeError
from claimflow.workflows.definition import Workflow
from claimflow.workflows.runtime.protocol import (
    ProtocolError,
    decode_frame,
    encode_frame,
    read_frame,
)

log = logging.getLogger("claimflow.workflows.runtime")

RUNNER_MODULE = "claimflow.workflows.runtime.runner"
START_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.0005
"""How long the server polls for a runner's answer before it awaits it (``RunnerProcess.poll``)."""

CallHandler = Callable[[str, dict[str, Any]], Awaitable[Any]]
"""Answers one binding call: ``(binding, args)`` → JSON value (raises to refuse)."""
LogHandler = Callable[[str, str], None]


class DeadlinePassed(Exception):
    """The run did not finish before its deadline (raised by the server, never the workflow)."""


def runner_environment() -> dict[str, str]:
    """What a runner inherits: where Python finds its modules, and nothing else.

    No ``CLAIMFLOW_*`` variable (secret key, database and Redis URLs), no M2M credentials, no
    proxy or cloud variables: the runner asks the server for everything it may use.
    """
    paths = [os.path.abspath(p) for p in sys.path if p and os.path.isdir(p)]
    return {
        "PATH": os.defpath,
        "PYTHONPATH": os.pathsep.join(paths),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }


def runner_user(configured: str | None = None) -> str | None:
    """Who runners run as: ``configured`` (default ``nobody``) when the server runs as root;
    None (the server's own user) otherwise, or when ``configured`` is ``root``."""
    if os.geteuid() != 0:
        return None
    user = configured or "nobody"
    return None if user == "root" else user


def _user_args(user: str | None) -> list[str]:
    return [] if user is None else ["--user", user]


def _absolute(source: str) -> str:
    """Runners start in ``/``: a workflow path is made absolute first."""
    return os.path.abspath(source) if source.endswith(".py") else source


def describe(
    sources: list[str], memory_mb: int, user: str | None = runner_user()
) -> list[dict[str, Any]]:
    """Each module's declaration, read in a runner so its top-level code never runs here (nor,
    when the server runs as root, as root: see ``runner_user``)."""
    completed = subprocess.run(  # noqa: S603 - our interpreter, our module, no shell
        [
            sys.executable,
            "-m",
            RUNNER_MODULE,
            "--memory-mb",
            str(memory_mb),
            *_user_args(user),
            "--describe",
            *(_absolute(s) for s in sources),
        ],
        env=runner_environment(),
        cwd="/",
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=START_TIMEOUT_SECONDS,
        check=False,
    )
    data = completed.stdout
    if completed.returncode != 0 or len(data) < 4:
        tail = completed.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["?"]
        raise WorkflowConfigError(f"cannot load workflow(s) {sources}: {tail[0]}")
    message = decode_frame(data)
    described: list[dict[str, Any]] = message["workflows"]
    return described


@dataclass(eq=False)
class RunnerProcess:
    process: asyncio.subprocess.Process
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def send(self, message: dict[str, Any]) -> None:
        self.writer.write(encode_frame(message))

    def poll(self, seconds: float) -> None:
        """Wait up to ``seconds`` for the runner's next frame without leaving the CPU.

        Sleeping in the event loop until the runner answers gives the CPU away, and on a busy
        host getting it back costs the server a scheduling period (milliseconds) per run; a
        warm runner answers a short run well within ``seconds``. What arrives is fed to the
        reader, so the loop's own reads go on from there; on a slower runner the caller simply
        awaits as before."""
        if seconds <= 0:
            return
        try:
            # asyncio's subprocess gives no public handle on the stdout pipe's descriptor.
            pipe = self.process._transport.get_pipe_transport(1)  # type: ignore[attr-defined]
            fd = pipe.get_extra_info("pipe").fileno()
        except (AttributeError, ValueError, OSError):
            return  # no pipe any more (the runner is gone): the reader will say so
        end = time.perf_counter() + seconds
        received = bytearray()
        while time.perf_counter() < end:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                # The pipe's wake-up is a "sync" one: the kernel likely queued the runner on
                # this CPU, expecting us to sleep. Yielding lets it run here at once.
                os.sched_yield()
                continue
            except OSError:
                return
            if not data:
                return  # end of file: the reader learns it from its transport
            self.reader.feed_data(data)
            received += data
            if len(received) >= 4 and len(received) >= 4 + int.from_bytes(received[:4], "big"):
                return

    def kill(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


class RunnerPool:
    """The warm runners of one untrusted workflow."""

    def __init__(
        self,
        workflow: Workflow,
        size: int,
        memory_mb: int,
        kill_grace: float,
        user: str | None = None,
    ) -> None:
        self.workflow = workflow
        self.user = user
        self.poll_seconds = POLL_SECONDS
        self.size = max(1, size)
        self.memory_mb = memory_mb
        self.kill_grace = kill_grace
        self._idle: asyncio.Queue[RunnerProcess] = asyncio.Queue()
        self._all: set[RunnerProcess] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._closed = False
        self._runs = itertools.count(1)
        self.last_error: str | None = None
        self._settled = asyncio.Event()
        """Set once the first spawn has ended, ready or not."""
        self.replaced = 0
        """How many runners were killed or found dead and replaced (for tests and metrics)."""
        self.runner_replaced = asyncio.Event()

    def _background(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start(self) -> None:
        """Spawn the runners in the background (the first run waits for one to be ready)."""
        if self._started:
            return
        self._started = True
        for _ in range(self.size):
            self._background(self._spawn())

    async def ready(self) -> None:
        """Start the runners and wait until the first has loaded the workflow, or failed to."""
        self.start()
        await self._settled.wait()
        if self.last_error is not None:
            raise WorkflowConfigError(self.last_error)

    async def _spawn(self) -> None:
        if self._closed:
            return
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            RUNNER_MODULE,
            "--source",
            _absolute(self.workflow.source),
            "--memory-mb",
            str(self.memory_mb),
            *_user_args(self.user),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=runner_environment(),
            cwd="/",
            close_fds=True,
        )
        assert process.stdin is not None and process.stdout is not None
        runner = RunnerProcess(process, process.stdout, process.stdin)
        self._all.add(runner)
        try:
            async with asyncio.timeout(START_TIMEOUT_SECONDS):
                ready = await read_frame(runner.reader)
            if ready.get("t") != "ready":
                raise ProtocolError(f"expected ready, got {ready.get('t')!r}")
        except (TimeoutError, asyncio.IncompleteReadError, ProtocolError) as exc:
            self.last_error = f"runner of workflow {self.workflow.id!r} did not start: {exc!r}"
            log.error("%s", self.last_error)
            self._settled.set()
            await self._discard(runner)
            return
        self.last_error = None
        self._settled.set()
        if self._closed:
            await self._discard(runner)
            return
        self._idle.put_nowait(runner)

    async def _discard(self, runner: RunnerProcess) -> None:
        runner.kill()
        self._all.discard(runner)
        with contextlib.suppress(Exception):
            runner.writer.close()
        await runner.process.wait()

    def _replace(self, runner: RunnerProcess) -> None:
        self.replaced += 1
        self.runner_replaced.set()
        self._background(self._discard(runner))
        self._background(self._spawn())

    async def _acquire(self) -> RunnerProcess:
        self.start()
        while True:
            if self._idle.empty() and self.last_error is not None and not self._all:
                message = self.last_error
                self.last_error = None
                self._background(self._spawn())  # try again for the next run
                raise WorkflowRuntimeError(message)
            runner = await self._idle.get()
            if runner.alive:
                return runner
            self._replace(runner)

    async def run(
        self,
        event: dict[str, Any],
        deadline: float,
        on_call: CallHandler,
        on_log: LogHandler,
        env: dict[str, dict[str, Any] | None] | None = None,
    ) -> dict[str, Any]:
        """One run in a runner: its ``done`` message, or ``DeadlinePassed`` at ``deadline``.

        ``env`` holds the declared variables' values, sent with the run so that reading them
        costs no round trip."""
        run = next(self._runs)
        try:
            async with asyncio.timeout_at(deadline):
                runner = await self._acquire()
        except TimeoutError:
            raise DeadlinePassed from None
        calls: set[asyncio.Task[None]] = set()
        finished = False
        try:
            runner.send(
                {
                    "t": "run",
                    "run": run,
                    "declared": sorted(b.value for b in self.workflow.settings.bindings),
                    "event": event,
                    "env": env or {},
                }
            )
            runner.poll(self.poll_seconds)
            async with asyncio.timeout_at(deadline):
                while True:
                    message = await read_frame(runner.reader)
                    kind = message["t"]
                    if kind == "log" and message.get("run") == run:
                        on_log(str(message.get("level", "info")), str(message.get("message", "")))
                    elif kind == "call" and message.get("run") == run:
                        task = asyncio.create_task(self._answer(runner, message, on_call))
                        calls.add(task)
                        task.add_done_callback(calls.discard)
                    elif kind == "done" and message.get("run") == run:
                        finished = True
                        break
                    else:
                        raise ProtocolError(f"unexpected {kind!r} frame")
        except TimeoutError:
            self._background(self._stop(runner, run))
            raise DeadlinePassed from None
        except (asyncio.IncompleteReadError, ProtocolError, ConnectionError) as exc:
            code = runner.process.returncode
            self._replace(runner)
            died = f"exit status {code}" if code is not None else repr(exc)
            raise WorkflowRuntimeError(f"the workflow runner failed ({died})") from None
        except BaseException:
            # The request was abandoned (cancelled): stop the run as at a deadline.
            self._background(self._stop(runner, run))
            raise
        finally:
            for task in calls:
                task.cancel()
        if finished:
            self._idle.put_nowait(runner)
        return message

    async def _answer(
        self, runner: RunnerProcess, message: dict[str, Any], on_call: CallHandler
    ) -> None:
        reply: dict[str, Any] = {"t": "reply", "id": message.get("id")}
        try:
            args = message.get("args")
            value = await on_call(
                str(message.get("binding")), args if isinstance(args, dict) else {}
            )
            reply.update(ok=True, value=value)
        except BindingNotDeclared as exc:
            reply.update(
                ok=False,
                error={"kind": "not_declared", "binding": exc.binding, "message": str(exc)},
            )
        except WorkflowRuntimeError as exc:
            reply.update(ok=False, error={"kind": "runtime", "message": str(exc)})
        if runner.alive:
            with contextlib.suppress(ConnectionError, ProtocolError, ValueError):
                runner.send(reply)

    async def _stop(self, runner: RunnerProcess, run: int) -> None:
        """After the deadline: cancel, wait ``kill_grace`` for the run to end, else SIGKILL."""
        try:
            runner.send({"t": "cancel", "run": run})
            async with asyncio.timeout(self.kill_grace):
                while True:
                    message = await read_frame(runner.reader)
                    if message.get("t") == "done" and message.get("run") == run:
                        break
                    if message.get("t") == "call":
                        runner.send(
                            {
                                "t": "reply",
                                "id": message.get("id"),
                                "ok": False,
                                "error": {"kind": "runtime", "message": "the run was cancelled"},
                            }
                        )
        except (TimeoutError, asyncio.IncompleteReadError, ProtocolError, ConnectionError):
            log.warning(
                "workflow %s did not stop within %g s of its deadline; its runner is killed",
                self.workflow.id,
                self.kill_grace,
            )
            self._replace(runner)
            return
        self._idle.put_nowait(runner)

    async def aclose(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        for runner in list(self._all):
            await self._discard(runner)


class RunnerPools:
    """One ``RunnerPool`` per untrusted workflow, made on first use."""

    def __init__(
        self,
        size: int = 2,
        memory_mb: int = 512,
        kill_grace: float = 0.2,
        user: str | None = runner_user(),
    ) -> None:
        self.size = size
        self.user = user
        self.memory_mb = memory_mb
        self.kill_grace = kill_grace
        self._pools: dict[str, RunnerPool] = {}

    def pool(self, workflow: Workflow) -> RunnerPool:
        pool = self._pools.get(workflow.id)
        if pool is None:
            pool = self._pools[workflow.id] = RunnerPool(
                workflow, self.size, self.memory_mb, self.kill_grace, self.user
            )
        return pool

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()
        self._pools.clear()
