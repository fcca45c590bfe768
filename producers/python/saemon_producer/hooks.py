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
import itertools
import threading
import warnings
import weakref

from .native import open_producer
from .ring import RefusedError, request_id_bytes, ring_expectations

AUTO_STREAM_BASE = 1 << 48  # streams new_stream(request_id=...) picks itself start here


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
        self._make_lock = threading.Lock()
        self._fast = {}  # path -> (publish fn, C handle or None, row_bytes, d_in)
        self._stop = threading.Event()
        self._rid_stream = {}  # request id -> stream (new_stream(request_id=...))
        self._stream_rid = {}  # stream -> request id
        self._auto = itertools.count(AUTO_STREAM_BASE)
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
            elif ring_expectations(ring) is None:
                # not served yet: connect as soon as it is, so a wrong hook is
                # known (warned once, att.status()) before the first forward
                threading.Thread(target=_await_ring, args=(weakref.ref(self), path, self._stop),
                                 name="saemon-await-%s" % ring, daemon=True).start()
            self._handles.append(module.register_forward_hook(self._make_hook(path)))

    def _producer(self, path, d_in):
        p = self.producers.get(path)
        if p is not None:
            return p
        with self._make_lock:
            p = self.producers.get(path)
            if p is None:
                p = open_producer(self._rings[path], hook=self._hook_names.get(path, path), d_in=d_in,
                                  handshake_timeout=1.0, on_refused=lambda why, path=path: self._failed(path, why),
                                  **self._opts)
                if not p.connected and not p.refused:
                    warnings.warn("saemon ring %r is not served yet: activations are dropped (and counted) "
                                  "until `saemon serve` starts" % self._rings[path])
                for stream, rid in self._stream_rid.items():  # requests begun before it existed
                    p.begin_request(stream, rid)
                self._set_fast(path, p)
                self.producers[path] = p
        return p

    def _streams(self, batch):
        s = self.stream
        if type(s) is int and batch == 1:
            return (s,)
        if callable(s):
            s = s()
        if isinstance(s, (int, str)):
            s = [s]
        s = [self._stream_for(x) if isinstance(x, str) else x for x in s]
        if len(s) != batch:
            raise ValueError("saemon hook: %d stream ids for a batch of %d" % (len(s), batch))
        return s

    def _stream_for(self, request_id):
        """The stream of a request id (the `stream` option may give request
        ids): a new one, tagged with the id, the first time it is seen."""
        stream = self._rid_stream.get(request_id)
        if stream is None:
            stream = next(self._auto)
            self._tag(stream, request_id)
        return stream

    def _tag(self, stream, request_id):
        request_id_bytes(request_id)  # ValueError now, not in a later forward
        old = self._stream_rid.pop(stream, None)
        if old is not None:
            self._rid_stream.pop(old, None)
        prev = self._rid_stream.pop(request_id, None)
        if prev is not None:
            self._stream_rid.pop(prev, None)
        self._rid_stream[request_id] = stream
        self._stream_rid[stream] = request_id
        for path, p in list(self.producers.items()):
            try:
                p.begin_request(stream, request_id)
            except ValueError:
                raise
            except Exception as exc:  # noqa: BLE001 - counted, never into the caller's loop
                self._failed(path, "%s: %s" % (type(exc).__name__, exc))

    def stream_of(self, request_id):
        """The stream of a request id given to new_stream/request (not yet ended), or None."""
        return self._rid_stream.get(request_id)

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
        Tensor = self._torch.Tensor
        want = self._want
        nxt_of = self._next
        key_of = {}  # stream -> (path, stream): no tuple built per token

        def hook(module, inputs, output):
            # never raise into the model's forward pass
            try:
                # Fast path (per token, decode style): one CPU tensor [1, T, d_in]
                # of the announced dtype, contiguous, an int stream, no explicit
                # position: its memory goes straight to libsaemon-producer (or one
                # numpy view to the pure-Python producer). Everything else: _publish.
                fast = self._fast.get(path)
                stream = self.stream
                if (fast is not None and type(output) is Tensor and type(stream) is int
                        and self._position is None and output.dtype is want):
                    shape = output.shape
                    if len(shape) == 3 and shape[0] == 1 and shape[2] == fast[3] and output.is_cpu \
                            and output.is_contiguous():
                        key = key_of.get(stream)
                        if key is None:
                            if len(key_of) > 4096:
                                key_of.clear()
                            key = key_of[stream] = (path, stream)
                        n_pos = shape[1]
                        nxt = nxt_of.get(key, 0)
                        mode = self._positions
                        if mode == "full" or (mode == "auto" and n_pos > nxt):
                            if n_pos <= nxt:
                                return
                            off, n = nxt, n_pos - nxt
                        else:
                            off, n = 0, n_pos
                        fn, handle, rb = fast[0], fast[1], fast[2]
                        if handle is not None:
                            rc = fn(handle, stream, nxt, output.data_ptr() + off * rb, n)
                            if rc < 0:
                                raise ValueError("publish: invalid argument (stream %r)" % stream)
                        else:
                            arr = (output.detach() if output.requires_grad else output).numpy()[0]
                            fn(stream, nxt, arr[off:] if off else arr, n)
                        nxt_of[key] = nxt + n
                        return
                self._publish(path, output, self._position() if self._position is not None else None)
            except Exception as exc:  # noqa: BLE001 - counted and shown by status()
                self._failed(path, "%s: %s" % (type(exc).__name__, exc))
        return hook

    def _set_fast(self, path, p):
        """The hook's fast path for this producer: the C call and handle (the
        ctypes path without lossless mode), or the pure-Python publish (f32)."""
        if getattr(p, "native", False):
            if p._lock is None:
                self._fast[path] = (p._pub, p._p, p.row_bytes, p.d_in)
        elif self._dtype == "f32":
            self._fast[path] = (p.publish, None, p.row_bytes, p.d_in)

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

    def new_stream(self, stream=None, request_id=None):
        """Start a new sequence on `stream` at token 0 and make it the current
        one. If `stream` published anything since its last end, that sequence
        is ended first, so the new one starts with a clean verdict.
        request_id (the engine's id, e.g. vLLM "cmpl-...", SGLang rid): saemon
        puts it in every alert of the sequence, and verdict(request_id=...)
        answers by it; without `stream`, a fresh stream id is picked.
        Returns the stream."""
        if stream is None:
            if request_id is None:
                raise ValueError("new_stream needs a stream or a request_id")
            stream = next(self._auto)
        for path, p in self.producers.items():
            if (path, stream) in self._next:
                p.end_stream(stream, self._next.pop((path, stream)))
        for path in self._rings:
            self._next.pop((path, stream), None)
        old = self._stream_rid.pop(stream, None)
        if old is not None:
            self._rid_stream.pop(old, None)
        if request_id is not None:
            self._tag(stream, request_id)
        self.stream = stream
        return stream

    @contextlib.contextmanager
    def request(self, stream=None, request_id=None):
        """`with att.request(rid): ...generate...`: a new sequence on `rid`,
        ended on exit (whatever happens), so a reused id starts clean.
        `with att.request(request_id="cmpl-..."):` tags it with the engine's
        request id (a stream is picked when none is given)."""
        stream = self.new_stream(stream, request_id)
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

    def _resolve(self, stream, request_id):
        if request_id is not None:
            return self._rid_stream.get(request_id)
        return self.stream if stream is None else stream

    def end_stream(self, stream=None, request_id=None):
        """Send end-of-stream for `stream` (or the stream of `request_id`;
        default: the current one) on every ring."""
        stream = self._resolve(stream, request_id)
        if stream is None or isinstance(stream, str) or callable(stream):
            return
        for path, p in self.producers.items():
            p.end_stream(stream, self._next.pop((path, stream), 0))
        rid = self._stream_rid.pop(stream, None)
        if rid is not None:
            self._rid_stream.pop(rid, None)

    def verdict(self, stream=None, wait_us=0, request_id=None):
        """Highest severity any attached ring reports for `stream` (or the
        stream of `request_id`; 0 for an unknown id) (0..4).
        wait_us > 0 first waits (at most that long per ring) until saemon has
        evaluated every token published so far: "block before the next
        token". Whether each wait succeeded: verdict_wait()."""
        stream = self._resolve(stream, request_id)
        if stream is None:
            return 0
        return max((p.verdict(stream, wait_us) for p in self.producers.values()), default=0)

    def verdict_wait(self, stream=None, wait_us=1000, request_id=None):
        """(verdict, fresh): fresh is False if any ring's wait ran out (or the
        request id is unknown)."""
        stream = self._resolve(stream, request_id)
        if stream is None:
            return 0, False
        v, fresh = 0, True
        for p in self.producers.values():
            pv, pf = p.verdict_wait(stream, wait_us)
            v, fresh = max(v, pv), fresh and pf
        return v, fresh

    def heartbeat(self):
        for p in self.producers.values():
            p.heartbeat()

    def detach(self):
        self._stop.set()
        for h in self._handles:
            h.remove()
        self._handles = []
        self._fast = {}
        for p in self.producers.values():
            p.close()
        self.producers = {}


def _await_ring(ref, path, stop):
    """Until the attachment goes: wait for its ring to be served, then connect
    (with the width the ring expects), so a wrong hook is judged before the
    model's first forward."""
    while not stop.wait(0.1):
        att = ref()
        if att is None or path in att.producers:
            return
        try:
            exp = ring_expectations(att._rings[path])
            if exp is not None:
                if exp[0]:
                    att._producer(path, exp[0])
                return
        except (RefusedError, PermissionError) as exc:
            att._gave_up[path] = "%s: %s" % (type(exc).__name__, exc)
            att._failed(path, att._gave_up[path])
            return
        except Exception as exc:  # noqa: BLE001 - counted, the next forward retries
            att._failed(path, "%s: %s" % (type(exc).__name__, exc))
            return
        finally:
            del att


def attach(model, rings, stream=0, **kw):
    """Register forward hooks on `model`'s modules (dict: module path -> ring
    name). `stream` is an int, a list (one per batch row) or a callable
    returning either. See Attachment for the options."""
    return Attachment(model, rings, stream, **kw)
