"""Continuous batching: one thread decodes every active request together, each with its own vector.

At each step the engine admits the requests that arrived (up to `max_batch` rows), runs their
prefill as one left-padded forward call, joins their KV cache rows to the running batch, then runs
one decode step for every active row; a row leaves as soon as it finishes. Per row this is exactly
`prosv.generation.generate`: prompt-only vectors (PrOSV) steer the prefill call only, FSSV rows
every step, each row samples from its own seeded generator.

Steering uses the library's hook (`prosv.interventions.attached`), one per layer that has vectors,
holding the stacked vectors of that layer: a row's index picks its vector (-1: none), so a batch
mixes vectors, and vectors at different layers, freely. The hook's factor is a per-row tensor
(each request brings its own factor); `SteeringVectors.edit` broadcasts it row by row.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

import torch

from ..generation import eos_ids, last_logits
from ..interventions import attached
from ..padding import left_pad, padding_id
from ..positions import left_padded_mask
from .decoding import TextStream, next_token, row_generator
from .kv import KVRows, check_model
from .registry import ServedVector, VectorRegistry

log = logging.getLogger(__name__)


class ServerBusy(RuntimeError):
    pass


@dataclass(frozen=True)
class Event:
    """What the engine tells a request: new text, then one final event (done or error)."""

    kind: str  # "text", "done", "error"
    text: str = ""
    finish_reason: str | None = None
    completion_tokens: int = 0


@dataclass
class Job:
    """One request as the engine sees it. `emit` must be safe to call from the engine thread."""

    prompt_ids: list[int]
    max_tokens: int
    emit: Callable[[Event], None]
    vector: ServedVector | None = None
    factor: float = 1.0
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop: list[str] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)


class _Row:
    def __init__(self, job: Job, tokenizer, device: torch.device):
        self.job = job
        self.tokens: list[int] = []
        self.text = TextStream(tokenizer, job.stop)
        self.generator = row_generator(job.seed, job.temperature, device)
        self.finish: str | None = None


class Engine:
    def __init__(self, model, tokenizer, registry: VectorRegistry, max_batch: int = 32, max_waiting: int = 256):
        check_model(model)
        self.model, self.tokenizer, self.registry = model, tokenizer, registry
        self.max_batch = max_batch
        self.device = next(model.parameters()).device
        self.pad_id = padding_id(tokenizer)
        self.eos = eos_ids(model, tokenizer)
        self.threads = torch.get_num_threads()
        self._arrivals: queue.Queue[Job] = queue.Queue(maxsize=max_waiting)
        self._rows: list[_Row] = []
        self._kv = KVRows()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.hooks: dict[int, object] = {}
        self.steps = 0  # decode steps run
        self.prefills = 0  # prefill calls run
        self.rows_per_step: deque[int] = deque(maxlen=10_000)  # active rows of each recent decode step

    # --- the caller's side ---------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        if self._thread is None or not self._thread.is_alive():
            raise RuntimeError("the engine is not running")
        try:
            self._arrivals.put_nowait(job)
        except queue.Full:
            full = f"the server is full: {self.max_batch} rows decoding and {self._arrivals.maxsize} waiting"
            raise ServerBusy(full) from None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="prosv-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    @property
    def active(self) -> int:
        return len(self._rows)

    @property
    def waiting(self) -> int:
        return self._arrivals.qsize()

    # --- the engine thread ---------------------------------------------------------------------

    def _run(self) -> None:
        torch.set_num_threads(self.threads)  # the setting is per thread; keep the caller's
        with torch.no_grad(), ExitStack() as stack:
            self.hooks = {
                layer: stack.enter_context(attached(self.model, layer, module))
                for layer, module in self.registry.modules.items()
            }
            while not self._stop.is_set():
                try:
                    self._step()
                except Exception as err:  # a failed forward call fails its rows, not the server
                    log.exception("engine step failed")
                    self._fail_all(f"the server failed while decoding: {type(err).__name__}: {err}")
            self._fail_all("the server is shutting down")

    def _step(self) -> None:
        new = self._admit(block=not self._rows)
        if new:
            self._prefill(new)
        if self._rows:
            self._decode()

    def _admit(self, block: bool) -> list[_Row]:
        jobs: list[Job] = []
        if block:
            try:
                jobs.append(self._arrivals.get(timeout=0.2))
            except queue.Empty:
                return []
        while len(self._rows) + len(jobs) < self.max_batch:
            try:
                jobs.append(self._arrivals.get_nowait())
            except queue.Empty:
                break
        return [_Row(job, self.tokenizer, self.device) for job in jobs if not job.cancelled.is_set()]

    def _set_hooks(self, rows: list[_Row], masks: Callable[[int, ServedVector], torch.Tensor], width: int) -> None:
        """Point each layer's hook at its rows: row i's mask is masks(i, vector) for rows steered there."""
        factors = torch.tensor([r.job.factor for r in rows], dtype=torch.float32, device=self.device)
        for layer, hook in self.hooks.items():
            here = {i for i, r in enumerate(rows) if r.job.vector is not None and r.job.vector.layer == layer}
            mask = torch.zeros((len(rows), width), dtype=torch.bool, device=self.device)
            for i in here:
                mask[i] = masks(i, rows[i].job.vector)
            hook.rows = torch.tensor(
                [rows[i].job.vector.row if i in here else -1 for i in range(len(rows))], device=self.device
            )
            hook.factor = factors
            hook.mask = mask if bool(mask.any()) else None  # None: this call passes the layer untouched

    def _prefill(self, rows: list[_Row]) -> None:
        first = len(self._rows)
        self._rows += rows  # from here on a failure is reported to them too
        ids, attn = left_pad([r.job.prompt_ids for r in rows], self.pad_id, self.device)
        position_ids = (attn.cumsum(-1) - 1).clamp(min=0)
        self._set_hooks(rows, lambda i, vec: left_padded_mask(vec.spec, attn[i : i + 1])[0], ids.shape[1])
        out = self.model(
            input_ids=ids, attention_mask=attn, position_ids=position_ids, use_cache=True, **last_logits(self.model)
        )
        self.prefills += 1
        self._kv.join(out.cache, attn, position_ids[:, -1:] + 1)
        self._take(out.logits[:, -1, :], first)

    def _decode(self) -> None:
        rows = self._rows
        last = torch.tensor([[r.tokens[-1]] for r in rows], dtype=torch.long, device=self.device)
        attn, positions = self._kv.advance()
        self._set_hooks(rows, lambda i, vec: torch.tensor([vec.spec.generation]), 1)
        out = self.model(
            input_ids=last, attention_mask=attn, position_ids=positions, cache=self._kv.cache, use_cache=True
        )
        self._kv.cache = out.cache
        self.steps += 1
        self.rows_per_step.append(len(rows))
        self._take(out.logits[:, -1, :], 0)

    def _take(self, logits: torch.Tensor, first: int) -> None:
        """Rows first.. get their next token from `logits`; finished and cancelled rows leave."""
        for i, row in enumerate(self._rows[first:]):
            job = row.job
            if row.finish is None:
                token = next_token(logits[i], job.temperature, job.top_p, row.generator)
                row.tokens.append(token)
                row.text.update(row.tokens)
                if row.text.stopped or token in self.eos:
                    row.finish = "stop"
                elif len(row.tokens) >= job.max_tokens:
                    row.finish = "length"
                delta = row.text.delta(final=row.finish is not None)
                if delta:
                    job.emit(Event("text", delta))
                if row.finish is not None:
                    job.emit(Event("done", finish_reason=row.finish, completion_tokens=len(row.tokens)))
        keep = [i for i, r in enumerate(self._rows) if r.finish is None and not r.job.cancelled.is_set()]
        self._rows = [self._rows[i] for i in keep]
        self._kv.keep(keep)

    def _fail_all(self, message: str) -> None:
        for row in self._rows:
            if row.finish is None:
                row.job.emit(Event("error", message))
        self._rows = []
        self._kv = KVRows()
        while True:
            try:
                self._arrivals.get_nowait().emit(Event("error", message))
            except queue.Empty:
                break
