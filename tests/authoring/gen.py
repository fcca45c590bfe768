"""Generated data with a planted feature for the rules-from-data tests.

A standard (ReLU) SAE whose latent PLANTED reads a unit direction e; the
positive tokens carry 3·e on top of noise. Some positive rows are copies of
negative rows, so every latent has exact ties across the two sides."""
import json
import os
import struct

import numpy as np

D_IN, D_SAE, PLANTED = 16, 24, 13


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make_sae(work, seed=1):
    g = np.random.default_rng(seed)
    w = (g.standard_normal((D_IN, D_SAE)) / np.sqrt(D_IN)).astype(np.float32)
    e = np.zeros(D_IN, np.float32)
    e[3] = 1.0
    w[:, PLANTED] = e
    b = np.full(D_SAE, -0.3, np.float32)
    b[PLANTED] = -0.5
    sae = os.path.join(work, "sae")
    os.makedirs(sae, exist_ok=True)
    write_safetensors(os.path.join(sae, "sae_weights.safetensors"), {
        "W_enc": w, "W_dec": np.ascontiguousarray(w.T), "b_enc": b, "b_dec": np.zeros(D_IN, np.float32)})
    with open(os.path.join(sae, "cfg.json"), "w") as f:
        json.dump({"d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "architecture": "standard",
                   "apply_b_dec_to_input": False, "normalize_activations": "none",
                   "metadata": {"hook_name": "blocks.0.hook_resid_post", "model_name": "generated"}}, f)
    return sae, e


def make_recording(work, name, e, batch, seq, seed, span_rate=0.03, span_len=(2, 6)):
    """[batch, seq, D_IN] activations and their positive spans (end exclusive)."""
    g = np.random.default_rng(seed)
    x = (g.standard_normal((batch, seq, D_IN)) * 0.6).astype(np.float32)
    mask = np.zeros((batch, seq), np.uint8)
    spans = []
    for s in range(batch):
        t = 0
        while t < seq:
            if g.random() < span_rate:
                n = int(g.integers(span_len[0], span_len[1] + 1))
                end = min(seq, t + n)
                mask[s, t:end] = 1
                spans.append({"stream": s, "start": t, "end": end, "label": "planted"})
                t = end + 1
            else:
                t += 1
    x[mask == 1] += 3.0 * e
    # ties: a few positive rows copy negative rows exactly
    pos = np.argwhere(mask == 1)
    neg = np.argwhere(mask == 0)
    for k in range(min(5, len(pos))):
        ps, pt = pos[k * 3 % len(pos)]
        ns, nt = neg[k * 7 % len(neg)]
        x[ps, pt] = x[ns, nt]
    path = os.path.join(work, name + ".npy")
    np.save(path, x)
    with open(os.path.join(work, name + ".labels.jsonl"), "w") as f:
        for sp in spans:
            f.write(json.dumps(sp) + "\n")
    np.save(os.path.join(work, name + ".mask.npy"), mask)
    return path, mask, spans
