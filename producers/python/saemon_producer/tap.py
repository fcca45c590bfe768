"""A tap module: an nn.Module placed in the model at the hook point, for
engines where forward hooks never fire (TorchScript, torch.compile, CUDA
graphs replay a captured graph and skip Python hooks silently).

    tap = saemon_producer.Tap("villes", hook="core", d_in=128, max_tokens=64)
    model.core = torch.nn.Sequential(model.core, tap)   # output unchanged
    scripted = torch.jit.script(model)    # or torch.jit.trace(model, example)
    ...
    logits = scripted(tokens)             # the graph copies the activations into tap.staging
    tap.publish(stream=request_id)        # the host publishes from the staging buffer
    if tap.verdict(request_id, wait_us=2000) == VERDICT_BLOCK: stop

forward() only does tensor work a graph can hold: it copies its input into a
static staging buffer (a registered buffer on the model's device, so a CUDA
graph captures the copy) and records how many rows it holds. publish() is
called by the host after the forward (or after a graph replay): it copies the
staged rows to the CPU and publishes them. Nothing is published from inside
the graph, so the tap works wherever the graph runs.

Positions: publish(stream, position=p) says the staged rows are tokens p,
p+1, ... (servers with prefix caching know where a forward starts; cached
positions are never published, and the rules see a gap there). Without a
position the tap publishes, per stream, only the positions it has not sent
yet (as the forward hook does: decoding one token per pass and full
recomputation both work).

publish() never raises: errors are counted and shown by status().
"""
import itertools
import warnings

import torch

from .native import open_producer
from .ring import VERDICT_NONE

AUTO_STREAM_BASE = 1 << 48


class Tap(torch.nn.Module):
    def __init__(self, ring, *, hook, d_in, max_tokens=2048, dtype="f32", model_id="", lossless_us=0,
                 device=None, handshake_timeout=1.0, backend="auto", **producer_kw):
        super().__init__()
        want = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}.get(dtype)
        if want is None:
            raise ValueError("dtype must be 'f32', 'f16' or 'bf16'")
        self.d_in, self.max_tokens = int(d_in), int(max_tokens)
        self.register_buffer("staging", torch.zeros(self.max_tokens, self.d_in, dtype=want, device=device),
                             persistent=False)
        self.register_buffer("staged", torch.zeros(1, dtype=torch.int64, device=device), persistent=False)
        # the producer connects now: a refused hook or d_in fails here, not on live traffic
        self._errors, self._last_error = 0, ""
        self._producer = open_producer(ring, backend=backend, hook=hook, d_in=self.d_in, dtype=dtype,
                                       model=model_id, lossless_us=lossless_us,
                                       handshake_timeout=handshake_timeout,
                                       on_refused=producer_kw.pop("on_refused", self._failed), **producer_kw)
        self._native = getattr(self._producer, "native", False)
        # the C call without per-call Python checks (not in lossless mode, which serialises in Python)
        self._c_publish = (self._producer._pub, self._producer._p) if self._native and \
            self._producer._lock is None else None
        self._staged_seen = None  # the `staged` tensor the numpy view below belongs to
        self._staged_np = None    # CPU only: reads/zeroes the count without a torch op
        self._row_bytes = self._producer.row_bytes
        self._dtype = dtype
        self._next = {}
        self._rid_stream = {}
        self._auto = itertools.count(AUTO_STREAM_BASE)

    def forward(self, x):
        flat = x.reshape(-1, x.shape[-1])
        n = flat.shape[0]
        if n > self.max_tokens:  # keep the newest rows (the ones not published yet)
            flat = flat[n - self.max_tokens:]
            n = self.max_tokens
        self.staging[:n].copy_(flat.detach())
        self.staged.fill_(n)
        return x

    # -- host side ---------------------------------------------------------
    def _failed(self, what):
        self._errors += 1
        self._last_error = what
        if self._errors == 1:
            warnings.warn("saemon tap on ring %r: %s (counted in tap.status(); not warned again)"
                          % (self._producer.ring, what))

    def publish(self, stream=0, position=None):
        """Publish the rows the last forward staged as tokens of `stream` (an
        int, or a request id given to new_stream) from `position` if given.
        Returns the number of rows published."""
        try:
            if type(stream) is str:
                stream = self._rid_stream[stream]
            staged = self.staged
            if staged is not self._staged_seen:  # first call, or the module moved (.to())
                self._staged_seen = staged
                self._staged_np = staged.numpy() if staged.is_cpu else None
            cnt = self._staged_np
            n = int(cnt[0]) if cnt is not None else int(staged.item())
            if n <= 0:
                return 0
            if position is not None:
                first, off = int(position), 0
            else:
                nxt = self._next.get(stream, 0)
                # a full pass over the prefix: the new positions only; an
                # incremental pass: the rows follow what was sent
                first, off = (nxt, nxt) if n > nxt else (nxt, 0)
            count = n - off
            if count > 0:
                rows = self.staging
                if not rows.is_cpu:
                    rows = rows[:n].to("cpu")
                if self._c_publish is not None:  # the staging buffer is contiguous: its memory to the C library
                    fn, handle = self._c_publish
                    if fn(handle, stream, first, rows.data_ptr() + off * self._row_bytes, count) < 0:
                        raise ValueError("publish: invalid argument (stream %r)" % (stream,))
                elif self._native:
                    self._producer.publish_ptr(stream, first, rows.data_ptr() + off * self._row_bytes, count)
                else:
                    rows = rows[off:n]
                    if self._dtype != "f32":
                        rows = rows.view(torch.int16)
                    self._producer.publish(stream, first, rows.numpy(), count)
            self._next[stream] = first + max(count, 0)
            if cnt is not None:
                cnt[0] = 0
            else:
                staged.zero_()
            return max(count, 0)
        except Exception as exc:  # noqa: BLE001 - never into the serving loop
            self._failed("%s: %s" % (type(exc).__name__, exc))
            return 0

    def new_stream(self, stream=None, request_id=None):
        """A new sequence on `stream` (ends the previous one if it sent rows),
        tagged with the engine's request id if given (a stream is picked when
        none is given; publish/verdict/end_stream then accept the id).
        Returns the stream."""
        if stream is None:
            if request_id is None:
                raise ValueError("new_stream needs a stream or a request_id")
            stream = next(self._auto)
        if stream in self._next:
            self.end_stream(stream)
        if request_id is not None:
            self._rid_stream[request_id] = stream
            try:
                self._producer.begin_request(stream, request_id)
            except ValueError:
                raise
            except Exception as exc:  # noqa: BLE001
                self._failed("%s: %s" % (type(exc).__name__, exc))
        return stream

    def end_stream(self, stream):
        try:
            if type(stream) is str:
                stream = self._rid_stream.pop(stream)
            self._producer.end_stream(stream, self._next.pop(stream, 0))
        except Exception as exc:  # noqa: BLE001
            self._failed("%s: %s" % (type(exc).__name__, exc))

    def verdict(self, stream, wait_us=0):
        """Verdict of `stream` (an int or a request id given to new_stream)."""
        try:
            if type(stream) is str:
                stream = self._rid_stream.get(stream)
                if stream is None:
                    return VERDICT_NONE
            return self._producer.verdict(stream, wait_us)
        except Exception as exc:  # noqa: BLE001
            self._failed("%s: %s" % (type(exc).__name__, exc))
            return VERDICT_NONE

    def status(self):
        p = self._producer
        return {"connected": p.connected, "refused": p.refused, "errors": self._errors,
                "last_error": self._last_error, "stats": dict(p.stats)}

    def close(self):
        self._c_publish = None  # the handle dies with the producer
        self._producer.close()
