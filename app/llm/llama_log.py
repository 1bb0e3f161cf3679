"""llama.cpp's own log, forwarded to Python logging (its info as debug, its warnings as info,
its errors as warnings), with the recent lines kept: a load's error message and the buffer
sizes llama.cpp reports are read from them."""

from __future__ import annotations

import collections
import ctypes
import logging
import re
from collections.abc import Sequence
from typing import Any

llama_log = logging.getLogger("llama_cpp")


# (sequence number, ggml level, text) of llama.cpp's recent log lines.
_LOG_LINES: collections.deque[tuple[int, int, str]] = collections.deque(maxlen=2000)
_log_callback: Any = None
_log_partial = ""
_log_count = 0
# ggml levels: 1 debug, 2 info, 3 warn, 4 error, 5 continues the previous line. llama.cpp is
# chatty: its info lines are debug here, its warnings info, its errors warnings.
GGML_WARN, GGML_ERROR = 3, 4
_LEVEL = {GGML_WARN: logging.INFO, GGML_ERROR: logging.WARNING}
# What llama.cpp logs as errors when the abort callback stopped a decode: expected on cancel.
_ABORT_NOISE = re.compile(r"failed with error 1|compute status: 1|failed to decode, ret = 2")


def install_log_capture() -> None:
    """Route llama.cpp's log into Python logging (once per process)."""
    global _log_callback
    if _log_callback is not None:
        return
    import llama_cpp

    @llama_cpp.llama_log_callback
    def on_log(level: int, text: bytes, _data: Any) -> None:
        global _log_partial, _log_count
        message = _log_partial + text.decode("utf-8", errors="replace")
        if not message.endswith("\n"):
            _log_partial = message
            return
        _log_partial = ""
        for line in message.splitlines():
            if line.strip():
                _log_count += 1
                _LOG_LINES.append((_log_count, level, line))
                quiet = _ABORT_NOISE.search(line) is not None
                llama_log.log(
                    logging.DEBUG if quiet else _LEVEL.get(level, logging.DEBUG), "%s", line
                )

    llama_cpp.llama_log_set(on_log, ctypes.c_void_p(0))
    _log_callback = on_log


_BUFFER_LINE = re.compile(r"(\S+)\s+(model|KV|compute) buffer size =\s+([\d.]+) MiB")
_OFFLOADED = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")


def buffers_from_log(lines: Sequence[str]) -> tuple[dict[str, float], int | None]:
    buffers: dict[str, float] = {}
    offloaded: int | None = None
    for line in lines:
        match = _BUFFER_LINE.search(line)
        if match:
            key = f"{match[1]} {match[2]}"
            buffers[key] = buffers.get(key, 0.0) + float(match[3])
        found = _OFFLOADED.search(line)
        if found:
            offloaded = int(found[1])
    return buffers, offloaded


_OVERRIDDEN = re.compile(r"tensor (\S+) \(.*?\) buffer type overridden to (\S+)")


def overridden_from_log(lines: Sequence[str]) -> dict[str, str]:
    """Tensor name -> buffer type, for each tensor llama.cpp says an override moved."""
    found: dict[str, str] = {}
    for line in lines:
        match = _OVERRIDDEN.search(line)
        if match:
            found[match[1]] = match[2]
    return found


def log_mark() -> int:
    """The sequence number of the latest line: `log_since(log_mark())` reads what comes next."""
    return _log_count


def log_since(mark: int, levels: Sequence[int] = ()) -> list[str]:
    return [
        text
        for seq, level, text in list(_LOG_LINES)
        if seq > mark and (not levels or level in levels)
    ]


def error_from_log(mark: int) -> str:
    errors = log_since(mark, (GGML_ERROR,)) or log_since(mark, (GGML_WARN,))
    return errors[-1].split(": ", 1)[-1].strip() if errors else ""
