"""What ``self.invoke_async`` and the patterns hand to the worker's async queue (zato.server.async_queue)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zato.config.channel import CHANNEL


@dataclass
class Job:
    """One invocation to queue."""
    service: str
    payload: Any = None
    cid: str = ''
    channel: str = CHANNEL.INVOKE_ASYNC
    data_format: str = ''
    transport: str = ''
    callback: str = ''
    zato_ctx: dict[str, Any] = field(default_factory=dict)
    environ: dict[str, Any] = field(default_factory=dict)
    expiration: float = 0.0
    group_cid: str | None = None
    group_index: int = 0
