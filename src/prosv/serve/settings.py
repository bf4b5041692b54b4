"""What a server is started with, and every default of `prosv serve` in one place.

Imports nothing beyond the standard library, so the command line can show these defaults without
the optional web stack installed.
"""

from __future__ import annotations

from dataclasses import dataclass

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ServeSettings:
    host: str = LOOPBACK  # loopback unless told otherwise: the server has no key unless one is set
    port: int = 8000
    max_batch: int = 32  # rows decoded together; further requests wait for a free row
    max_waiting: int = 256  # requests queued beyond the batch; more get 503 (the server is full)
    max_tokens_limit: int = 1024  # the largest max_tokens a request may ask for
    api_key_env: str = "PROSV_API_KEY"  # when this variable is set, requests need it as a bearer token

    def __post_init__(self):
        for name in ("max_batch", "max_tokens_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_waiting < 0:
            raise ValueError(f"max_waiting must be at least 0, got {self.max_waiting}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
