"""What the `prosv serve` tests share: a vector folder made by hand and a real server on loopback.

The server is the command line itself (`python -m prosv.cli serve`) in a subprocess on a free port,
fp32 (PROSV_CPU_DTYPE) like the references the tests compute in their own process; it is stopped
at the end. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import torch

from prosv.interventions import LayeredSteering, SteeringVectors
from prosv.vectors import save_vectors

START_TIMEOUT_S = 180

# name: (layer, positions, seed, concepts); eight servable files (one of them holds two concepts)
VECTORS = {
    "prosv_a": (1, "p2+s2", 1, 1),
    "prosv_b": (1, "p2+s2", 2, 1),
    "prompt_c": (1, "prompt", 3, 1),
    "fssv_d": (2, "all", 4, 1),
    "fssv_e": (2, "all", 5, 1),
    "late_f": (3, "p4+s4", 6, 1),
    "s2_g": (0, "s2", 7, 1),
    "pair": (2, "p2+s2", 8, 2),
    "layered_h": ((0, 2), "p2+s2", 9, 1),  # one vector per layer (LayeredSteering)
}


def make_vector_folder(folder: Path, model_dir: Path, hidden: int = 64, layers: int = 4) -> Path:
    """The servable files of VECTORS, plus two the server must refuse (another model, another width)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (layer, positions, seed, k) in VECTORS.items():
        if isinstance(layer, tuple):
            module = LayeredSteering.initialise(layer, k, hidden, c_alpha=2.0, c_v=8.0, seed=seed)
        else:
            module = SteeringVectors.initialise(k, hidden, c_alpha=4.0, c_v=8.0, seed=seed)
        if k > 1:  # distinct concepts: scale each one's direction differently
            module = SteeringVectors(
                module.state_tensors()["alpha"], module.state_tensors()["v"] * torch.arange(1, k + 1)[:, None]
            )
        common = dict(loss="lang", hyperparameters={"seed": seed}, hidden_size=hidden, num_layers=layers)
        save_vectors(folder / f"{name}.safetensors", module, model=str(model_dir), layer=layer, positions=positions,
                     method=f"test_{positions}", concepts=[f"c{i}" for i in range(k)], **common)  # fmt: skip
    other = SteeringVectors.initialise(1, hidden, c_alpha=4.0, c_v=8.0)
    save_vectors(folder / "other_model.safetensors", other, model="someone/else-1b", layer=1, positions="p2+s2",
                 loss="lang", hyperparameters={}, hidden_size=hidden, num_layers=layers)  # fmt: skip
    wide = SteeringVectors.initialise(1, 2 * hidden, c_alpha=4.0, c_v=8.0)
    save_vectors(folder / "too_wide.safetensors", wide, model=str(model_dir), layer=1, positions="p2+s2",
                 loss="lang", hyperparameters={}, hidden_size=2 * hidden, num_layers=layers)  # fmt: skip
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 60):
    """(status, parsed JSON) of a GET (no body) or POST; error statuses are returned, not raised."""
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@contextmanager
def running_server(model_dir: Path, vectors: Path, log_path: Path, env: dict | None = None, args=()):
    """Yield the base URL of `prosv serve` on a free loopback port; stop it on exit."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if k != "PROSV_API_KEY"}
    environ.update({"PROSV_CPU_DTYPE": "float32", **(env or {})})
    cmd = [sys.executable, "-m", "prosv.cli", "--threads", str(torch.get_num_threads()), "serve"]
    cmd += ["--model", str(model_dir), "--vectors", str(vectors), "--port", str(port), *args]
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=environ)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prosv serve exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                if http(url + "/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"prosv serve did not answer in {START_TIMEOUT_S} s:\n{log_path.read_text()[-4000:]}"
                )
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
