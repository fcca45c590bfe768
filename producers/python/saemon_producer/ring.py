"""Pure-Python producer for the saemon activation ring (stdlib only).

Byte layout and protocol: docs/ring.md (the C side is proto/ring_wire.h).
Linux, little-endian hosts. numpy/torch are optional: `publish` takes any
object exposing the buffer protocol (bytes, bytearray, memoryview, a
C-contiguous numpy array).

Words another process reads while we write them (commit, head, counters,
wake) are stored through memoryview casts of the mapping ('Q'/'I' items):
CPython stores such an item with one aligned memcpy, i.e. a single store.
(struct.pack_into is not usable for them: it zeroes the field before
writing it, so a reader could see 0 in between.)
"""
import collections
import ctypes
import errno
import fcntl
import os
import platform
import struct
import sys
import threading
import time
import weakref
import zlib

if sys.byteorder != "little":  # pragma: no cover
    raise ImportError("saemon_producer: the ring layout is little-endian")

RING_MAGIC = 0x52454153
RING_VERSION = 3          # 3: request id frames (docs/ring.md)
FRAME_MAGIC = 0x46454153
FRAME_VERSION = 1
RING_HEADER_BYTES = 4096
FRAME_HEADER_BYTES = 64
SHM_PREFIX = "saemon-ring."
SHM_DIR = "/dev/shm"
STREAM_LIMIT = (1 << 56) - 1
VERDICT_WINDOW = 16
RECHECK_NS = 5_000_000
CONSUMER_FRESH_NS = 1_000_000_000  # a consumer heartbeat this recent: it is alive
MADV_POPULATE_WRITE = 23  # Linux 5.14

FLAG_END_OF_STREAM = 1
FLAG_GAP = 2
FLAG_GAP_ALL = 4
FLAG_RESET = 8          # first frame of a newly attached producer (docs/ring.md)
FLAG_REQUEST_ID = 16    # zero rows; payload = the stream's request id (aux bytes) + NUL
REQUEST_ID_MAX = 128    # bytes of UTF-8
EOS_PENDING_MAX = 1 << 20  # end-of-stream frames kept while the ring is full (16 B-ish each)
ENDED_MAX = 1024        # ended streams whose end saemon has not evaluated yet
CSUM_CRC32 = 2          # CRC-32 (zlib) of header bytes 8..59 then the rows
CSUM_CRC32_HEADER = 3   # CRC-32 (zlib) of header bytes 8..59 only
DTYPES = {"f32": (0, 4), "f16": (1, 2), "bf16": (2, 2)}
STATE_READY = 1
JUDGE_ACCEPTED, JUDGE_REFUSED = 1, 2

VERDICT_NONE, VERDICT_INFO, VERDICT_WARNING, VERDICT_CRITICAL, VERDICT_BLOCK = range(5)
VERDICT_NAMES = ("none", "info", "warning", "critical", "block")

# ring header offsets (docs/ring.md)
OFF_STATE, OFF_TAIL, OFF_WAKE, OFF_WAITERS, OFF_CONSUMER_HEARTBEAT = 56, 64, 72, 76, 80
OFF_JUDGED_GEN, OFF_JUDGEMENT = 88, 92
OFF_EVALUATED, OFF_VERDICT_WAKE, OFF_VERDICT_WAITERS = 104, 112, 116
OFF_HEAD, OFF_HEARTBEAT, OFF_PRODUCER_PID, OFF_ANNOUNCE_GEN = 128, 136, 176, 180
OFF_ANN = 192
OFF_LOST_CONSUMER_DOWN = 456
OFF_REFUSE_REASON = 640

_geometry = struct.Struct("<IHHQIIQQIIQI")          # bytes 0..59
_announce = struct.Struct("<IIIII4x120s120s")       # 192..455
_frame = struct.Struct("<IHHQQQIIIBBHI")            # frame header bytes 8..59 (52 bytes)
_flock = struct.Struct("hhqqi4x")                   # struct flock (x86-64 / aarch64)

_FUTEX_NR = {"x86_64": 202, "aarch64": 98}.get(platform.machine())
_libc = None


def _futex_wake(addr):
    """FUTEX_WAKE the consumer sleeping on the ring's wake word (ctypes, GIL released)."""
    global _libc
    if _FUTEX_NR is None:
        return
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True).syscall
        _libc.restype = ctypes.c_long
        _libc.argtypes = [ctypes.c_long, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                          ctypes.c_void_p, ctypes.c_int]
    _libc(_FUTEX_NR, addr, 1, 0x7FFFFFFF, None, None, 0)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _futex_wait(addr, seen, timeout_ns):
    """FUTEX_WAIT on a ring word while it still holds `seen`, at most timeout_ns."""
    global _libc
    if _FUTEX_NR is None:
        time.sleep(min(timeout_ns, 100_000) / 1e9)
        return
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True).syscall
        _libc.restype = ctypes.c_long
        _libc.argtypes = [ctypes.c_long, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                          ctypes.c_void_p, ctypes.c_int]
    ts = _Timespec(timeout_ns // 1_000_000_000, timeout_ns % 1_000_000_000)
    _libc(_FUTEX_NR, addr, 0, seen, ctypes.addressof(ts), None, 0)


def _heartbeat_main(ref, stop, period):
    """Library heartbeat thread: keeps saemon seeing the process alive while
    the model is idle, re-attaches after a consumer restart, publishes pending
    end-of-stream frames. Holds only a weak reference to the producer."""
    p = ref()
    # not served yet: look for the ring every 100 ms; else tick every period
    # (no earlier tick: the model's thread must not hand the GIL over to us)
    wait = min(period, 0.1) if p is not None and p._state != "accepted" else period
    del p
    while not stop.wait(wait):
        p = ref()
        if p is None:
            return
        try:
            p.heartbeat()
        except Exception:  # never let the thread die loudly; the next tick retries
            pass
        # pending ends: look for room every millisecond; an announcement not
        # judged yet: look every millisecond (a refusal is known before the
        # model's first forward); no ring yet: look for it every 100 ms
        state = p._state
        wait = 0.001 if p._eos or state == "pending" else min(period, 0.1) if state == "disconnected" else period
        del p


def _hash64(x):
    """splitmix64 finaliser, as ring_hash64() in C."""
    m = 0xFFFFFFFFFFFFFFFF
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & m
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & m
    x ^= x >> 31
    return x


def fnv1a32(s):
    h = 2166136261
    for b in s.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def check_options(ring, hook, d_in, dtype, model, checksum):
    """ValueError for what no producer (pure Python or native) accepts."""
    if not ring_name_valid(ring):
        raise ValueError("ring name must be 1-64 characters of [A-Za-z0-9._-]")
    if dtype not in DTYPES:
        raise ValueError("dtype must be one of %s" % ", ".join(DTYPES))
    if not hook or len(hook.encode()) >= 120 or len(model.encode()) >= 120:
        raise ValueError("hook (required) and model must be shorter than 120 bytes")
    if not 0 < int(d_in) <= 1 << 24:
        raise ValueError("d_in must be 1..2^24")
    if checksum not in ("rows", "header"):
        raise ValueError("checksum must be 'rows' or 'header'")


def request_id_bytes(request_id):
    """The request id as UTF-8 bytes, or ValueError: 1..128 bytes, no
    control characters (C0, DEL, C1), as the consumer requires."""
    if not isinstance(request_id, str):
        raise ValueError("request_id must be a str")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in request_id):
        raise ValueError("request_id must not contain control characters")
    try:
        b = request_id.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        raise ValueError("request_id is not valid UTF-8") from None
    if not 0 < len(b) <= REQUEST_ID_MAX:
        raise ValueError("request_id must be 1..%d bytes of UTF-8" % REQUEST_ID_MAX)
    return b


def _version_message(ring, version):
    return ("ring %s speaks ring protocol version %d, this producer version %d: use a libsaemon-producer / "
            "saemon_producer of the same saemon release" % (ring, version, RING_VERSION))


def ring_name_valid(name):
    ok = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    return 0 < len(name) <= 64 and name[0] != "." and all(c in ok for c in name)


def ring_expectations(ring):
    """(d_in, hook) the consumer serving `ring` expects (0 / "" = any), or None
    when the ring is not served yet. Raises PermissionError when the ring
    exists but this user may not open it."""
    path = os.path.join(SHM_DIR, SHM_PREFIX + ring)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        head = os.pread(fd, 640, 0)
    finally:
        os.close(fd)
    if len(head) < 640:
        return None
    magic, version = struct.unpack_from("<IH", head, 0)
    state, = struct.unpack_from("<I", head, OFF_STATE)
    if magic == RING_MAGIC and state == STATE_READY and version != RING_VERSION:
        raise RefusedError(_version_message(ring, version))
    if magic != RING_MAGIC or version != RING_VERSION or state != STATE_READY:
        return None
    d_in, = struct.unpack_from("<I", head, 44)
    hook = head[512:640].split(b"\0")[0].decode("utf-8", "replace")
    return d_in, hook


class RefusedError(RuntimeError):
    """saemon refused the producer's announcement (wrong hook, d_in, dtype)."""


class BusyError(RuntimeError):
    """Another live producer owns the ring."""


class _VersionMismatch(Exception):
    """The ring is served by a saemon speaking another protocol version."""


class _Segment:
    """One mapping of the ring's shared segment, validated like the C producer does."""

    def __init__(self, path):
        import mmap
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            st = os.fstat(self.fd)
            if st.st_size < RING_HEADER_BYTES:
                raise FileNotFoundError(path)
            self.ino = (st.st_dev, st.st_ino)
            self.mm = mmap.mmap(self.fd, st.st_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            (magic, version, header_bytes, _epoch, slots, slot_bytes, slots_off, seg_bytes,
             ventries, _exp_d_in, voff, state) = _geometry.unpack_from(self.mm, 0)
            if magic == RING_MAGIC and state == STATE_READY and version != RING_VERSION:
                self.mm.close()
                raise _VersionMismatch(version)
            slots_end = slots_off + slots * slot_bytes
            ok = (magic == RING_MAGIC and version == RING_VERSION and header_bytes == RING_HEADER_BYTES
                  and state == STATE_READY and seg_bytes == st.st_size
                  and 2 <= slots <= 65536 and slots & (slots - 1) == 0
                  and slot_bytes >= 128 and slot_bytes % 64 == 0
                  and ventries >= VERDICT_WINDOW and ventries & (ventries - 1) == 0
                  and voff >= RING_HEADER_BYTES and voff + ventries * 8 <= slots_off
                  and slots_off % 64 == 0 and slots_end <= st.st_size)
            if not ok:
                self.mm.close()
                raise FileNotFoundError(path)  # retired, half-created or foreign
            self.slots, self.slot_bytes, self.slots_off = slots, slot_bytes, slots_off
            self.verdict_entries, self.verdict_off = ventries, voff
            self.wake_addr = ctypes.addressof(ctypes.c_uint32.from_buffer(self.mm, OFF_WAKE))
            self.verdict_wake_addr = ctypes.addressof(ctypes.c_uint32.from_buffer(self.mm, OFF_VERDICT_WAKE))
            self.q = memoryview(self.mm).cast("Q")  # 64-bit words, single-store access
            self.u = memoryview(self.mm).cast("I")  # 32-bit words
        except BaseException:
            os.close(self.fd)
            raise

    def consumer_alive(self):
        """Does a live consumer hold lock byte 1 (released when its process dies)?"""
        try:
            got = fcntl.fcntl(self.fd, fcntl.F_OFD_GETLK, _flock.pack(fcntl.F_WRLCK, os.SEEK_SET, 1, 1, 0))
        except OSError:
            return True  # cannot tell
        return _flock.unpack(got)[0] != fcntl.F_UNLCK

    def lock(self):
        try:
            fcntl.fcntl(self.fd, fcntl.F_OFD_SETLK, _flock.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 1, 0))
            return True
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise

    def unlock(self):
        """Release the producer lock now: an OFD lock lives as long as the
        open file description, which a mapping the GC has not unmapped yet
        still holds after os.close()."""
        try:
            fcntl.fcntl(self.fd, fcntl.F_OFD_SETLK, _flock.pack(fcntl.F_UNLCK, os.SEEK_SET, 0, 1, 0))
        except OSError:
            pass

    def close(self):
        self.q.release()
        self.u.release()
        try:
            self.mm.close()
        except BufferError:  # a ctypes view still alive: let the GC unmap it
            pass
        os.close(self.fd)


class Producer:
    """Publishes activation rows into one saemon ring.

    Never blocks the model: a full ring drops the frame (counted, carried by
    the next frame, the stream marked as having a gap) unless `lossless_us`
    allows waiting that long. Works before saemon starts and across its
    restarts (frames are dropped and counted meanwhile)."""

    def __init__(self, ring, *, hook, d_in, dtype="f32", model="", lossless_us=0,
                 handshake_timeout=1.0, checksum="rows", wake=True, heartbeat=1.0, on_refused=None):
        check_options(ring, hook, d_in, dtype, model, checksum)
        self.ring = ring
        self.path = os.path.join(SHM_DIR, SHM_PREFIX + ring)
        self.hook, self.model, self.d_in = hook, model, int(d_in)
        self.dtype = dtype
        self._dtype_code, elem = DTYPES[dtype]
        self.row_bytes = self.d_in * elem
        self._hook_id = fnv1a32(hook)
        self._lossless_ns = int(lossless_us) * 1000
        self._csum = CSUM_CRC32 if checksum == "rows" else CSUM_CRC32_HEADER
        # The consumer polls a ring in use and sleeps on the futex only after
        # 250 ms of silence: then the first frame wakes it (one ctypes futex
        # call, 5-50 us). wake=False skips that call; the consumer then sees
        # that first frame on its next cold re-check, up to 100 ms later.
        self._wake_consumer = bool(wake)
        self._hdr = bytearray(_frame.size)
        self._seg = None
        self._state = "disconnected"
        self._gaps = set()
        self._gap_all = False
        self._dropped_pending = 0
        self._next_check = 0
        self._seen_tail = -1
        self._lock = threading.RLock()  # the heartbeat thread and the model's calls
        self._hb_stop = threading.Event()
        self._eos = collections.deque()  # (stream, token) ends waiting for room
        self._ended = collections.OrderedDict()  # stream -> seq + 1 of its end-of-stream frame
        self._reset_pending, self._reset_seq = False, None
        self._lost_consumer_down = 0  # tokens lost while no consumer served the ring
        self._slot_rows = []
        self.stats = {"frames_published": 0, "tokens_published": 0, "frames_dropped": 0,
                      "tokens_dropped": 0, "reattaches": 0, "eos_pending": 0, "eos_lost": 0,
                      "verdict_timeouts": 0, "tokens_lost_consumer_down": 0, "request_ids_lost": 0}
        self.refuse_reason = ""
        self._requests = {}        # stream -> request id (bytes) of its current sequence
        self._request_streams = {}  # request id (str) -> stream
        # a refusal found after the constructor returned (the ring appeared
        # later with another hook/d_in, or another protocol version): told
        # once through on_refused(reason) (default: a warning)
        self._on_refused = on_refused
        self._refusal_unreported = False
        self._version_mismatch = False
        self._connect(initial=True)
        if self._seg is not None and handshake_timeout and handshake_timeout > 0:
            deadline = time.monotonic() + handshake_timeout
            while self._state == "pending" and time.monotonic() < deadline:
                time.sleep(0.0002)
                self._poll_judgement()
            if self._state == "refused":
                reason = self.refuse_reason
                self._disconnect()
                raise RefusedError("saemon refused the producer on ring %s: %s" % (ring, reason))
        self._refusal_unreported = False  # the constructor reports what it saw
        if heartbeat and heartbeat > 0:
            threading.Thread(target=_heartbeat_main, args=(weakref.ref(self), self._hb_stop, float(heartbeat)),
                             name="saemon-heartbeat-%s" % ring, daemon=True).start()

    # -- connection -------------------------------------------------------
    def _connect(self, initial=False):
        try:
            seg = _Segment(self.path)
        except FileNotFoundError:
            return False
        except _VersionMismatch as e:
            reason = _version_message(self.ring, e.args[0])
            if initial:
                raise RefusedError(reason) from None
            if not self._version_mismatch:  # told once, until a ring of our version appears
                self._version_mismatch, self.refuse_reason = True, reason
                self._refusal_unreported = True
            return False
        self._version_mismatch = False
        if not seg.lock():
            pid = seg.u[OFF_PRODUCER_PID // 4]
            seg.close()
            if initial:
                raise BusyError("ring %s already has a live producer (pid %d)" % (self.ring, pid))
            return False
        if not seg.consumer_alive():  # a dead consumer's segment: wait for the next one
            seg.close()
            return False
        mm, q, u = seg.mm, seg.q, seg.u
        self._seg, self._mm, self._q, self._u = seg, mm, q, u
        self._slot_rows = [0] * seg.slots
        q[OFF_LOST_CONSUMER_DOWN // 8] = self._lost_consumer_down
        self._slots, self._mask = seg.slots, seg.slots - 1
        self._slot_bytes, self._slots_off = seg.slot_bytes, seg.slots_off
        self._rows_per_frame = (seg.slot_bytes - FRAME_HEADER_BYTES) // self.row_bytes
        self._prefault(seg)
        self._head = q[OFF_HEAD // 8]
        self._counters = list(q[18:22])  # 144: tokens_produced, frames/tokens dropped, frames_published
        flags = 1 if self._lossless_ns else 0
        _announce.pack_into(mm, OFF_ANN, self.d_in, self._dtype_code, flags, self._lossless_ns // 1000,
                            self._hook_id, self.model.encode(), self.hook.encode())
        u[OFF_PRODUCER_PID // 4] = os.getpid()
        q[OFF_HEARTBEAT // 8] = time.monotonic_ns()
        gen = (u[OFF_ANNOUNCE_GEN // 4] + 1) & 0xFFFFFFFF or 1
        self._gen = gen
        u[OFF_ANNOUNCE_GEN // 4] = gen
        self._state = "pending"
        self._reset_pending, self._reset_seq = True, None
        self._ended.clear()
        self._wake()
        return True

    def _prefault(self, seg):
        """Map the pages a one-row frame touches in every slot now (as the C
        producer does), not with a page fault per slot on the model's thread,
        and read a byte of each: the first access of a populated page still
        costs ~5 us on a KVM guest (the C producer's prefault_slots says why).
        Best effort: MADV_POPULATE_WRITE needs Linux 5.14."""
        import mmap
        page, nbytes = mmap.PAGESIZE, FRAME_HEADER_BYTES + self.row_bytes
        mm = seg.mm

        def touch(start, length):
            for off in range(start - start % page, start + length, page):
                mm[off]

        try:
            if nbytes * 2 >= seg.slot_bytes:
                mm.madvise(MADV_POPULATE_WRITE, seg.slots_off, seg.slots * seg.slot_bytes)
                touch(seg.slots_off, seg.slots * seg.slot_bytes)
                return
            for i in range(seg.slots):
                a = seg.slots_off + i * seg.slot_bytes
                start = a - a % page
                length = -(-(a + nbytes - start) // page) * page
                mm.madvise(MADV_POPULATE_WRITE, start, length)
                touch(start, length)
        except (OSError, ValueError, AttributeError):
            pass

    def _disconnect(self):
        if self._seg is not None:
            self._mm = self._q = self._u = None
            self._seg.close()
            self._seg = None
        self._state = "disconnected"

    def _poll_judgement(self):
        if self._state != "pending":
            return
        mm, u = self._mm, self._u
        if u[OFF_JUDGED_GEN // 4] != self._gen:
            return
        if u[OFF_JUDGEMENT // 4] == JUDGE_ACCEPTED:
            self._state, self.refuse_reason = "accepted", ""
        else:
            self._state = "refused"
            self.refuse_reason = bytes(mm[OFF_REFUSE_REASON:OFF_REFUSE_REASON + 256]).split(b"\0")[0].decode(
                "utf-8", "replace")
            self._refusal_unreported = True

    def _segment_current(self):
        if self._u[OFF_STATE // 4] != STATE_READY:
            return False
        if not self._seg.consumer_alive():
            # the consumer died: what it had not consumed is lost; stop writing there
            tail = self._q[OFF_TAIL // 8]
            if tail <= self._head <= tail + self._slots:
                rows = self._slot_rows
                self._lost_consumer_down += sum(rows[s & self._mask] for s in range(tail, self._head))
            self.stats["tokens_lost_consumer_down"] = self._lost_consumer_down
            return False
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._seg.ino

    def _consumer_live(self, now):
        """The consumer refreshed its heartbeat lately or consumed since the last
        check: a consumer replacing it would have retired the segment first, so
        the name need not be looked up (no system call on the model's thread)."""
        if self._u[OFF_STATE // 4] != STATE_READY:
            return False
        q = self._q
        hb, tail = q[OFF_CONSUMER_HEARTBEAT // 8], q[OFF_TAIL // 8]
        moved = tail != self._seen_tail
        self._seen_tail = tail
        # a full ring whose tail stands still may have a dead consumer behind a
        # heartbeat not yet stale: then look (the lock byte) before trusting it
        stuck = self._head - tail >= self._slots
        return moved or (not stuck and hb and hb + CONSUMER_FRESH_NS > now)

    def _maintain(self, now):
        if self._seg is not None:
            self._q[OFF_HEARTBEAT // 8] = now
            if self._state == "pending":
                self._poll_judgement()
        if now < self._next_check:
            return
        self._next_check = now + RECHECK_NS
        if self._seg is not None and (self._consumer_live(now) or self._segment_current()):
            return
        self._disconnect()
        self._eos.clear()  # ends for a consumer that is gone
        self.stats["eos_pending"] = 0
        if self._hb_stop.is_set():  # closed: a heartbeat that waited for the lock must not attach again
            return
        if self._connect():
            self.stats["reattaches"] += 1
            if self.stats["frames_published"] or self.stats["frames_dropped"]:
                self._gap_all = True  # the new consumer missed the streams' pasts
            for stream, rid in self._requests.items():  # ... and their request ids
                self._eos.append((stream, 0, rid))
            self._poll_judgement()

    def _wake(self):
        u = self._u
        if u[OFF_WAITERS // 4]:
            u[OFF_WAKE // 4] = (u[OFF_WAKE // 4] + 1) & 0xFFFFFFFF
            _futex_wake(self._seg.wake_addr)

    # -- publishing -------------------------------------------------------
    def _count_drop(self, stream, n_rows):
        if self._state == "disconnected":
            self._lost_consumer_down += n_rows
            self.stats["tokens_lost_consumer_down"] = self._lost_consumer_down
        self._dropped_pending += 1
        self.stats["frames_dropped"] += 1
        self.stats["tokens_dropped"] += n_rows
        if len(self._gaps) >= 4096:  # too many to track: every open stream is suspect
            self._gaps.clear()
            self._gap_all = True
        self._gaps.add(stream)
        if self._seg is not None and self._state != "refused":
            c, q = self._counters, self._q
            c[0] += n_rows
            c[1] += 1
            c[2] += n_rows
            q[18], q[19], q[20] = c[0], c[1], c[2]

    def _room(self):
        return self._head - self._q[OFF_TAIL // 8] < self._slots

    def _flush_eos(self):
        """Publish ends that found the ring full, oldest first, while there is room."""
        eos = self._eos
        while eos and self._room():
            stream, token, rid = eos[0]
            if rid is None:
                self._write_frame(stream, token, memoryview(b""), 0, FLAG_END_OF_STREAM)
            elif len(rid) < self._slot_bytes - FRAME_HEADER_BYTES:
                self._write_frame(stream, token, memoryview(rid + b"\0"), 0, FLAG_REQUEST_ID)
            else:
                self.stats["request_ids_lost"] += 1
            eos.popleft()
        self.stats["eos_pending"] = len(eos)

    def _ready(self):
        if self._eos:
            self._flush_eos()
            if self._eos:
                return False
        return self._room()

    def _wait_space(self, start):
        deadline = start + self._lossless_ns
        while True:
            if self._ready():
                return True
            if time.monotonic_ns() >= deadline:
                return False
            self._wake()
            time.sleep(0.00002)

    def _publish_frame(self, stream, token, mv, n_rows, flags, now):
        if not self._ready() and not (self._lossless_ns and self._wait_space(now)):
            if flags & FLAG_REQUEST_ID:
                if len(self._eos) < EOS_PENDING_MAX:
                    self._eos.append((stream, token, bytes(mv[:-1])))  # sent before the next frame
                    self.stats["eos_pending"] = len(self._eos)
                    return True
                self.stats["request_ids_lost"] += 1
                return False
            if flags & FLAG_END_OF_STREAM and n_rows == 0 and len(self._eos) < EOS_PENDING_MAX:
                self._eos.append((stream, token, None))  # never lost: goes out before the next frame
                self.stats["eos_pending"] = len(self._eos)
                return True
            if flags & FLAG_END_OF_STREAM:
                self.stats["eos_lost"] += 1
            self._count_drop(stream, n_rows)
            return False
        self._write_frame(stream, token, mv, n_rows, flags)
        return True

    def _write_frame(self, stream, token, mv, n_rows, flags):
        mm, q = self._mm, self._q
        head = self._head
        if stream in self._gaps:
            self._gaps.discard(stream)
            flags |= FLAG_GAP
        if self._gap_all:
            flags |= FLAG_GAP_ALL
        if self._reset_pending:
            flags |= FLAG_RESET
            self._reset_pending, self._reset_seq = False, head
        if flags & FLAG_END_OF_STREAM:
            ended = self._ended
            ended.pop(stream, None)
            if len(ended) >= ENDED_MAX:
                ended.popitem(last=False)
            ended[stream] = head + 1
        hdr = self._hdr
        aux = len(mv) - 1 if flags & FLAG_REQUEST_ID else 0  # the id's bytes (mv ends with its NUL)
        _frame.pack_into(hdr, 0, FRAME_MAGIC, FRAME_VERSION, flags, head, stream, token, self._hook_id,
                         self.d_in, n_rows, self._dtype_code, self._csum, aux,
                         min(self._dropped_pending, 0xFFFFFFFF))
        crc = zlib.crc32(hdr)
        if self._csum == CSUM_CRC32 and (n_rows or aux):
            crc = zlib.crc32(mv, crc)
        slot = self._slots_off + (head & self._mask) * self._slot_bytes
        self._slot_rows[head & self._mask] = n_rows
        mm[slot + 8:slot + 60] = hdr
        struct.pack_into("<I", mm, slot + 60, crc)
        if n_rows or aux:
            mm[slot + 64:slot + 64 + len(mv)] = mv
        q[slot // 8] = head + 1                         # commit: the frame is complete
        self._head = head = head + 1
        q[OFF_HEAD // 8] = head                         # publish
        c = self._counters
        c[0] += n_rows
        c[3] += 1
        q[18], q[21] = c[0], c[3]
        self._dropped_pending = 0
        self._gap_all = False
        st = self.stats
        st["frames_published"] += 1
        st["tokens_published"] += n_rows
        if self._wake_consumer and self._u[OFF_WAITERS // 4]:
            self._wake()

    def publish(self, stream, token, rows, n_rows=None, *, end=False):
        """Publish rows (buffer of n_rows * d_in elements of the announced dtype)
        for tokens token..token+n_rows-1 of `stream`. Returns True if every
        frame was published, False if any was dropped (counted)."""
        if not 0 <= stream < STREAM_LIMIT:
            raise ValueError("stream must be in 0..2^56-2")
        mv = memoryview(rows).cast("B") if rows is not None else memoryview(b"")
        nbytes = len(mv)
        if n_rows is None:
            n_rows = nbytes // self.row_bytes
        if nbytes != n_rows * self.row_bytes or (n_rows == 0 and not end):
            raise ValueError("rows: %d bytes is not %d rows of %d bytes" % (nbytes, n_rows, self.row_bytes))
        with self._lock:
            return self._publish_locked(stream, token, mv, n_rows, end)

    def _publish_locked(self, stream, token, mv, n_rows, end):
        now = time.monotonic_ns()
        self._maintain(now)
        per = self._rows_per_frame if self._seg is not None else 0
        if self._state in ("disconnected", "refused") or per == 0:
            done = 0
            while True:
                n = n_rows - done if per == 0 else min(per, n_rows - done)
                self._count_drop(stream, n)
                done += n
                if done >= n_rows:
                    return False
        ok = True
        done = 0
        rb = self.row_bytes
        while True:
            n = min(per, n_rows - done)
            last = done + n == n_rows
            flags = FLAG_END_OF_STREAM if end and last else 0
            chunk = mv[done * rb:(done + n) * rb] if (done or n != n_rows) else mv
            ok &= self._publish_frame(stream, token + done, chunk, n, flags, now)
            done += n
            if done >= n_rows:
                return ok

    def end_stream(self, stream, token):
        """Tell saemon `stream` is finished (a zero-row end-of-stream frame)."""
        ok = self.publish(stream, token, None, 0, end=True)
        with self._lock:
            rid = self._requests.pop(stream, None)
            if rid is not None and self._request_streams.get(rid.decode()) == stream:
                del self._request_streams[rid.decode()]
        return ok

    def begin_request(self, stream, request_id):
        """Tag `stream` with the engine's request id (vLLM "cmpl-...", SGLang
        rid; 1..128 bytes of UTF-8, no control characters, else ValueError):
        call it when the request starts on the stream, before its first
        publish. saemon puts the id in every alert of the stream's sequence
        until its end of stream; it is never dropped for a full ring (kept
        and sent before the next frame) and sent again to a restarted saemon.
        The producer remembers id -> stream until end_stream: stream_of(),
        request_verdict()."""
        if not 0 <= stream < STREAM_LIMIT:
            raise ValueError("stream must be in 0..2^56-2")
        rid = request_id_bytes(request_id)
        with self._lock:
            old = self._requests.pop(stream, None)
            if old is not None:
                self._request_streams.pop(old.decode(), None)
            prev = self._request_streams.pop(request_id, None)
            if prev is not None:
                self._requests.pop(prev, None)
            self._requests[stream] = rid
            self._request_streams[request_id] = stream
            now = time.monotonic_ns()
            self._maintain(now)
            if self._state == "refused":
                ok = False
            elif self._seg is None:
                ok = True  # sent once saemon serves the ring (_maintain requeues the ids)
            elif len(rid) >= self._slot_bytes - FRAME_HEADER_BYTES:
                self.stats["request_ids_lost"] += 1
                ok = False
            else:
                ok = self._publish_frame(stream, 0, memoryview(rid + b"\0"), 0, FLAG_REQUEST_ID, now)
        self._report_refusal()
        return ok

    def stream_of(self, request_id):
        """The stream given to `request_id` by begin_request (not yet ended), or None."""
        return self._request_streams.get(request_id)

    def request_verdict(self, request_id, wait_us=0):
        """verdict() of the stream of `request_id`; None if the id is unknown."""
        stream = self._request_streams.get(request_id)
        return None if stream is None else self.verdict(stream, wait_us)

    def _report_refusal(self):
        """Tell (once) about a refusal found after the constructor: outside the lock."""
        if not self._refusal_unreported:
            return
        self._refusal_unreported = False
        reason = "saemon refused the producer on ring %s: %s" % (self.ring, self.refuse_reason)
        if self._on_refused is not None:
            try:
                self._on_refused(reason)
            except Exception:  # noqa: BLE001 - the application's callback
                pass
        else:
            import warnings
            warnings.warn(reason)

    def heartbeat(self):
        """Refresh the heartbeat, re-attach after a saemon restart, publish
        pending end-of-stream frames (the library thread calls it every
        `heartbeat` seconds)."""
        with self._lock:
            self._maintain(time.monotonic_ns())
            if self._eos and self._state in ("pending", "accepted"):
                self._flush_eos()
        self._report_refusal()

    def in_flight(self):
        """Frames published but not yet consumed (0 when not connected)."""
        if self._seg is None:
            return 0
        return self._head - self._q[OFF_TAIL // 8]

    def _fresh_verdict(self, stream):
        """The verdict word of `stream`, or 0 while it may be someone else's:
        before saemon evaluated this producer's first frame, or after
        end_stream until saemon evaluated that end."""
        seg = self._seg
        if seg is None or self._reset_seq is None:
            return VERDICT_NONE
        q = self._q
        ev = q[OFF_EVALUATED // 8]
        if ev <= self._reset_seq:
            return VERDICT_NONE
        ended = self._ended
        while ended:
            first = next(iter(ended))
            if ended[first] > ev:
                break
            del ended[first]
        if stream in ended:
            return VERDICT_NONE
        key = stream + 1
        mask = seg.verdict_entries - 1
        h = _hash64(stream) & mask
        base = seg.verdict_off // 8
        for i in range(VERDICT_WINDOW):
            w = q[base + ((h + i) & mask)]
            if w == 0:
                return VERDICT_NONE
            if w >> 8 == key:
                return w & 0xFF
        return VERDICT_NONE

    def _wait_evaluated(self, target, deadline):
        q, u = self._q, self._u
        for _ in range(64):  # the consumer usually answers within microseconds
            if q[OFF_EVALUATED // 8] >= target:
                return True
        while True:
            if q[OFF_EVALUATED // 8] >= target:
                return True
            now = time.monotonic_ns()
            if now >= deadline:
                return False
            seen = u[OFF_VERDICT_WAKE // 4]
            u[OFF_VERDICT_WAITERS // 4] = 1
            if q[OFF_EVALUATED // 8] < target:
                _futex_wait(self._seg.verdict_wake_addr, seen, deadline - now)
            u[OFF_VERDICT_WAITERS // 4] = 0

    def verdict_wait(self, stream, wait_us):
        """(verdict, fresh): waits at most wait_us for saemon to evaluate every
        frame published so far. fresh=False when the wait ran out or no
        consumer is attached: the verdict then only covers what saemon has
        evaluated, and the caller chooses to fail open or closed."""
        if not 0 <= stream < STREAM_LIMIT:
            return VERDICT_NONE, False
        with self._lock:
            if self._state not in ("pending", "accepted"):
                self.stats["verdict_timeouts"] += 1
                return VERDICT_NONE, False
            if self._head != self._q[OFF_EVALUATED // 8]:
                self._wake()  # a sleeping consumer would otherwise see the frame up to 1 ms late
            ok = self._wait_evaluated(self._head, time.monotonic_ns() + int(wait_us) * 1000) and not self._eos
            if not ok:
                self.stats["verdict_timeouts"] += 1
            return self._fresh_verdict(stream), ok

    def verdict(self, stream, wait_us=0):
        """Highest severity saemon fired for `stream`'s current sequence (0
        none .. 4 block). With wait_us > 0, first waits (bounded) until saemon
        evaluated every frame published so far ("block before the next
        token"); see verdict_wait for whether the wait succeeded."""
        if not 0 <= stream < STREAM_LIMIT:
            return VERDICT_NONE
        if wait_us:
            return self.verdict_wait(stream, wait_us)[0]
        with self._lock:
            return self._fresh_verdict(stream)

    @property
    def connected(self):
        return self._state in ("pending", "accepted")

    @property
    def refused(self):
        return self._state == "refused" or self._version_mismatch

    def close(self):
        """Detach (another producer may then attach). Pending end-of-stream
        frames go out first, as long as saemon keeps making room (up to 1 s
        without progress)."""
        self._hb_stop.set()
        with self._lock:
            if self._seg is not None and self._eos and self._state == "accepted":
                deadline = time.monotonic_ns() + 1_000_000_000
                left = len(self._eos)
                while not self._ready() and time.monotonic_ns() < deadline and self._seg.consumer_alive():
                    if len(self._eos) < left:
                        left, deadline = len(self._eos), time.monotonic_ns() + 1_000_000_000
                    self._wake()
                    time.sleep(0.0002)
                self.stats["eos_lost"] += len(self._eos)
            if self._seg is not None:
                self._u[OFF_PRODUCER_PID // 4] = 0
                self._seg.unlock()  # another producer may attach at once
            self._disconnect()

    detach = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
