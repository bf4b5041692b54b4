"""Writing outputs so that a reader never sees half a file.

Every writer in prosv goes through :func:`atomic_write`: the content is written to a uniquely named
temporary file in the destination folder and renamed over the destination, so an interrupted or
failed write leaves the previous file (or none) in place, and two concurrent writers never share a
temporary name. The final file gets the permissions of an ordinary new file (the umask decides),
not the owner-only mode of a temporary file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)``, then rename the temporary file into ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json(path: str | Path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def write_parquet(path: str | Path, df) -> Path:
    return atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


def write_table(path: str | Path, df) -> Path:
    """A frame as parquet, csv or JSON Lines, by the file's suffix."""
    suffix = Path(path).suffix
    if suffix == ".parquet":
        return write_parquet(path, df)
    if suffix == ".csv":
        return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))
    if suffix in (".jsonl", ".json"):
        return atomic_write(path, lambda tmp: df.to_json(tmp, orient="records", lines=True, force_ascii=False))
    raise ValueError(f"{path}: unknown table format {suffix!r}; use .parquet, .csv or .jsonl")


def file_digests(paths) -> list[str]:
    """The sha256 of each file: what a result was made from, for telling stale work from current."""
    import hashlib

    return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]
