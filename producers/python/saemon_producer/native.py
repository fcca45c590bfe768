"""ctypes path into libsaemon-producer (the C producer), with the pure-Python
Producer as the fallback.

    p = saemon_producer.open_producer("resid8", hook=..., d_in=2304)   # native if it loads
    p.native            # True: frames are written by libsaemon-producer

The C library writes the frame (hardware CRC-32C, one memcpy) for ~1-2 us at
d_in 2304; a ctypes call adds ~0.5 us. The pure-Python path costs 4-5 us.
The library is looked up as $SAEMON_PRODUCER_LIB (a path), then
libsaemon-producer.so.0 on the loader's path (`meson install`). When it is
absent, open_producer(backend="auto") returns the pure-Python Producer;
native_error() says why. Both write the same wire format (docs/ring.md).

Calls that never wait (publish without lossless mode, verdict, heartbeat)
keep the GIL (ctypes.PyDLL: no release/re-acquire per token); attach/detach
and lossless publishes release it (ctypes.CDLL).
"""
import ctypes
import os
import threading
import warnings
import weakref

from .ring import (DTYPES, STREAM_LIMIT, BusyError, Producer, RefusedError, check_options, request_id_bytes)

_OK, _DROPPED, _EINVAL, _EREFUSED, _ESYS, _EBUSY, _ETIMEDOUT = 0, 1, -1, -2, -3, -4, -5


_REFUSED_FN = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_void_p)


class _Options(ctypes.Structure):
    _fields_ = [("ring", ctypes.c_char_p), ("model", ctypes.c_char_p), ("hook", ctypes.c_char_p),
                ("d_in", ctypes.c_uint32), ("dtype", ctypes.c_int), ("lossless_wait_us", ctypes.c_uint32),
                ("handshake_timeout_ms", ctypes.c_int), ("heartbeat_ms", ctypes.c_int),
                ("on_refused", _REFUSED_FN), ("on_refused_user", ctypes.c_void_p)]


class _Stats(ctypes.Structure):
    _fields_ = [("frames_published", ctypes.c_uint64), ("tokens_published", ctypes.c_uint64),
                ("frames_dropped", ctypes.c_uint64), ("tokens_dropped", ctypes.c_uint64),
                ("reattaches", ctypes.c_uint64), ("eos_pending", ctypes.c_uint64), ("eos_lost", ctypes.c_uint64),
                ("verdict_timeouts", ctypes.c_uint64), ("tokens_lost_consumer_down", ctypes.c_uint64),
                ("request_ids_lost", ctypes.c_uint64), ("connected", ctypes.c_bool), ("refused", ctypes.c_bool),
                ("refuse_reason", ctypes.c_char * 256)]


class _Lib:
    def __init__(self, path):
        released = ctypes.CDLL(path)     # releases the GIL around calls
        held = ctypes.PyDLL(path)        # keeps it: cheaper, for calls that never wait
        vp, u64, u32 = ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32
        self.path = path

        def fn(lib, name, res, *args):
            f = getattr(lib, name)
            f.restype, f.argtypes = res, list(args)
            return f
        self.attach = fn(released, "saemon_producer_attach", ctypes.c_int, ctypes.POINTER(_Options),
                         ctypes.POINTER(vp), ctypes.c_char_p, ctypes.c_size_t)
        self.detach = fn(released, "saemon_producer_detach", None, vp)
        self.publish_wait = fn(released, "saemon_producer_publish", ctypes.c_int, vp, u64, u64, vp, u32)
        self.publish = fn(held, "saemon_producer_publish", ctypes.c_int, vp, u64, u64, vp, u32)
        self.end_stream = fn(held, "saemon_producer_end_stream", ctypes.c_int, vp, u64, u64)
        self.heartbeat = fn(held, "saemon_producer_heartbeat", None, vp)
        self.verdict = fn(held, "saemon_producer_get_verdict", ctypes.c_int, vp, u64)
        self.verdict_wait = fn(released, "saemon_producer_verdict_wait", ctypes.c_int, vp, u64, u32)
        self.in_flight = fn(held, "saemon_producer_in_flight", u64, vp)
        self.get_stats = fn(held, "saemon_producer_get_stats", None, vp, ctypes.POINTER(_Stats))
        self.begin_request = fn(held, "saemon_producer_begin_request", ctypes.c_int, vp, u64, ctypes.c_char_p)


_lib = None
_lib_error = None
_lib_lock = threading.Lock()


def _sanitized(name):
    """True if `name` (a path, or a file name looked up in LD_LIBRARY_PATH) is
    built with ASan/TSan: loading it into an uninstrumented Python would abort
    the process, so the pure-Python path is used instead."""
    paths = [name] if "/" in name else [os.path.join(d, name)
                                        for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        return b"__asan_init" in data or b"__tsan_init" in data
    return False


def _load():
    global _lib, _lib_error
    with _lib_lock:
        if _lib is not None or _lib_error is not None:
            return _lib
        env = os.environ.get("SAEMON_PRODUCER_LIB")
        errors = []
        for cand in ([env] if env else []) + ["libsaemon-producer.so.0"]:
            if _sanitized(cand):
                errors.append("%s: built with a sanitizer, not loadable from Python" % cand)
                continue
            try:
                _lib = _Lib(cand)
                return _lib
            except (OSError, AttributeError) as e:
                errors.append("%s: %s" % (cand, e))
        _lib_error = "; ".join(errors)
        return None


def native_available():
    """True if libsaemon-producer could be loaded (see native_error())."""
    return _load() is not None


def native_error():
    """Why the native path is unavailable ("" when it is available)."""
    _load()
    return _lib_error or ""


class NativeProducer:
    """Producer with the same interface as the pure-Python one, writing through
    libsaemon-producer. Frames carry CRC-32C of the header and rows (the
    `checksum` option is accepted for compatibility; the C CRC is cheaper than
    the Python header-only one). A consumer that went cold is woken by the C
    library (`wake` is accepted and ignored)."""

    native = True

    def __init__(self, ring, *, hook, d_in, dtype="f32", model="", lossless_us=0,
                 handshake_timeout=1.0, checksum="rows", wake=True, heartbeat=1.0, on_refused=None):
        lib = _load()
        if lib is None:
            raise OSError("libsaemon-producer is not available: " + (_lib_error or "not found"))
        check_options(ring, hook, d_in, dtype, model, checksum)
        self._lib = lib
        self.ring, self.hook, self.model, self.d_in, self.dtype = ring, hook, model, int(d_in), dtype
        code, elem = DTYPES[dtype]
        self.row_bytes = self.d_in * elem
        self.refuse_reason = ""
        self._p = None
        wait_ms = -1 if not handshake_timeout or handshake_timeout <= 0 else max(1, int(handshake_timeout * 1000))
        # the library's own heartbeat thread (heartbeat <= 0: none; call heartbeat())
        hb_ms = -1 if not heartbeat or heartbeat <= 0 else max(1, int(heartbeat * 1000))
        # a refusal found after attach (the ring appeared later with another
        # hook or d_in): the C library tells once, from its heartbeat thread
        self._on_refused = on_refused
        self._requests = {}    # request id -> stream (the C library keeps its own map too)
        self._stream_rid = {}  # stream -> request id
        ref = weakref.ref(self)

        def refused(reason, _user):
            me = ref()
            if me is not None:
                me._refused(reason.decode("utf-8", "replace"))
        self._refused_cb = _REFUSED_FN(refused)
        opts = _Options(ring.encode(), model.encode(), hook.encode(), self.d_in, code, int(lossless_us), wait_ms,
                        hb_ms, self._refused_cb, None)
        out = ctypes.c_void_p()
        msg = ctypes.create_string_buffer(256)
        rc = lib.attach(ctypes.byref(opts), ctypes.byref(out), msg, len(msg))
        text = msg.value.decode("utf-8", "replace")
        if rc == _EREFUSED:
            raise RefusedError(text)
        if rc == _EBUSY:
            raise BusyError(text)
        if rc == _EINVAL:
            raise ValueError(text)
        if rc != _OK:
            raise OSError(text)
        self._p = out.value
        if lossless_us:
            # may wait: release the GIL, and serialise callers ourselves
            self._lock = threading.Lock()
            self._pub = self._publish_locked
        else:
            self._lock = None
            self._pub = lib.publish

    def _refused(self, reason):
        self.refuse_reason = reason
        text = "saemon refused the producer on ring %s: %s" % (self.ring, reason)
        try:
            if self._on_refused is not None:
                self._on_refused(text)
            else:
                warnings.warn(text)
        except Exception:  # noqa: BLE001 - never into the library's thread
            pass

    def begin_request(self, stream, request_id):
        """As Producer.begin_request: tag `stream` with the engine's request id."""
        if self._p is None:
            raise ValueError("producer is closed")
        if not 0 <= stream < STREAM_LIMIT:
            raise ValueError("stream must be in 0..2^56-2")
        rid = request_id_bytes(request_id)
        old = self._stream_rid.pop(stream, None)
        if old is not None:
            self._requests.pop(old, None)
        prev = self._requests.pop(request_id, None)
        if prev is not None:
            self._stream_rid.pop(prev, None)
        self._requests[request_id] = stream
        self._stream_rid[stream] = request_id
        return self._check(self._lib.begin_request(self._p, stream, rid))

    def stream_of(self, request_id):
        """The stream given to `request_id` by begin_request (not yet ended), or None."""
        return self._requests.get(request_id)

    def request_verdict(self, request_id, wait_us=0):
        """verdict() of the stream of `request_id`; None if the id is unknown."""
        stream = self._requests.get(request_id)
        return None if stream is None else self.verdict(stream, wait_us)

    def _publish_locked(self, p, stream, token, addr, n_rows):
        with self._lock:
            return self._lib.publish_wait(p, stream, token, addr, n_rows)

    def _check(self, rc):
        if rc == _EINVAL:
            raise ValueError("stream must be in 0..2^56-2 (or the producer is closed)")
        return rc == _OK

    def publish_ptr(self, stream, token, addr, n_rows):
        """Publish n_rows rows starting at address `addr` (n_rows * row_bytes
        readable bytes of the announced dtype; the caller keeps them alive for
        the call). The cheapest path: used by the PyTorch hook with
        tensor.data_ptr()."""
        if self._p is None:
            raise ValueError("producer is closed")
        return self._check(self._pub(self._p, stream, token, addr, n_rows))

    def publish(self, stream, token, rows, n_rows=None, *, end=False):
        """As Producer.publish: rows is any C-contiguous buffer (bytes, numpy,
        a CPU torch tensor) of n_rows * d_in elements of the announced dtype."""
        if not 0 <= stream < STREAM_LIMIT:
            raise ValueError("stream must be in 0..2^56-2")
        if rows is None:
            if n_rows or not end:
                raise ValueError("rows: None is not %s rows" % n_rows)
            return self.end_stream(stream, token)
        keep = None
        if hasattr(rows, "data_ptr"):                       # torch.Tensor
            if not rows.is_contiguous() or not rows.is_cpu:
                raise ValueError("rows: a contiguous CPU tensor is needed")
            addr, nbytes = rows.data_ptr(), rows.numel() * rows.element_size()
        else:                                               # numpy, bytes, any buffer
            mv = memoryview(rows)
            if not mv.c_contiguous:
                raise ValueError("rows: a C-contiguous buffer is needed")
            nbytes = mv.nbytes
            if nbytes and mv.readonly:
                keep = (ctypes.c_char * nbytes).from_buffer_copy(mv)
            elif nbytes:
                keep = ctypes.c_char.from_buffer(mv)  # no copy: ~0.6 us
            addr = ctypes.addressof(keep) if nbytes else 0
        if n_rows is None:
            n_rows = nbytes // self.row_bytes
        if nbytes != n_rows * self.row_bytes or n_rows == 0:
            raise ValueError("rows: %d bytes is not %d rows of %d bytes" % (nbytes, n_rows, self.row_bytes))
        ok = self.publish_ptr(stream, token, addr, n_rows)
        del keep
        if end:
            ok &= self.end_stream(stream, token + n_rows)
        return ok

    def end_stream(self, stream, token):
        """Tell saemon `stream` is finished (a zero-row end-of-stream frame)."""
        if self._p is None:
            raise ValueError("producer is closed")
        if not 0 <= stream < STREAM_LIMIT:
            raise ValueError("stream must be in 0..2^56-2")
        ok = self._check(self._lib.end_stream(self._p, stream, token))
        if self._stream_rid:
            rid = self._stream_rid.pop(stream, None)
            if rid is not None:
                self._requests.pop(rid, None)
        return ok

    def heartbeat(self):
        if self._p is not None:
            self._lib.heartbeat(self._p)

    def in_flight(self):
        return 0 if self._p is None else self._lib.in_flight(self._p)

    def verdict_wait(self, stream, wait_us):
        """(verdict, fresh), as Producer.verdict_wait: waits at most wait_us for
        saemon to evaluate every frame published so far (the GIL is released)."""
        if self._p is None or not 0 <= stream < STREAM_LIMIT:
            return 0, False
        v = self._lib.verdict_wait(self._p, stream, int(wait_us))
        if v == _ETIMEDOUT:
            return self._lib.verdict(self._p, stream), False
        return v, v >= 0

    def verdict(self, stream, wait_us=0):
        """Highest severity saemon fired for `stream`'s current sequence (0
        none .. 4 block); with wait_us > 0 first waits as verdict_wait."""
        if self._p is None or not 0 <= stream < STREAM_LIMIT:
            return 0
        if wait_us:
            return self.verdict_wait(stream, wait_us)[0]
        return self._lib.verdict(self._p, stream)

    def _stats(self):
        st = _Stats()
        if self._p is not None:
            self._lib.get_stats(self._p, ctypes.byref(st))
        return st

    @property
    def stats(self):
        st = self._stats()
        return {"frames_published": st.frames_published, "tokens_published": st.tokens_published,
                "frames_dropped": st.frames_dropped, "tokens_dropped": st.tokens_dropped,
                "reattaches": st.reattaches, "eos_pending": st.eos_pending, "eos_lost": st.eos_lost,
                "verdict_timeouts": st.verdict_timeouts,
                "tokens_lost_consumer_down": st.tokens_lost_consumer_down, "request_ids_lost": st.request_ids_lost}

    @property
    def connected(self):
        return bool(self._stats().connected)

    @property
    def refused(self):
        return bool(self._stats().refused)

    def close(self):
        """Detach (another producer may then attach)."""
        p, self._p = self._p, None
        if p is not None:
            self._lib.detach(p)

    detach = close

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_producer(ring, *, backend="auto", **kw):
    """A producer for `ring`: backend "native" (libsaemon-producer through
    ctypes; OSError if it cannot be loaded), "python" (the pure-Python
    Producer) or "auto" (native when the library loads, else Python). Other
    keywords as Producer."""
    if backend not in ("auto", "native", "python"):
        raise ValueError("backend must be 'auto', 'native' or 'python'")
    if backend == "python" or (backend == "auto" and not native_available()):
        return Producer(ring, **kw)
    return NativeProducer(ring, **kw)
