"""PyTorch forward hooks that stream a module's output into saemon rings.

    import saemon_producer
    att = saemon_producer.attach(model, {"blocks.8": "resid8"}, stream=42,
                                 hook_names={"blocks.8": "blocks.8.hook_resid_post"})
    ... model.generate(...) / model(x) ...
    if att.verdict(42) >= saemon_producer.VERDICT_BLOCK: stop the generation
    att.end_stream(42); att.detach()

Token positions: the hook keeps, per stream, the next token position not yet
published. A forward pass whose output covers T positions publishes the new
ones only, so both styles of generation work:
  * incremental decoding (KV cache): each pass outputs the new token(s);
  * full recomputation: each pass outputs the whole prefix, the hook
    publishes just the positions after the last one sent.
`positions="incremental"` or `"full"` forces one interpretation ("auto": a
pass with more positions than were published so far is a full pass).
`position=callable` lets the server say where this forward's rows start
(an int, or a list per batch row): with prefix caching the first position a
forward sees can be > 0; cached positions are never published and the
rules see a gap there.

Failures surface at attach(): the ring's expected hook and width are read
then, and the producer connects (a refused hook or d_in raises RefusedError,
a ring another user owns raises PermissionError). After that the forward hook
never raises: an error is counted, warned about once, and shown by
att.status(); the model keeps running unmonitored for that pass.

backend="auto" (default) publishes through libsaemon-producer (ctypes, the
tensor's memory handed over directly) when it loads, else in pure Python;
"native" or "python" forces one (native.py).
"""
import contextlib
import warnings

from .native import open_producer
from .ring import ring_expectations


def _torch():
    import torch  # optional dependency: imported only when hooks are used
    return torch


class Attachment:
    def __init__(self, model, rings, stream=0, *, hook_names=None, model_id="", dtype="f32",
                 lossless_us=0, positions="auto", checksum="rows", wake=True, d_in=None, position=None,
                 backend="auto"):
        if positions not in ("auto", "incremental", "full"):
            raise ValueError("positions must be 'auto', 'incremental' or 'full'")
        self._torch = _torch()
        self.stream = stream
        self._positions = positions
        self._position = position  # callable: token position of this forward's first row (prefix caching)
        self._dtype = dtype
        torch = self._torch
        self._want = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}.get(dtype)
        if self._want is None:
            raise ValueError("dtype must be 'f32', 'f16' or 'bf16'")
        self._opts = dict(model=model_id or type(model).__name__, dtype=dtype, lossless_us=lossless_us,
                          checksum=checksum, wake=wake, backend=backend)
        self.producers = {}
        self._next = {}  # (module path, stream) -> next token position to publish
        self._handles = []
        self._rings = dict(rings)
        self._hook_names = dict(hook_names or {})
        self._errors = {path: {"count": 0, "last": "", "mismatch": 0} for path in self._rings}
        self._gave_up = {}  # path -> why the producer could not be created in a forward pass
        for path, ring in self._rings.items():
            module = model.get_submodule(path)
            width = d_in
            if width is None:
                # connect now when the ring says what it expects: a wrong hook
                # fails here, not on the model's live traffic
                exp = ring_expectations(ring)
                if exp is not None and exp[0]:
                    width = exp[0]
            if width is not None:
                self._producer(path, int(width))
            self._handles.append(module.register_forward_hook(self._make_hook(path)))

    def _producer(self, path, d_in):
        p = self.producers.get(path)
        if p is None:
            p = open_producer(self._rings[path], hook=self._hook_names.get(path, path), d_in=d_in,
                              handshake_timeout=1.0, **self._opts)
            if not p.connected:
                warnings.warn("saemon ring %r is not served yet: activations are dropped (and counted) "
                              "until `saemon serve` starts" % self._rings[path])
            self.producers[path] = p
        return p

    def _streams(self, batch):
        s = self.stream
        if type(s) is int and batch == 1:
            return (s,)
        if callable(s):
            s = s()
        if isinstance(s, int):
            s = [s]
        s = list(s)
        if len(s) != batch:
            raise ValueError("saemon hook: %d stream ids for a batch of %d" % (len(s), batch))
        return s

    def _as_tensor(self, t):
        """The whole output as one contiguous CPU tensor of the announced dtype."""
        if t.requires_grad:
            t = t.detach()
        if t.dtype != self._want:
            t = t.to(dtype=self._want)
        if not t.is_cpu:
            t = t.to("cpu")
        return t if t.is_contiguous() else t.contiguous()

    def _as_array(self, t):
        """The whole output as one C-contiguous numpy array of the announced
        dtype (2-byte dtypes as int16 bit patterns), converted once per pass."""
        if t.requires_grad:
            t = t.detach()
        if t.dtype != self._want:
            t = t.to(dtype=self._want)
        if not t.is_cpu:
            t = t.to("cpu")
        if self._dtype != "f32":
            t = t.view(self._torch.int16)
        return (t if t.is_contiguous() else t.contiguous()).numpy()

    def _failed(self, path, what):
        e = self._errors[path]
        e["count"] += 1
        e["last"] = what
        if e["count"] == 1:
            warnings.warn("saemon: ring %r is not monitoring this model: %s (counted in att.status(); "
                          "further errors are not warned about)" % (self._rings[path], what))

    def _make_hook(self, path):
        def hook(module, inputs, output):
            # never raise into the model's forward pass
            try:
                self._publish(path, output, self._position() if self._position is not None else None)
            except Exception as exc:  # noqa: BLE001 - counted and shown by status()
                self._failed(path, "%s: %s" % (type(exc).__name__, exc))
        return hook

    def _publish(self, path, output, first_position):
        t = output[0] if isinstance(output, (tuple, list)) else output
        if not self._torch.is_tensor(t):
            return
        if t.dim() == 1:
            t = t.reshape(1, 1, -1)
        elif t.dim() == 2:
            t = t.unsqueeze(0)
        elif t.dim() > 3:
            t = t.reshape(t.shape[0], -1, t.shape[-1])
        batch, n_pos, d = t.shape
        if path in self._gave_up:
            raise RuntimeError(self._gave_up[path])
        try:
            p = self._producer(path, d)
        except Exception as exc:  # refused or not permitted: do not retry on every pass
            self._gave_up[path] = "%s: %s" % (type(exc).__name__, exc)
            raise
        if d != p.d_in:
            self._errors[path]["mismatch"] += 1
            raise ValueError("the module output is %d wide, the ring expects %d" % (d, p.d_in))
        if p.refused:
            raise RuntimeError("saemon refused the producer: %s" % p.refuse_reason)
        if getattr(p, "native", False):
            # libsaemon-producer reads the tensor's memory: no numpy view
            src = self._as_tensor(t)
            base, rb = src.data_ptr(), p.row_bytes

            def pub(stream, first, b, off, n):
                p.publish_ptr(stream, first, base + (b * n_pos + off) * rb, n)
        else:
            arr = self._as_array(t)

            def pub(stream, first, b, off, n):
                p.publish(stream, first, arr[b, off:off + n], n)
        for b, stream in enumerate(self._streams(batch)):
            key = (path, stream)
            nxt = self._next.get(key, 0)
            if first_position is not None:  # the server says where these rows are
                pos = first_position[b] if isinstance(first_position, (list, tuple)) else first_position
                pub(stream, int(pos), b, 0, n_pos)
                self._next[key] = int(pos) + n_pos
                continue
            full = self._positions == "full" or (self._positions == "auto" and n_pos > nxt)
            if full:
                if n_pos <= nxt:
                    continue
                off, n = nxt, n_pos - nxt
            else:
                off, n = 0, n_pos
            pub(stream, nxt, b, off, n)
            self._next[key] = nxt + n

    def new_stream(self, stream):
        """Start a new sequence on `stream` at token 0 and make it the current
        one. If `stream` published anything since its last end, that sequence
        is ended first, so the new one starts with a clean verdict."""
        for path, p in self.producers.items():
            if (path, stream) in self._next:
                p.end_stream(stream, self._next.pop((path, stream)))
        for path in self._rings:
            self._next.pop((path, stream), None)
        self.stream = stream

    @contextlib.contextmanager
    def request(self, stream):
        """`with att.request(rid): ...generate...`: a new sequence on `rid`,
        ended on exit (whatever happens), so a reused id starts clean."""
        self.new_stream(stream)
        try:
            yield self
        finally:
            self.end_stream(stream)

    def status(self):
        """Per ring: connected/refused, errors the hook swallowed (count, last
        message, width mismatches) and the producer's counters."""
        out = {}
        for path, ring in self._rings.items():
            p = self.producers.get(path)
            e = self._errors[path]
            out[ring] = {"connected": bool(p and p.connected), "refused": bool(p and p.refused),
                         "refuse_reason": p.refuse_reason if p else "", "errors": e["count"],
                         "last_error": e["last"], "width_mismatches": e["mismatch"],
                         "stats": dict(p.stats) if p else {}}
        return out

    def end_stream(self, stream=None):
        """Send end-of-stream for `stream` (default: the current one) on every ring."""
        stream = self.stream if stream is None else stream
        for path, p in self.producers.items():
            p.end_stream(stream, self._next.pop((path, stream), 0))

    def verdict(self, stream=None, wait_us=0):
        """Highest severity any attached ring reports for `stream` (0..4).
        wait_us > 0 first waits (at most that long per ring) until saemon has
        evaluated every token published so far: "block before the next
        token". Whether each wait succeeded: verdict_wait()."""
        stream = self.stream if stream is None else stream
        return max((p.verdict(stream, wait_us) for p in self.producers.values()), default=0)

    def verdict_wait(self, stream=None, wait_us=1000):
        """(verdict, fresh): fresh is False if any ring's wait ran out."""
        stream = self.stream if stream is None else stream
        v, fresh = 0, True
        for p in self.producers.values():
            pv, pf = p.verdict_wait(stream, wait_us)
            v, fresh = max(v, pv), fresh and pf
        return v, fresh

    def heartbeat(self):
        for p in self.producers.values():
            p.heartbeat()

    def detach(self):
        for h in self._handles:
            h.remove()
        self._handles = []
        for p in self.producers.values():
            p.close()
        self.producers = {}


def attach(model, rings, stream=0, **kw):
    """Register forward hooks on `model`'s modules (dict: module path -> ring
    name). `stream` is an int, a list (one per batch row) or a callable
    returning either. See Attachment for the options."""
    return Attachment(model, rings, stream, **kw)
