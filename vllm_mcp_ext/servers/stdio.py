"""The stdio transport, with bounds on what the server writes.

The `mcp` SDK's `stdio_client` reads a server's stdout into one unbounded line buffer and passes
its stderr straight through to ours: a server that writes a gigabyte without a newline, or floods
stderr, costs the API server memory or its log. This is the same transport with a reader of our
own:

* a line (one JSON-RPC message: a tool result is one) longer than ``max_message_bytes`` ends the
  session: its calls fail with a message that says so, and the connection starts the server again
  with backoff, as after any crash;
* stdout is read at most ``max_bytes_per_second`` on average: past it the reader waits, the pipe
  fills and the server blocks on its write (back-pressure: nothing is lost);
* stderr lines go to our log under the server's label, at most ``max_log_bytes_per_second``; the
  rest is dropped and counted.

The process starts and stops as the SDK's does, with its public pieces (`get_default_environment`,
its timeouts, `terminate_posix_process_tree`) and small code of our own where it has none public:
the server runs in a process group of its own; shutdown follows the MCP spec (close stdin, wait,
then end the whole group, SIGTERM then SIGKILL). POSIX only, as vLLM is.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import anyio.lowlevel
from anyio.abc import AsyncResource, ByteReceiveStream, Process
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import StdioServerParameters, types
from mcp.client.stdio import FORCE_KILL_TIMEOUT, PROCESS_TERMINATION_TIMEOUT, get_default_environment
from mcp.os.posix.utilities import terminate_posix_process_tree
from mcp.shared.message import SessionMessage

logger = logging.getLogger(__name__)

# The operator sets them in `config.limits.Limits` (maxStdio*); these are the same defaults.
DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024  # one stdout line: one message, a tool result
DEFAULT_MAX_BYTES_PER_SECOND = 64 * 1024 * 1024  # stdout, averaged over a second
DEFAULT_MAX_LOG_BYTES_PER_SECOND = 64 * 1024  # stderr lines logged; the rest is dropped
WRITER_FLUSH_TIMEOUT = 0.5  # seconds the writer may take to send what it took, at shutdown
EXIT_POLL = 0.01  # seconds between looks at whether the stopping server has exited
KILL_REAP_TIMEOUT = 2.0  # seconds the event loop may take to see a killed server gone

Streams = tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]]


class OutputTooLarge(Exception):
    """A server wrote one message past the bound: the session ends."""


@dataclass(frozen=True)
class OutputCaps:
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_bytes_per_second: int = DEFAULT_MAX_BYTES_PER_SECOND
    max_log_bytes_per_second: int = DEFAULT_MAX_LOG_BYTES_PER_SECOND


class Rate:
    """A token bucket of one second's bytes: `take` waits until the bytes fit the average."""

    def __init__(self, per_second: int):
        self.per_second = per_second
        self.tokens = float(per_second)
        self.at = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.per_second, self.tokens + (now - self.at) * self.per_second)
        self.at = now

    async def take(self, n: int) -> None:
        self._refill()
        self.tokens -= n
        if self.tokens < 0:
            await anyio.sleep(-self.tokens / self.per_second)

    def allow(self, n: int) -> bool:
        self._refill()
        if self.tokens < n:
            return False
        self.tokens -= n
        return True


async def lines(stream: ByteReceiveStream, max_bytes: int, rate: Rate) -> AsyncIterator[bytes]:
    """The stream's lines without their newline; `OutputTooLarge` for a line past ``max_bytes``
    (found before it is held whole); reading waits on ``rate``."""
    buffer = bytearray()
    while True:
        try:
            chunk = await stream.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return
        await rate.take(len(chunk))
        buffer += chunk
        while (end := buffer.find(b"\n")) >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            if len(line) > max_bytes:
                raise OutputTooLarge(f"the server wrote a message of {len(line)} bytes (limit {max_bytes})")
            yield line
        if len(buffer) > max_bytes:
            raise OutputTooLarge(f"the server wrote a message of over {max_bytes} bytes")


async def log_stderr(stream: ByteReceiveStream, label: str, rate: Rate) -> None:
    dropped = 0
    async for line in lines(stream, rate.per_second, Rate(1 << 62)):
        if rate.allow(len(line)):
            if dropped:
                logger.warning("MCP server %s: %d stderr lines dropped (rate limit)", label, dropped)
                dropped = 0
            logger.info("MCP server %s: %s", label, line.decode("utf-8", "replace"))
        else:
            dropped += 1


@asynccontextmanager
async def bounded_stdio_client(
    server: StdioServerParameters,
    label: str,
    caps: OutputCaps,
    on_too_large: Callable[[int], None] | None = None,
) -> AsyncIterator[Streams]:
    """`mcp.client.stdio.stdio_client` with the bounds above; stderr to our log. A message past
    the bound is reported to ``on_too_large`` (the transport's trace, which the session reports
    to the calls it fails)."""
    process = await anyio.open_process(
        [server.command, *server.args],
        env=get_default_environment() | (server.env or {}),
        stderr=subprocess.PIPE,  # read by log_stderr
        cwd=server.cwd,
        start_new_session=True,  # its own process group: shutdown ends the server's children too
    )
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    writer_done = anyio.Event()

    async def stdout_reader() -> None:
        assert process.stdout is not None
        try:
            async with read_writer:
                try:
                    stream = lines(process.stdout, caps.max_message_bytes, Rate(caps.max_bytes_per_second))
                    async for line in stream:
                        await read_writer.send(parse_message(line.decode(server.encoding, "replace")))
                except OutputTooLarge as exc:
                    logger.warning("MCP server %s: %s; closing the session", label, exc)
                    if on_too_large is not None:
                        on_too_large(caps.max_message_bytes)
                    await read_writer.send(exc)
                finally:
                    await drain(process.stdout)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, ConnectionError):
            pass  # the session is gone (or our shutdown closed the stream under the read)

    async def stdin_writer() -> None:
        assert process.stdin is not None
        try:
            async with write_reader:
                async for message in write_reader:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    await process.stdin.send(data.encode(server.encoding))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            await read_writer.aclose()
        finally:
            writer_done.set()

    async def shutdown() -> None:
        read_stream.close()  # the reader drains: a server blocked on a full stdout can exit
        write_stream.close()
        with anyio.move_on_after(WRITER_FLUSH_TIMEOUT):
            await writer_done.wait()
        await stop_server(process)
        for stream in (read_stream, write_stream, read_writer, write_reader):
            await stream.aclose()
        await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(stdout_reader)
        tg.start_soon(stdin_writer)
        if process.stderr is not None:
            tg.start_soon(log_stderr, process.stderr, label, Rate(caps.max_log_bytes_per_second))
        try:
            yield read_stream, write_stream
        finally:
            with anyio.CancelScope(shield=True):
                await shutdown()
            tg.cancel_scope.cancel()


def parse_message(line: str) -> SessionMessage | Exception:
    """One stdout line as a JSON-RPC message; one that is not, as a value the session reports."""
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:
        logger.warning("MCP server wrote a line that is not a JSON-RPC message: %s", exc)
        return exc


async def drain(stdout: ByteReceiveStream) -> None:
    """What the server still writes, read and dropped until shutdown closes the pipe, so that a
    server flushing its output is not blocked on a full pipe and can exit."""
    with (
        anyio.CancelScope(shield=True),
        contextlib.suppress(anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError, OSError),
    ):
        while True:
            await stdout.receive()


async def stop_server(process: Process) -> None:
    """The MCP spec's shutdown: close its stdin, give it `PROCESS_TERMINATION_TIMEOUT` to exit,
    then end its whole process group (SIGTERM, SIGKILL after `FORCE_KILL_TIMEOUT`)."""
    assert process.stdin is not None and process.stdout is not None
    await _close(process.stdin)
    if not await _exited(process, PROCESS_TERMINATION_TIMEOUT):
        await terminate_posix_process_tree(process, FORCE_KILL_TIMEOUT)
        if not await _exited(process, KILL_REAP_TIMEOUT):
            logger.warning("MCP server process %d is still alive after SIGKILL; leaving it", process.pid)
    # Our ends of its pipes: a child still holding one open must not keep the reader waiting,
    # and once all are closed asyncio closes the process's transport itself.
    await _close(process.stdout)
    if process.stderr is not None:
        await _close(process.stderr)


async def _exited(process: Process, timeout: float) -> bool:
    """Whether the process exited within ``timeout``: its return code, polled (asyncio's wait
    also waits for the pipes to close, which a child that inherited them may never do)."""
    with anyio.move_on_after(timeout):
        while process.returncode is None:
            await anyio.sleep(EXIT_POLL)
    return process.returncode is not None


async def _close(stream: AsyncResource) -> None:
    with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        await stream.aclose()
