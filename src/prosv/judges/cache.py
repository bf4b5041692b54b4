"""The judge cache: every call's output stored on disk, so a re-run costs no calls and a killed run resumes."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any


def _cache_root() -> Path:
    from ..models import cache_root

    return cache_root()


def default_cache_path() -> Path:
    """Where judge calls are cached unless a config says otherwise (``PROSV_JUDGE_CACHE``)."""
    return Path(os.environ.get("PROSV_JUDGE_CACHE", _cache_root() / "judge-cache.sqlite"))


class JudgeCache:
    """A small sqlite store of judge outputs keyed by ``sha256(judge_id, prompt)``.

    Safe for threads (one connection per thread) and for several processes (sqlite locking, WAL
    journal, a generous busy timeout). Values are JSON.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._lock = threading.Lock()
        con = self._con()
        with con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS judge_cache (key TEXT PRIMARY KEY, judge_id TEXT NOT NULL,"
                " value TEXT NOT NULL, created REAL NOT NULL)"
            )

    @staticmethod
    def key(judge_id: str, prompt: str) -> str:
        return hashlib.sha256(f"{judge_id}\x00{prompt}".encode()).hexdigest()

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            try:
                wal = con.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() == "wal"
            except sqlite3.OperationalError:  # e.g. a file system without shared memory
                wal = False
            if wal:
                # no fsync per answer stored (with it, concurrent judging stalled at a few hundred
                # answers/s): a killed process still loses nothing it committed and the file stays
                # whole; only a power cut can drop the last few answers, which are asked again
                con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA busy_timeout=60000")
            self._local.con = con
            with self._lock:
                # every rate_many runs in fresh worker threads: without closing the connections of
                # the finished ones, a long-lived process runs out of file handles
                alive = []
                for thread, other in self._connections:
                    if thread.is_alive():
                        alive.append((thread, other))
                    else:
                        other.close()
                self._connections = [*alive, (threading.current_thread(), con)]
        return con

    def get(self, key: str) -> Any | None:
        row = self._con().execute("SELECT value FROM judge_cache WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, judge_id: str, value: Any) -> None:
        con = self._con()
        con.execute(
            "INSERT OR REPLACE INTO judge_cache (key, judge_id, value, created) VALUES (?, ?, ?, ?)",
            (key, judge_id, json.dumps(value, ensure_ascii=False), time.time()),
        )

    def __len__(self) -> int:
        return self._con().execute("SELECT COUNT(*) FROM judge_cache").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            for _, con in self._connections:
                try:
                    con.close()
                except sqlite3.ProgrammingError:  # closed from another thread's point of view
                    pass
            self._connections.clear()
        self._local = threading.local()


def open_cache(cache: JudgeCache | str | Path | bool | None) -> JudgeCache | None:
    if cache is None or cache is True:
        return JudgeCache(default_cache_path())
    if cache is False:
        return None
    if isinstance(cache, JudgeCache):
        return cache
    return JudgeCache(cache)


def prompt_hash_text(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
