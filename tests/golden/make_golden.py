#!/usr/bin/python3
"""Independent numpy float64 reference for SAELens encode (no saemon code).

  make_golden.py generate OUT_DIR [--seed S]
      Write ~40 generated SAELens dictionaries, one sub-directory per case:
      cfg.json, sae_weights.safetensors, acts.npy, expected.npy, margin.npy
      (+ activation_scaler.json for the expected_average_only_in case).
  make_golden.py reference SAE_DIR ACTS.npy OUT_DIR
      Compute expected.npy and margin.npy for an existing SAELens directory.

expected.npy: dense [n_rows, d_sae] float32 of the float64 reference.
margin.npy:   [n_rows, d_sae] float32, distance of each latent's deciding
              pre-activation to its decision boundary (see README.md); a
              consumer may excuse an on/off disagreement where it is tiny.

Formulas: SAELens sae.py process_sae_in + standard/jumprelu/gated/topk
encode (see /work/shared/reference/formats.md §1.4-1.5). Every stored
tensor (F32/F16/BF16/F64) is upcast to float64 before any arithmetic.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

LAYER_NORM_EPS = 1e-5

# ---------------------------------------------------------------- safetensors

ST_DTYPES = {"F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2), "F64": ("<f8", 8)}


def bf16_bits_to_f64(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def f32_to_bf16_bits(x):
    """Round float32 to bfloat16, nearest-even on the dropped 16 bits."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def read_safetensors(path):
    """name -> float64 array, dtype name. Checks offsets are contiguous."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} beyond the file")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    data = blob[8 + n:]
    tensors, dtypes, end = {}, {}, 0
    for name, meta in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        if meta["dtype"] not in ST_DTYPES:
            raise ValueError(f"{path}: tensor {name}: dtype {meta['dtype']} not handled")
        np_dtype, size = ST_DTYPES[meta["dtype"]]
        begin, stop = meta["data_offsets"]
        count = int(np.prod(meta["shape"], dtype=np.int64))
        if begin != end or stop - begin != count * size:
            raise ValueError(f"{path}: tensor {name}: bad data_offsets {meta['data_offsets']}")
        end = stop
        raw = np.frombuffer(data[begin:stop], dtype=np_dtype).reshape(meta["shape"])
        tensors[name] = bf16_bits_to_f64(raw) if meta["dtype"] == "BF16" else raw.astype(np.float64)
        dtypes[name] = meta["dtype"]
    if end != len(data):
        raise ValueError(f"{path}: {len(data) - end} bytes not covered by any tensor")
    return tensors, dtypes


def write_safetensors(path, tensors, dtype):
    """tensors: name -> float64 array; stored as dtype (F32/F16/BF16), sorted
    by name, contiguous; JSON header space-padded to a multiple of 8."""
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        if dtype == "F32":
            raw = a.astype("<f4").tobytes()
        elif dtype == "F16":
            raw = a.astype("<f2").tobytes()
        elif dtype == "BF16":
            raw = f32_to_bf16_bits(a.astype(np.float32)).astype("<u2").tobytes()
        else:
            raise ValueError(dtype)
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


# ---------------------------------------------------------------- cfg.json

def _version_tuple(v):
    parts = []
    for p in str(v).replace("-", ".").split("."):
        parts.append(int(p) if p.isdigit() else -1)  # "rc" sorts below a release
    return tuple(parts)


def normalise_cfg(raw):
    """SAELens v6 view of a cfg.json, upgrading pre-6.0 flat configs the way
    handle_pre_6_0_config does (formats.md §1.2)."""
    cfg = dict(raw)
    version = cfg.get("sae_lens_version") or (cfg.get("metadata") or {}).get("sae_lens_version")
    old = version is None or _version_tuple(version) < (6, 0, 0, -1)
    if old:
        if "hook_point" in cfg and "hook_name" not in cfg:
            cfg["hook_name"] = cfg.pop("hook_point")
        if "activation_fn_str" in cfg and "activation_fn" not in cfg:
            cfg["activation_fn"] = cfg.pop("activation_fn_str")
        cfg.setdefault("apply_b_dec_to_input", True)
        cfg.setdefault("architecture", "standard")
        cfg.setdefault("activation_fn", "relu")
        if "reshape_activations" not in cfg:
            cfg["reshape_activations"] = "hook_z" if "hook_z" in str(cfg.get("hook_name", "")) else "none"
        kw = cfg.get("activation_fn_kwargs") or {}
        if cfg["activation_fn"] == "topk" and "k" in kw:
            cfg["architecture"] = "topk"
            cfg["k"] = kw["k"]
        na = cfg.get("normalize_activations")
        if na is True:
            cfg["normalize_activations"] = "expected_average_only_in"
        elif na is False or na is None:
            cfg["normalize_activations"] = "none"
    cfg.setdefault("architecture", "standard")
    cfg.setdefault("apply_b_dec_to_input", True)
    cfg.setdefault("normalize_activations", "none")
    cfg.setdefault("reshape_activations", "none")
    cfg.setdefault("rescale_acts_by_decoder_norm", False)
    if cfg["normalize_activations"] not in ("none", "expected_average_only_in", "constant_norm_rescale",
                                            "layer_norm"):
        raise ValueError(f"normalize_activations {cfg['normalize_activations']!r} unknown")
    if cfg["architecture"] not in ("standard", "jumprelu", "gated", "topk"):
        raise ValueError(f"architecture {cfg['architecture']!r} unknown")
    return cfg


def load_sae(sae_dir):
    """cfg (normalised) and float64 tensors, with any expected_average_only_in
    factor folded in (W_enc *= s, W_dec /= s, b_dec /= s; sae.py)."""
    with open(os.path.join(sae_dir, "cfg.json")) as f:
        cfg = normalise_cfg(json.load(f))
    w, _ = read_safetensors(os.path.join(sae_dir, "sae_weights.safetensors"))
    sf = w.pop("scaling_factor", None)
    if sf is not None and not np.all(sf == 1.0):
        # finetuning_scaling_factor only scales decode, never encode
        print(f"{sae_dir}: note: non-unit scaling_factor tensor ignored (decode only)", file=sys.stderr)
    if cfg["normalize_activations"] == "expected_average_only_in":
        scaler = os.path.join(sae_dir, "activation_scaler.json")
        s = None
        if os.path.exists(scaler):
            with open(scaler) as f:
                s = json.load(f).get("scaling_factor")
        if s is None:
            raise ValueError(f"{sae_dir}: expected_average_only_in without a scaling factor: refusing")
        w["W_enc"] = w["W_enc"] * s
        w["W_dec"] = w["W_dec"] / s
        w["b_dec"] = w["b_dec"] / s
        cfg["normalize_activations"] = "none"
    d_in, d_sae = cfg["d_in"], cfg["d_sae"]
    if w["W_enc"].shape != (d_in, d_sae) or w["b_dec"].shape != (d_in,):
        raise ValueError(f"{sae_dir}: W_enc {w['W_enc'].shape} / b_dec {w['b_dec'].shape} vs d_in {d_in}, d_sae {d_sae}")
    return cfg, w


# ---------------------------------------------------------------- encode

def acts_to_rows(acts, d_in, hook_z):
    """[..., d_in] or (hook_z) [..., n_heads, d_head] -> [n_rows, d_in] head-major."""
    if acts.ndim >= 1 and acts.shape[-1] == d_in:
        return acts.reshape(-1, d_in)
    if hook_z and acts.ndim >= 2 and acts.shape[-2] * acts.shape[-1] == d_in:
        return acts.reshape(-1, d_in)  # C order: "... h d -> ... (h d)"
    raise ValueError(f"activation shape {list(acts.shape)} does not fit d_in {d_in}")


def preprocess(x, cfg, b_dec):
    norm = cfg["normalize_activations"]
    with np.errstate(divide="ignore", invalid="ignore"):
        if norm == "constant_norm_rescale":
            x = x * (np.sqrt(x.shape[1]) / np.linalg.norm(x, axis=1, keepdims=True))
        elif norm == "layer_norm":
            x = x - x.mean(axis=1, keepdims=True)
            x = x / (x.std(axis=1, ddof=1, keepdims=True) + LAYER_NORM_EPS)
    if cfg["apply_b_dec_to_input"]:
        x = x - b_dec
    return x


def encode(rows, cfg, w):
    """Float64 features [n, d_sae] and margins [n, d_sae] for float64 rows.
    A row that is non-finite after preprocessing fires nothing (margin inf)."""
    x = preprocess(rows, cfg, w["b_dec"])
    bad = ~np.all(np.isfinite(x), axis=1)
    x[bad] = 0.0
    arch = cfg["architecture"]
    pre = x @ w["W_enc"]
    if arch == "standard":
        h = pre + w["b_enc"]
        f = np.maximum(h, 0.0)
        margin = np.abs(h)
    elif arch == "jumprelu":
        h = pre + w["b_enc"]
        th = w["threshold"]
        f = np.where(h > th, np.maximum(h, 0.0), 0.0)
        margin = np.abs(h - np.maximum(th, 0.0))
    elif arch == "gated":
        g = pre + w["b_gate"]
        m = pre * np.exp(w["r_mag"]) + w["b_mag"]
        f = np.where(g > 0, np.maximum(m, 0.0), 0.0)
        # distance to flipping the on/off state: both conditions must change
        # to switch a doubly-failing latent on, either one to switch it off
        ag, am = np.abs(g), np.abs(m)
        margin = np.where((g > 0) & (m > 0), np.minimum(ag, am),
                          np.where((g <= 0) & (m <= 0), np.maximum(ag, am), np.where(g <= 0, ag, am)))
    else:
        f, margin = topk(pre + w["b_enc"], cfg, w)
    f[bad] = 0.0
    margin[bad] = np.inf
    return f, margin


def topk(h, cfg, w):
    """Top k of h (x ||W_dec_j|| when rescaling), lower index first among equal
    values, then ReLU. Margin: distance to the rank boundary (the (k+1)-th
    value for a selected latent, the k-th for one left out) combined with the
    distance to 0 of the ReLU."""
    k = int(cfg["k"])
    if cfg.get("rescale_acts_by_decoder_norm"):
        h = h * np.linalg.norm(w["W_dec"], axis=1)
    n, d_sae = h.shape
    if not 0 < k:
        raise ValueError(f"k = {k}")
    k = min(k, d_sae)
    order = np.argsort(-h, axis=1, kind="stable")  # stable: lower index wins ties
    selected = np.zeros_like(h, dtype=bool)
    np.put_along_axis(selected, order[:, :k], True, axis=1)
    f = np.where(selected, np.maximum(h, 0.0), 0.0)
    kth = np.take_along_axis(h, order[:, k - 1:k], axis=1)
    kp1 = np.take_along_axis(h, order[:, k:k + 1], axis=1) if k < d_sae else np.full((n, 1), -np.inf)
    rank = np.where(selected, h - kp1, kth - h)  # >= 0; 0 at a tie across the boundary
    pos = np.abs(h)
    active = selected & (h > 0)
    margin = np.where(active, np.minimum(rank, pos),
                      np.where(selected, pos,                      # selected but h <= 0
                               np.where(h > 0, rank, np.maximum(rank, pos))))
    return f, margin


def reference(sae_dir, acts, out_dir, quiet=False):
    cfg, w = load_sae(sae_dir)
    rows = acts_to_rows(np.asarray(acts, dtype=np.float64), cfg["d_in"], cfg["reshape_activations"] == "hook_z")
    f, margin = encode(rows, cfg, w)
    os.makedirs(out_dir, exist_ok=True)
    np.save(os.path.join(out_dir, "expected.npy"), f.astype("<f4"))
    np.save(os.path.join(out_dir, "margin.npy"), margin.astype("<f4"))
    l0 = (f > 0).sum(axis=1)
    if not quiet:
        print(f"{sae_dir}: {cfg['architecture']}, {rows.shape[0]} rows x d_sae {cfg['d_sae']}: "
              f"mean L0 {l0.mean():.3f}, active fraction {l0.mean() / cfg['d_sae']:.3f}, "
              f"near-boundary (margin < 1e-5) {(margin < 1e-5).sum()}")
    return f, margin


# ---------------------------------------------------------------- generator

ARCHS = ("standard", "jumprelu", "gated", "topk")
DTYPES = ("F32", "F16", "BF16")
NORMS = ("none", "constant_norm_rescale", "layer_norm")


def store_round(a, dtype):
    """The float64 value a tensor will have after storage as dtype."""
    if dtype == "F32":
        return a.astype(np.float32).astype(np.float64)
    if dtype == "F16":
        return a.astype(np.float16).astype(np.float64)
    return bf16_bits_to_f64(f32_to_bf16_bits(a.astype(np.float32)))


def make_case(rng, spec):
    """Trained-like weights: unit-norm decoder directions, encoder = a noisy
    transpose, activations = sparse positive mixtures of decoder directions,
    biases set from quantiles so each latent fires on 5-30 % of rows."""
    arch, dtype, d_in, d_sae = spec["arch"], spec["dtype"], spec["d_in"], spec["d_sae"]
    n = spec["n"]
    W_dec = rng.standard_normal((d_sae, d_in))
    W_dec /= np.linalg.norm(W_dec, axis=1, keepdims=True)
    if spec.get("rescale"):
        W_dec *= rng.uniform(0.5, 2.0, size=(d_sae, 1))  # decoder norms that matter
    W_enc = W_dec.T * rng.uniform(0.6, 1.4, size=d_sae) + 0.15 * rng.standard_normal((d_in, d_sae)) / np.sqrt(d_in)
    if spec.get("ties"):
        W_enc[:, 1] = W_enc[:, 0]  # identical columns: exact ties in h
        W_enc[:, 3] = W_enc[:, 2]
    b_dec = 0.1 * rng.standard_normal(d_in)

    # Rows in the space the encoder sees (after normalisation): sparse mixtures.
    density = rng.uniform(0.05, 0.2)
    coef = rng.exponential(1.0, size=(n, d_sae)) * (rng.random((n, d_sae)) < density)
    z = coef @ W_dec + 0.05 * rng.standard_normal((n, d_in))
    z *= np.sqrt(d_in) / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-9)
    norm = spec["norm"]
    if norm == "none":
        acts = z * rng.uniform(0.5, 1.5, size=(n, 1))
    elif norm == "constant_norm_rescale":
        acts = z * rng.uniform(0.01, 100.0, size=(n, 1))   # any scale: rescaled away
    else:
        acts = z * rng.uniform(0.1, 10.0, size=(n, 1)) + rng.uniform(-3, 3, size=(n, 1))
    if spec["apply_b_dec"] and norm == "none":
        acts = acts + b_dec
    scale = None
    if spec.get("expected_average"):
        # Trained on s * raw: the stored (unfolded) weights see acts * s.
        scale = float(rng.uniform(3.0, 8.0))
        acts = acts / scale
    if spec.get("zero_rows") and norm != "constant_norm_rescale":
        acts[rng.choice(n, size=3, replace=False)] = 0.0  # ||x|| = 0 is undefined under rescale
    acts = acts.astype(np.float32)

    # Pre-activations without bias, as the reference will compute them.
    tensors = {"W_enc": W_enc, "W_dec": W_dec, "b_dec": b_dec}
    cfg_for_pre = {"normalize_activations": norm, "apply_b_dec_to_input": spec["apply_b_dec"]}
    x = acts.astype(np.float64) * (scale if scale else 1.0)
    x = preprocess(x, cfg_for_pre, store_round(b_dec, dtype))
    x[~np.all(np.isfinite(x), axis=1)] = 0.0
    pre = x @ store_round(W_enc, dtype)
    rate = rng.uniform(0.05, 0.3, size=d_sae)
    q = np.array([np.quantile(pre[:, j], 1.0 - rate[j]) for j in range(d_sae)])
    jitter = 0.01 * rng.standard_normal(d_sae)
    if arch == "standard":
        tensors["b_enc"] = -q + jitter
    elif arch == "jumprelu":
        tensors["threshold"] = rng.uniform(0.05, 0.5, size=d_sae)
        if spec.get("zero_threshold"):
            tensors["threshold"][::3] = 0.0  # boundary at h = 0, like standard ReLU
        tensors["b_enc"] = tensors["threshold"] - q + jitter
    elif arch == "gated":
        tensors["b_gate"] = -q + jitter
        tensors["r_mag"] = 0.3 * rng.standard_normal(d_sae)
        tensors["b_mag"] = rng.uniform(-0.2, 0.4, size=d_sae)
    else:
        tensors["b_enc"] = 0.1 * rng.standard_normal(d_sae)
        if spec.get("ties"):
            tensors["b_enc"][[1, 3]] = tensors["b_enc"][[0, 2]] = 0.5  # strong, so they meet the k-th place
    if spec.get("old_scaling_factor"):
        tensors["scaling_factor"] = np.ones(d_sae)
    return tensors, acts, scale


def case_cfg(spec, scale):
    d_in, d_sae, arch = spec["d_in"], spec["d_sae"], spec["arch"]
    hook = "blocks.0.attn.hook_z" if spec.get("hook_z") else "blocks.1.hook_resid_post"
    norm = "expected_average_only_in" if scale else spec["norm"]
    if spec.get("old_format"):
        cfg = {"model_name": "golden-toy", "hook_point": hook, "hook_point_layer": 1,
               "hook_point_head_index": None, "d_in": d_in, "d_sae": d_sae, "dtype": "float32",
               "device": "cpu", "context_size": 128, "prepend_bos": True,
               "dataset_path": "generated", "finetuning_scaling_factor": False,
               "sae_lens_training_version": "3.13.0",
               "normalize_activations": {"none": False, "layer_norm": "layer_norm",
                                         "constant_norm_rescale": "constant_norm_rescale"}[norm]}
        if arch == "topk":
            cfg["activation_fn_str"] = "topk"
            cfg["activation_fn_kwargs"] = {"k": spec["k"]}
        else:
            cfg["activation_fn_str"] = "relu"
        if not spec["apply_b_dec"]:
            cfg["apply_b_dec_to_input"] = False  # absent means true
        return cfg
    cfg = {"d_in": d_in, "d_sae": d_sae, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": spec["apply_b_dec"], "normalize_activations": norm,
           "reshape_activations": "hook_z" if spec.get("hook_z") else "none", "architecture": arch,
           "metadata": {"sae_lens_version": "6.5.0", "model_name": "golden-toy", "hook_name": hook,
                        "neuronpedia_id": f"golden/{spec['name']}"}}
    if arch == "topk":
        cfg["k"] = spec["k"]
        cfg["rescale_acts_by_decoder_norm"] = bool(spec.get("rescale"))
    return cfg


def case_specs(rng):
    """~40 cases: every arch x norm x apply_b_dec (dtype cycling so every arch
    sees every dtype twice), plus hook_z, topk rescale, ties, old cfg layout
    and expected_average_only_in."""
    sizes = [(7, 5), (13, 37), (24, 64), (31, 300), (48, 129), (64, 96), (96, 250), (17, 23), (40, 200),
             (9, 11), (80, 160), (33, 65)]
    specs, i = [], 0
    for arch in ARCHS:
        for norm in NORMS:
            for apply_b_dec in (True, False):
                d_in, d_sae = sizes[i % len(sizes)]
                specs.append({"arch": arch, "dtype": DTYPES[(i + i // 6) % 3], "norm": norm,
                              "apply_b_dec": apply_b_dec, "d_in": d_in, "d_sae": d_sae})
                i += 1
    extra = [
        {"arch": "standard", "dtype": "F32", "norm": "none", "apply_b_dec": True, "hook_z": (4, 8)},
        {"arch": "jumprelu", "dtype": "BF16", "norm": "layer_norm", "apply_b_dec": False, "hook_z": (3, 5),
         "batch": (3, 12)},
        {"arch": "topk", "dtype": "F32", "norm": "none", "apply_b_dec": True, "rescale": True, "d_in": 32,
         "d_sae": 150},
        {"arch": "topk", "dtype": "BF16", "norm": "constant_norm_rescale", "apply_b_dec": False, "rescale": True,
         "d_in": 57, "d_sae": 91},
        {"arch": "topk", "dtype": "F16", "norm": "none", "apply_b_dec": False, "rescale": True, "d_in": 20,
         "d_sae": 40, "batch": (4, 10)},
        {"arch": "topk", "dtype": "F32", "norm": "none", "apply_b_dec": True, "ties": True, "d_in": 16,
         "d_sae": 30},
        {"arch": "standard", "dtype": "F32", "norm": "none", "apply_b_dec": True, "old_format": True,
         "old_scaling_factor": True, "d_in": 19, "d_sae": 45},
        {"arch": "topk", "dtype": "F16", "norm": "none", "apply_b_dec": False, "old_format": True,
         "hook_z": (2, 6), "d_sae": 50},
        {"arch": "standard", "dtype": "F32", "norm": "none", "apply_b_dec": True, "expected_average": True,
         "d_in": 50, "d_sae": 110},
        {"arch": "jumprelu", "dtype": "F16", "norm": "none", "apply_b_dec": False, "expected_average": True,
         "d_in": 28, "d_sae": 70},
        {"arch": "gated", "dtype": "BF16", "norm": "none", "apply_b_dec": True, "batch": (5, 9), "d_in": 44,
         "d_sae": 120},
        {"arch": "standard", "dtype": "BF16", "norm": "layer_norm", "apply_b_dec": True, "batch": (2, 30),
         "d_in": 72, "d_sae": 140},
        {"arch": "jumprelu", "dtype": "F32", "norm": "none", "apply_b_dec": True, "zero_threshold": True,
         "d_in": 37, "d_sae": 83},
        {"arch": "topk", "dtype": "F32", "norm": "none", "apply_b_dec": False, "k": 1, "d_in": 7, "d_sae": 5},
        {"arch": "gated", "dtype": "F16", "norm": "constant_norm_rescale", "apply_b_dec": True,
         "hook_z": (8, 12), "d_sae": 300},
        {"arch": "standard", "dtype": "F16", "norm": "constant_norm_rescale", "apply_b_dec": False,
         "batch": (6, 7), "d_in": 61, "d_sae": 77},
    ]
    for spec in extra:
        if "hook_z" in spec:
            spec["d_in"] = spec["hook_z"][0] * spec["hook_z"][1]
            spec.setdefault("d_sae", 3 * spec["d_in"] + 1)
        specs.append(spec)
    for j, spec in enumerate(specs):
        spec.setdefault("n", int(rng.integers(40, 90)))
        if "batch" in spec:
            spec["n"] = spec["batch"][0] * spec["batch"][1]
        if spec["arch"] == "topk" and "k" not in spec:
            spec["k"] = max(1, int(round(spec["d_sae"] * rng.uniform(0.05, 0.3))))
        spec["zero_rows"] = j % 3 != 2
        parts = [f"{j:02d}", spec["arch"], spec["dtype"].lower(), spec["norm"].replace("constant_norm_rescale", "cnr"),
                 "bdec" if spec["apply_b_dec"] else "nobdec"]
        for flag, label in (("hook_z", "hookz"), ("rescale", "rescale"), ("ties", "ties"),
                            ("old_format", "oldcfg"), ("expected_average", "expavg"), ("batch", "3d"),
                            ("zero_threshold", "zerothr")):
            if spec.get(flag):
                parts.append(label)
        spec["name"] = "-".join(parts)
    return specs


def generate(out_dir, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(out_dir, exist_ok=True)
    summary = []
    for spec in case_specs(rng):
        case_dir = os.path.join(out_dir, spec["name"])
        os.makedirs(case_dir, exist_ok=True)
        tensors, acts, scale = make_case(rng, spec)
        write_safetensors(os.path.join(case_dir, "sae_weights.safetensors"), tensors, spec["dtype"])
        with open(os.path.join(case_dir, "cfg.json"), "w") as f:
            json.dump(case_cfg(spec, scale), f, indent=2)
        if scale:
            with open(os.path.join(case_dir, "activation_scaler.json"), "w") as f:
                json.dump({"scaling_factor": scale}, f)
        if spec.get("hook_z"):
            acts = acts.reshape((-1,) + tuple(spec["hook_z"]))
        if spec.get("batch"):
            acts = acts.reshape(tuple(spec["batch"]) + acts.shape[1:])
        np.save(os.path.join(case_dir, "acts.npy"), np.ascontiguousarray(acts, dtype="<f4"))
        # The expected output comes from the files just written, through the
        # same path as `reference`.
        f, margin = reference(case_dir, np.load(os.path.join(case_dir, "acts.npy")), case_dir, quiet=True)
        frac = (f > 0).mean()
        summary.append((spec["name"], frac, int((margin < 1e-5).sum())))
    for name, frac, near in summary:
        print(f"{name}: active {100 * frac:.1f} %, near-boundary {near}")
    print(f"{len(summary)} cases in {out_dir}")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    g = sub.add_parser("generate", help="write generated SAELens cases with expected outputs")
    g.add_argument("out_dir")
    g.add_argument("--seed", type=int, default=20241125)
    r = sub.add_parser("reference", help="expected.npy + margin.npy for an existing SAELens dir")
    r.add_argument("sae_dir")
    r.add_argument("acts")
    r.add_argument("out_dir")
    args = ap.parse_args(argv)
    try:
        if args.mode == "generate":
            generate(args.out_dir, args.seed)
        else:
            reference(args.sae_dir, np.load(args.acts), args.out_dir)
    except (OSError, ValueError, KeyError) as e:
        print(f"make_golden.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
