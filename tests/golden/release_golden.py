#!/usr/bin/python3
"""Golden cases for the public-release formats, with an independent numpy
re-implementation of what SAELens's pretrained loaders build from them.

  release_golden.py generate OUT_DIR [--shared SHARED_DIR] [--seed S]

Writes one directory per case under OUT_DIR/<case>/: the SAE folder in the
release's own layout (sae/..., nested where the naming carries meaning),
acts.npy, expected.npy, margin.npy and case.json (what saemon_dict_open
must report: format, architecture, shapes, hook, model, layer, width and L0
tags, folded factor, dead-feature count). Cases built from the real SAEs in
SHARED_DIR/data/sae are added when those files exist.

The loader formulas (sae_lens/loading/pretrained_sae_loaders.py,
decoderesearch/SAELens@e05f0441; docs/formats.md):
  gemma_3:        W_enc = w_enc, W_dec = w_dec, b_enc, b_dec, threshold;
                  jumprelu, apply_b_dec_to_input False, normalisation none
  llama_scope:    W_enc = encoder.weight.T, W_dec = decoder.weight.T,
                  b_enc = encoder.bias, b_dec = decoder.bias,
                  s = sqrt(d_model) / dataset_average_activation_norm.in,
                  threshold = ones(d_sae) * jump_relu_threshold * s, then
                  from_pretrained folds s (W_enc *= s, W_dec /= s, b_dec /= s)
  llama_scope_r1: as llama_scope, threshold = exp(log_jumprelu_threshold),
                  d_sae = d_model * expansion_factor, fold s
  dictionary_learning_1: W_enc = W_enc | encoder.weight.T,
                  W_dec = W_dec | decoder.weight.T, b_dec = b_dec | bias |
                  decoder_bias, b_enc = encoder.bias | b_enc, b_mag = mag_bias,
                  b_gate = gate_bias, r_mag, threshold (scalar broadcast);
                  AutoEncoder standard, GatedAutoEncoder gated,
                  AutoEncoderTopK topk(k), MatryoshkaBatchTopKSAE jumprelu;
                  apply_b_dec_to_input True
  SAELens JumpReLU training checkpoint: threshold = exp(log_threshold)
Encode: make_golden.encode (SAELens sae.py, float64).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_golden as mg  # noqa: E402  (encode, topk margins, bf16 helpers)

# ---------------------------------------------------------------- safetensors
# Own reader/writer: per-tensor dtypes, integer and rank-0 tensors.

DT = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "BF16": "<u2"}


def write_st(path, tensors):
    """tensors: list of (name, dtype, array) in file order."""
    header, chunks, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, dtype, a in tensors:
        a = np.asarray(a)
        if dtype == "BF16":
            raw = mg.f32_to_bf16_bits(a.astype(np.float32)).astype("<u2").tobytes()
        else:
            raw = np.ascontiguousarray(a).astype(DT[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def read_st(path):
    """name -> float64 array (integers too)."""
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    data, out = blob[8 + n:], {}
    for name, m in header.items():
        b, e = m["data_offsets"]
        raw = np.frombuffer(data[b:e], dtype=DT[m["dtype"]]).reshape(m["shape"])
        out[name] = mg.bf16_bits_to_f64(raw) if m["dtype"] == "BF16" else raw.astype(np.float64)
    return out


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)


# ---------------------------------------------------------------- the SAELens loaders, in numpy

def load_gemma_3(sae_dir):
    raw = read_st(os.path.join(sae_dir, "params.safetensors"))
    w = {"W_enc": raw["w_enc"], "W_dec": raw["w_dec"], "b_enc": raw["b_enc"], "b_dec": raw["b_dec"],
         "threshold": raw["threshold"]}
    return {"architecture": "jumprelu", "apply_b_dec_to_input": False}, w


def _llama_scope_common(sae_dir, hp, sd, threshold):
    d_in = hp["d_model"]
    s = d_in ** 0.5 / hp["dataset_average_activation_norm"]["in"]
    w = {"W_enc": sd["encoder.weight"].T, "W_dec": sd["decoder.weight"].T, "b_enc": sd["encoder.bias"],
         "b_dec": sd["decoder.bias"], "threshold": threshold(s)}
    # SAE.from_pretrained: fold_activation_norm_scaling_factor(s)
    w["W_enc"] = w["W_enc"] * s
    w["W_dec"] = w["W_dec"] / s
    w["b_dec"] = w["b_dec"] / s
    return {"architecture": "jumprelu", "apply_b_dec_to_input": False}, w, s


def load_llama_scope(sae_dir):
    hp = json.load(open(os.path.join(sae_dir, "hyperparams.json")))
    sd = read_st(os.path.join(sae_dir, "checkpoints", "final.safetensors"))
    d_sae = hp["d_sae"]
    return _llama_scope_common(sae_dir, hp, sd, lambda s: np.ones(d_sae) * (hp["jump_relu_threshold"] * s))


def load_llama_scope_r1(sae_dir):
    hp = json.load(open(os.path.join(sae_dir, "config.json")))
    sd = read_st(os.path.join(sae_dir, "sae_weights.safetensors"))
    return _llama_scope_common(sae_dir, hp, sd, lambda s: np.exp(sd["log_jumprelu_threshold"]))


def load_dictionary_learning(sae_dir):
    trainer = json.load(open(os.path.join(sae_dir, "config.json")))["trainer"]
    enc = read_st(os.path.join(sae_dir, "ae.safetensors"))
    w = {"W_enc": enc["W_enc"] if "W_enc" in enc else enc["encoder.weight"].T,
         "W_dec": enc["W_dec"] if "W_dec" in enc else enc["decoder.weight"].T,
         "b_dec": enc.get("b_dec", enc.get("bias", enc.get("decoder_bias")))}
    for src, dst in (("encoder.bias", "b_enc"), ("b_enc", "b_enc"), ("mag_bias", "b_mag"),
                     ("gate_bias", "b_gate"), ("r_mag", "r_mag")):
        if src in enc:
            w[dst] = enc[src]
    if "threshold" in enc:
        t = enc["threshold"]
        w["threshold"] = np.full(w["W_enc"].shape[1], float(t)) if t.ndim == 0 else t
    cls = trainer["dict_class"]
    cfg = {"architecture": {"GatedAutoEncoder": "gated", "MatryoshkaBatchTopKSAE": "jumprelu"}.get(cls, "standard"),
           "apply_b_dec_to_input": True}
    if cls == "AutoEncoderTopK":  # activation_fn topk + kwargs -> handle_pre_6_0_config -> topk
        cfg.update(architecture="topk", k=trainer["k"], rescale_acts_by_decoder_norm=False)
    return cfg, w


def load_saelens_log_threshold(sae_dir):
    cfg = json.load(open(os.path.join(sae_dir, "cfg.json")))
    sd = read_st(os.path.join(sae_dir, "sae_weights.safetensors"))
    sd["threshold"] = np.exp(sd.pop("log_threshold"))  # process_state_dict_for_loading
    return {"architecture": cfg["architecture"], "apply_b_dec_to_input": cfg["apply_b_dec_to_input"]}, sd


LOADERS = {"gemmascope2": load_gemma_3, "llamascope": load_llama_scope, "llamascope_r1": load_llama_scope_r1,
           "dictionary_learning": load_dictionary_learning, "saelens": load_saelens_log_threshold}


def reference(case_dir, info):
    loaded = LOADERS[info["format"]](os.path.join(case_dir, info["sae"]))
    cfg, w = loaded[0], loaded[1]
    cfg = dict(cfg, normalize_activations="none")
    acts = np.load(os.path.join(case_dir, "acts.npy")).astype(np.float64)
    f, margin = mg.encode(acts.reshape(-1, w["W_enc"].shape[0]), cfg, w)
    np.save(os.path.join(case_dir, "expected.npy"), f.astype("<f4"))
    np.save(os.path.join(case_dir, "margin.npy"), margin.astype("<f4"))
    if len(loaded) == 3:
        info["folded_scaling_factor"] = loaded[2]
    return f, margin


# ---------------------------------------------------------------- generated weights

def rand_sae(rng, d_in, d_sae, n, norm=1.0):
    """Unit decoder rows, encoder a noisy transpose, activations = sparse
    mixtures of decoder rows scaled to mean norm `norm`."""
    W_dec = rng.standard_normal((d_sae, d_in))
    W_dec /= np.linalg.norm(W_dec, axis=1, keepdims=True)
    W_enc = W_dec.T * rng.uniform(0.6, 1.4, size=d_sae) + 0.15 * rng.standard_normal((d_in, d_sae)) / np.sqrt(d_in)
    coef = rng.exponential(1.0, size=(n, d_sae)) * (rng.random((n, d_sae)) < 0.1)
    x = coef @ W_dec + 0.05 * rng.standard_normal((n, d_in))
    x *= norm / np.mean(np.linalg.norm(x, axis=1))
    return W_enc, W_dec, x.astype(np.float32).astype(np.float64)


def bias_for_rate(rng, pre, target):
    """b such that pre + b exceeds `target` on 5-30 % of rows per latent."""
    rate = rng.uniform(0.05, 0.3, size=pre.shape[1])
    q = np.array([np.quantile(pre[:, j], 1.0 - rate[j]) for j in range(pre.shape[1])])
    return target - q + 0.01 * rng.standard_normal(pre.shape[1])


def gemma_scope_2(rng, kind, folder, d_in, d_sae, dtype, model):
    W_enc, W_dec, x = rand_sae(rng, d_in, d_sae, 70)
    thr = rng.uniform(0.05, 0.5, size=d_sae)
    b_enc = bias_for_rate(rng, x @ W_enc, thr)
    b_dec = 0.1 * rng.standard_normal(d_in)
    files = {"params.safetensors": [("b_dec", dtype, b_dec), ("b_enc", dtype, b_enc), ("threshold", dtype, thr),
                                    ("w_dec", dtype, W_dec), ("w_enc", dtype, W_enc)]}
    cfg = {"architecture": "jump_relu", "model_name": model, "hf_hook_point_in": "model.layers.x.output",
           "hf_hook_point_out": "model.layers.x.output", "width": d_sae, "l0": 20, "type": "sae"}
    return f"sae/{kind}/{folder}", files, {"config.json": cfg}, x


def llama_scope(rng, folder, d_in, d_sae, dtype, hook, avg_norm):
    s = d_in ** 0.5 / avg_norm
    W_enc, W_dec, x = rand_sae(rng, d_in, d_sae, 70, norm=avg_norm)
    jrt = float(rng.uniform(0.1, 0.4))
    b_enc = bias_for_rate(rng, (x * s) @ W_enc, jrt * s)  # SAELens: h = x.(s W_enc) + b_enc vs jrt*s
    files = {"checkpoints/final.safetensors": [
        ("decoder.bias", dtype, 0.1 * rng.standard_normal(d_in)), ("decoder.weight", dtype, W_dec.T),
        ("encoder.bias", dtype, b_enc), ("encoder.weight", dtype, W_enc.T)]}
    hp = {"d_model": d_in, "d_sae": d_sae, "hook_point_in": hook, "hook_point_out": hook, "act_fn": "jumprelu",
          "jump_relu_threshold": jrt, "norm_activation": "dataset-wise",
          "dataset_average_activation_norm": {"in": avg_norm, "out": avg_norm}, "top_k": 50}
    return f"sae/{folder}", files, {"hyperparams.json": hp}, x


def llama_scope_r1(rng, folder, d_in, expansion, hook, avg_norm):
    d_sae, s = d_in * expansion, d_in ** 0.5 / avg_norm
    W_enc, W_dec, x = rand_sae(rng, d_in, d_sae, 70, norm=avg_norm)
    thr = rng.uniform(0.1, 0.6, size=d_sae)
    b_enc = bias_for_rate(rng, (x * s) @ W_enc, thr)
    files = {"sae_weights.safetensors": [
        ("decoder.bias", "F32", 0.1 * rng.standard_normal(d_in)), ("decoder.weight", "F32", W_dec.T),
        ("encoder.bias", "F32", b_enc), ("encoder.weight", "F32", W_enc.T),
        ("log_jumprelu_threshold", "F32", np.log(thr))]}
    cfg = {"d_model": d_in, "expansion_factor": expansion, "hook_point_in": hook, "hook_point_out": hook,
           "act_fn": "jumprelu", "dataset_average_activation_norm": {"in": avg_norm, "out": avg_norm}}
    return f"sae/{folder}", files, {"config.json": cfg}, x


def dictionary_learning(rng, dict_class, d_in, d_sae, layer, k=None):
    W_enc, W_dec, x = rand_sae(rng, d_in, d_sae, 70)
    b_dec = 0.1 * rng.standard_normal(d_in)
    x = x + b_dec
    pre = (x - b_dec) @ W_enc
    if dict_class == "AutoEncoder":
        t = [("bias", "F32", b_dec), ("decoder.weight", "F32", W_dec.T), ("encoder.bias", "F32", bias_for_rate(rng, pre, 0.0)),
             ("encoder.weight", "F32", W_enc.T)]
    elif dict_class == "GatedAutoEncoder":
        t = [("decoder_bias", "F32", b_dec), ("decoder.weight", "F32", W_dec.T), ("encoder.weight", "F32", W_enc.T),
             ("gate_bias", "F32", bias_for_rate(rng, pre, 0.0)), ("mag_bias", "F32", rng.uniform(-0.2, 0.4, d_sae)),
             ("r_mag", "F32", 0.3 * rng.standard_normal(d_sae))]
    elif dict_class == "AutoEncoderTopK":
        t = [("b_dec", "BF16", b_dec), ("decoder.weight", "BF16", W_dec.T), ("encoder.bias", "BF16", 0.1 * rng.standard_normal(d_sae)),
             ("encoder.weight", "BF16", W_enc.T), ("k", "I64", np.array(k)), ("threshold", "F32", np.array(0.25))]
    else:  # MatryoshkaBatchTopKSAE: W_enc [d_in, d_sae], scalar threshold
        thr = 0.3
        t = [("W_dec", "F32", W_dec), ("W_enc", "F32", W_enc), ("b_dec", "F32", b_dec),
             ("b_enc", "F32", bias_for_rate(rng, pre, thr)), ("threshold", "F32", np.array(thr)),
             ("k", "I64", np.array(8)), ("group_sizes", "I64", np.array([d_sae // 2, d_sae - d_sae // 2]))]
    trainer = {"dict_class": dict_class, "trainer_class": "x", "activation_dim": d_in, "dict_size": d_sae,
               "layer": layer, "lm_name": "EleutherAI/pythia-70m-deduped", "submodule_name": f"resid_post_layer_{layer}"}
    if k:
        trainer["k"] = k
    return "sae/trainer_0", {"ae.safetensors": t}, {"config.json": {"trainer": trainer, "buffer": {"ctx_len": 128}}}, x


def saelens_log_threshold(rng, d_in, d_sae):
    W_enc, W_dec, x = rand_sae(rng, d_in, d_sae, 70)
    thr = rng.uniform(0.05, 0.5, size=d_sae)
    b_dec = 0.1 * rng.standard_normal(d_in)
    x = x + b_dec
    b_enc = bias_for_rate(rng, (x - b_dec) @ W_enc, thr)
    sparsity = np.log10(rng.uniform(1e-5, 0.2, size=d_sae) + 1e-10)
    dead = rng.choice(d_sae, size=5, replace=False)
    sparsity[dead] = np.log10(0.0 + 1e-10)
    files = {"sae_weights.safetensors": [("W_dec", "F32", W_dec), ("W_enc", "F32", W_enc), ("b_dec", "F32", b_dec),
                                         ("b_enc", "F32", b_enc), ("log_threshold", "F32", np.log(thr))],
             "sparsity.safetensors": [("sparsity", "F32", sparsity)]}
    cfg = {"d_in": d_in, "d_sae": d_sae, "dtype": "float32", "architecture": "jumprelu", "apply_b_dec_to_input": True,
           "normalize_activations": "none", "metadata": {"sae_lens_version": "6.5.0", "hook_name": "blocks.2.hook_resid_post",
                                                         "model_name": "toy"}}
    return "sae/logthr", files, {"cfg.json": cfg}, x, len(dead)


# ---------------------------------------------------------------- the real SAEs, re-packed

def real_cases(shared):
    """Real trained weights (shared/data/sae) written in the release layouts."""
    root = os.path.join(shared, "data", "sae")
    out = []
    lc = os.path.join(root, "listcomp-toy")
    if os.path.exists(os.path.join(lc, "saelens", "sae_weights.safetensors")):
        w = read_st(os.path.join(lc, "saelens", "sae_weights.safetensors"))
        acts = np.load(os.path.join(lc, "acts.npy")).astype(np.float64)
        f32 = lambda a: a.astype(np.float32)  # noqa: E731
        # Gemma Scope 2 has no input centring: fold b_dec into b_enc (in float64, stored F32).
        b_enc_folded = w["b_enc"] - w["b_dec"] @ w["W_enc"]
        out.append(("real-listcomp-gemmascope2", "sae/resid_post/layer_0_width_100_l0_small",
                    {"params.safetensors": [("b_dec", "F32", f32(w["b_dec"])), ("b_enc", "F32", f32(b_enc_folded)),
                                            ("threshold", "F32", f32(w["threshold"])), ("w_dec", "F32", f32(w["W_dec"])),
                                            ("w_enc", "F32", f32(w["W_enc"]))]},
                    {"config.json": {"architecture": "jump_relu", "model_name": "gemma-v3-270m-pt"}}, acts))
        thr = w["threshold"]
        assert np.all(thr == thr[0])
        out.append(("real-listcomp-matryoshka", "sae/trainer_0",
                    {"ae.safetensors": [("W_dec", "F32", w["W_dec"]), ("W_enc", "F32", w["W_enc"]), ("b_dec", "F32", w["b_dec"]),
                                        ("b_enc", "F32", w["b_enc"]), ("threshold", "F32", np.array(thr[0]))]},
                    {"config.json": {"trainer": {"dict_class": "MatryoshkaBatchTopKSAE", "activation_dim": 64,
                                                 "dict_size": 100, "layer": 0, "lm_name": "list-comp/2layer"}}}, acts))
        # Llama Scope layouts: SAELens folds s = sqrt(d)/norm into W_enc and scales the scalar
        # threshold by s (R1: threshold = exp(log_jumprelu_threshold), unscaled), so store
        # W_enc / s and jump_relu_threshold = theta / s; b_dec folded into b_enc as above.
        norm = 11.0
        s = 64 ** 0.5 / norm
        hp = {"d_model": 64, "d_sae": 100, "hook_point_in": "blocks.0.hook_resid_post",
              "hook_point_out": "blocks.0.hook_resid_post", "jump_relu_threshold": float(thr[0]) / s,
              "dataset_average_activation_norm": {"in": norm, "out": norm}}
        llama = [("decoder.bias", "F32", f32(w["b_dec"] * s)), ("decoder.weight", "F32", f32(w["W_dec"].T * s)),
                 ("encoder.bias", "F32", f32(b_enc_folded)), ("encoder.weight", "F32", f32(w["W_enc"].T / s))]
        out.append(("real-listcomp-llamascope", "sae/Llama3_1-8B-Base-L0R-1x",
                    {"checkpoints/final.safetensors": llama}, {"hyperparams.json": hp}, acts))
        # R1: d_sae = d_model * expansion_factor, so the first 64 of the 100 real features.
        r1 = dict(hp, expansion_factor=1)
        del r1["d_sae"], r1["jump_relu_threshold"]
        first = [("decoder.bias", "F32", f32(w["b_dec"] * s)), ("decoder.weight", "F32", f32(w["W_dec"][:64].T * s)),
                 ("encoder.bias", "F32", f32(b_enc_folded[:64])), ("encoder.weight", "F32", f32(w["W_enc"][:, :64].T / s)),
                 ("log_jumprelu_threshold", "F32", np.log(f32(thr[:64])))]
        out.append(("real-listcomp-llamascope_r1", "sae/L0R", {"sae_weights.safetensors": first},
                    {"config.json": r1}, acts))
        out.append(("real-listcomp-logthr", "sae/logthr",
                    {"sae_weights.safetensors": [("W_dec", "F32", w["W_dec"]), ("W_enc", "F32", w["W_enc"]),
                                                 ("b_dec", "F32", w["b_dec"]), ("b_enc", "F32", w["b_enc"]),
                                                 ("log_threshold", "F32", np.log(f32(thr)).astype(np.float32))]},
                    {"cfg.json": json.load(open(os.path.join(lc, "saelens", "cfg.json")))}, acts))
    vt = os.path.join(root, "villes-transformer")
    if os.path.exists(os.path.join(vt, "saelens", "sae_weights.safetensors")):
        w = read_st(os.path.join(vt, "saelens", "sae_weights.safetensors"))
        acts = np.load(os.path.join(vt, "acts.npy")).astype(np.float64)
        d_in, d_sae = w["W_enc"].shape
        out.append(("real-villes-autoencoder", "sae/trainer_0",
                    {"ae.safetensors": [("bias", "F32", w["b_dec"]), ("decoder.weight", "F32", w["W_dec"].T),
                                        ("encoder.bias", "F32", w["b_enc"]), ("encoder.weight", "F32", w["W_enc"].T)]},
                    {"config.json": {"trainer": {"dict_class": "AutoEncoder", "activation_dim": d_in, "dict_size": d_sae,
                                                 "layer": 0, "lm_name": "alxndrTL/villes"}}}, acts))
    return out


# ---------------------------------------------------------------- driver

def write_case(out_dir, name, sae_rel, files, configs, acts, info):
    case = os.path.join(out_dir, name)
    sae = os.path.join(case, sae_rel)
    for fname, tensors in files.items():
        write_st(os.path.join(sae, fname), tensors)
    for fname, obj in configs.items():
        write_json(os.path.join(sae, fname), obj)
    np.save(os.path.join(case, "acts.npy"), np.ascontiguousarray(acts, dtype="<f4"))
    info["sae"] = sae_rel
    f, margin = reference(case, info)
    write_json(os.path.join(case, "case.json"), info)
    return f, margin


def generate(out_dir, shared, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(out_dir, exist_ok=True)
    cases = [
        ("gs2-resid", gemma_scope_2(rng, "resid_post", "layer_3_width_1k_l0_medium", 24, 1024, "F32", "gemma-v3-1b-pt"),
         dict(format="gemmascope2", arch="jumprelu", layer=3, width_tag="1k", l0_tag="medium",
              hook_name="blocks.3.hook_resid_post", model_name="google/gemma-3-1b-pt")),
        ("gs2-attn", gemma_scope_2(rng, "attn_out_all", "layer_11_width_256_l0_small", 20, 256, "BF16", "google/gemma-3-4b-it"),
         dict(format="gemmascope2", arch="jumprelu", layer=11, width_tag="256", l0_tag="small",
              hook_name="blocks.11.hook_attn_out", model_name="google/gemma-3-4b-it")),
        ("gs2-mlp", gemma_scope_2(rng, "mlp_out", "layer_0_width_2k_l0_big", 16, 2048, "F16", "gemma-v3-270m-pt"),
         dict(format="gemmascope2", arch="jumprelu", layer=0, width_tag="2k", l0_tag="big",
              hook_name="blocks.0.hook_mlp_out", model_name="google/gemma-3-270m-pt")),
        ("llamascope-bf16", llama_scope(rng, "Llama3_1-8B-Base-L5R-8x", 16, 128, "BF16", "blocks.5.hook_resid_post", 7.5),
         dict(format="llamascope", arch="jumprelu", layer=5, width_tag="8x", l0_tag="",
              hook_name="blocks.5.hook_resid_post", model_name="meta-llama/Llama-3.1-8B")),
        ("llamascope-f32", llama_scope(rng, "Llama3_1-8B-Base-L12M-32x", 8, 256, "F32", "blocks.12.hook_mlp_out", 0.9),
         dict(format="llamascope", arch="jumprelu", layer=12, width_tag="32x", l0_tag="",
              hook_name="blocks.12.hook_mlp_out", model_name="meta-llama/Llama-3.1-8B")),
        ("llamascope-r1", llama_scope_r1(rng, "400M-Slimpajama-400M-OpenR1-Math-220k/L9R", 12, 8, "blocks.9.hook_resid_post", 21.0),
         dict(format="llamascope_r1", arch="jumprelu", layer=9, width_tag="8x", l0_tag="",
              hook_name="blocks.9.hook_resid_post", model_name="meta-llama/Llama-3.1-8B")),
        ("dl-autoencoder", dictionary_learning(rng, "AutoEncoder", 18, 72, 3),
         dict(format="dictionary_learning", arch="standard", layer=3, width_tag="72", l0_tag="",
              hook_name="blocks.3.hook_resid_post", model_name="pythia-70m-deduped")),
        ("dl-gated", dictionary_learning(rng, "GatedAutoEncoder", 14, 60, 1),
         dict(format="dictionary_learning", arch="gated", layer=1, width_tag="60", l0_tag="",
              hook_name="blocks.1.hook_resid_post", model_name="pythia-70m-deduped")),
        ("dl-topk", dictionary_learning(rng, "AutoEncoderTopK", 20, 80, 4, k=6),
         dict(format="dictionary_learning", arch="topk", k=6, layer=4, width_tag="80", l0_tag="",
              hook_name="blocks.4.hook_resid_post", model_name="pythia-70m-deduped")),
        ("dl-matryoshka", dictionary_learning(rng, "MatryoshkaBatchTopKSAE", 22, 90, 2),
         dict(format="dictionary_learning", arch="jumprelu", layer=2, width_tag="90", l0_tag="",
              hook_name="blocks.2.hook_resid_post", model_name="pythia-70m-deduped")),
    ]
    summary = []
    for name, (sae_rel, files, configs, acts), info in cases:
        f, m = write_case(out_dir, name, sae_rel, files, configs, acts, info)
        summary.append((name, f, m))
    sae_rel, files, configs, acts, n_dead = saelens_log_threshold(rng, 26, 110)
    f, m = write_case(out_dir, "saelens-logthr-sparsity", sae_rel, files, configs, acts,
                      dict(format="saelens", arch="jumprelu", n_dead_features=n_dead, layer=2,
                           hook_name="blocks.2.hook_resid_post", model_name="toy"))
    summary.append(("saelens-logthr-sparsity", f, m))
    if shared:
        fmt = {"gemmascope2": "gemmascope2", "matryoshka": "dictionary_learning", "logthr": "saelens",
               "autoencoder": "dictionary_learning", "llamascope": "llamascope", "llamascope_r1": "llamascope_r1"}
        for name, sae_rel, files, configs, acts in real_cases(shared):
            info = {"format": fmt[name.split("-")[-1]], "real": True}
            f, m = write_case(out_dir, name, sae_rel, files, configs, acts, info)
            summary.append((name, f, m))
    for name, f, m in summary:
        print(f"{name}: {f.shape[0]} rows x {f.shape[1]}, active {100 * (f > 0).mean():.1f} %, "
              f"near-boundary {(m < 1e-5).sum()}")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    g = sub.add_parser("generate")
    g.add_argument("out_dir")
    g.add_argument("--shared", default=None)
    g.add_argument("--seed", type=int, default=20261129)
    args = ap.parse_args(argv)
    generate(args.out_dir, args.shared, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
