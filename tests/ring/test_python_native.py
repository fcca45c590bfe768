#!/usr/bin/python3
"""The ctypes path of the Python producer (saemon_producer.NativeProducer ->
libsaemon-producer) through the same checks as the pure-Python producer
(test_python_producer.py: handshake and refusal, bit-exact rows, token
positions, end-of-stream, drops and gaps, fp16/bf16, verdicts, the PyTorch
hooks), plus the fallback: open_producer(backend="auto") returns the
pure-Python Producer when the library cannot be loaded.

usage: test_python_native.py RING_DUMP_EXE SOURCE_DIR LIBSAEMON_PRODUCER_SO"""
import os
import subprocess
import sys

RING_DUMP, SOURCE, LIB = sys.argv[1], sys.argv[2], sys.argv[3]


def fallback():
    """A process where the library is not found gets the pure-Python path."""
    code = ("import sys; sys.path.insert(0, %r); import saemon_producer as s; "
            "assert not s.native_available(), 'loaded?'; assert 'nonexistent' in s.native_error(); "
            "p = s.open_producer('nosuchring-fallback', hook='h', d_in=4, handshake_timeout=0); "
            "assert not getattr(p, 'native', False) and not p.connected; "
            "p.close(); print('fallback ok')" % os.path.join(SOURCE, "producers", "python"))
    env = dict(os.environ, SAEMON_PRODUCER_LIB="/nonexistent/libsaemon-producer.so", LD_LIBRARY_PATH="")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and "fallback ok" in out.stdout, out.stderr


def main():
    os.environ["SAEMON_PRODUCER_LIB"] = LIB
    sys.argv = [sys.argv[0], RING_DUMP, SOURCE]
    sys.path.insert(0, os.path.join(SOURCE, "tests", "ring"))
    sys.path.insert(0, os.path.join(SOURCE, "producers", "python"))
    import saemon_producer
    assert saemon_producer.native_available(), saemon_producer.native_error()
    import test_python_producer as t
    t.Producer = saemon_producer.NativeProducer
    attach = saemon_producer.attach

    def native_attach(*a, **kw):
        att = attach(*a, backend="native", **kw)
        return att
    saemon_producer.attach = native_attach
    for name in sorted(dir(t)):
        fn = getattr(t, name)
        if name.startswith("test_") and callable(fn):
            fn()
            print("ok native", name)
    p = saemon_producer.open_producer("nosuchring-native", hook="h", d_in=4, handshake_timeout=0)
    assert p.native and not p.connected
    assert p.publish(1, 0, b"\0" * 16) is False and p.stats["frames_dropped"] == 1
    try:
        p.publish(1, 0, b"\0" * 15)
        raise AssertionError("a short row must be refused")
    except ValueError:
        pass
    p.close()
    fallback()
    print("ok fallback to the pure-Python producer")


if __name__ == "__main__":
    main()
