"""saemon producer: stream a live model's activations to `saemon serve`.

Pure Python (stdlib mmap/struct/zlib/ctypes); numpy and torch are optional.
    Producer(ring, hook=..., d_in=...)      publish rows yourself (pure Python)
    open_producer(ring, hook=..., d_in=...) the same through libsaemon-producer (ctypes)
                                            when it loads, else the pure-Python Producer
    attach(model, {"module.path": "ring"})  PyTorch forward hooks
    Tap(ring, hook=..., d_in=...)           an nn.Module at the hook point (TorchScript, graphs)
Protocol: docs/ring.md in the saemon repository.
"""
from .ring import (VERDICT_BLOCK, VERDICT_CRITICAL, VERDICT_INFO, VERDICT_NAMES, VERDICT_NONE,
                   VERDICT_WARNING, BusyError, Producer, RefusedError)
from .native import NativeProducer, native_available, native_error, open_producer


def __getattr__(name):
    if name == "Tap":  # imports torch lazily
        from .tap import Tap
        return Tap
    raise AttributeError(name)


def attach(model, rings, stream=0, **kw):
    """See saemon_producer.hooks.attach (imports torch lazily)."""
    from .hooks import attach as _attach
    return _attach(model, rings, stream, **kw)


__all__ = ["Producer", "NativeProducer", "open_producer", "native_available", "native_error", "attach", "Tap",
           "RefusedError", "BusyError", "VERDICT_NONE", "VERDICT_INFO",
           "VERDICT_WARNING", "VERDICT_CRITICAL", "VERDICT_BLOCK", "VERDICT_NAMES"]
