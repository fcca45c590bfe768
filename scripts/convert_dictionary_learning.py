#!/usr/bin/env python3
"""Write a dictionary_learning checkpoint (ae.pt, a PyTorch pickle) as
ae.safetensors, which saemon loads. saemon itself never unpickles anything:
run this once, on the model side, with your own PyTorch.

  python3 scripts/convert_dictionary_learning.py path/to/trainer_0/ae.pt
  python3 scripts/convert_dictionary_learning.py ae.pt --out other/ae.safetensors --force

The pickle is read with torch.load(weights_only=True) (tensors and plain
containers only, no arbitrary objects). Every tensor of the state dict is
written unchanged, same names, same dtype, same shape (encoder.weight,
decoder.weight, bias / b_dec, r_mag, gate_bias, mag_bias, threshold, k, ...);
saemon maps them the way SAELens's dictionary_learning loader does
(docs/formats.md). Keep config.json (the one with the "trainer" block) in the
same folder. Needs only torch: the safetensors file is written here, following
the format spec (8-byte little-endian header length, JSON header padded with
spaces to a multiple of 8, tensors contiguous in name order).
"""
import argparse
import json
import os
import struct
import sys

DTYPES = {  # torch dtype name -> safetensors dtype
    "float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64",
    "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL",
}


def tensor_bytes(torch, t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: same bits as int16
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def load_state_dict(torch, path):
    import inspect
    if "weights_only" not in inspect.signature(torch.load).parameters:
        sys.exit(f"{path}: this PyTorch has no torch.load(weights_only=True); upgrade to >= 1.13 "
                 "rather than unpickling arbitrary objects")
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not sd:
        sys.exit(f"{path}: expected a state dict (name -> tensor), got {type(sd).__name__}")
    bad = [k for k, v in sd.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        sys.exit(f"{path}: entries that are not tensors: {bad[:5]}")
    return sd


def write_safetensors(torch, sd, out):
    header, chunks, offset = {"__metadata__": {"format": "pt", "source": "dictionary_learning ae.pt"}}, [], 0
    for name in sorted(sd):
        t = sd[name]
        dtype = DTYPES.get(str(t.dtype).replace("torch.", ""))
        if dtype is None:
            sys.exit(f"tensor {name!r}: dtype {t.dtype} has no safetensors equivalent")
        raw = tensor_bytes(torch, t)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)
    os.replace(tmp, out)
    return header


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ae_pt", help="dictionary_learning checkpoint (ae.pt)")
    ap.add_argument("--out", help="output file (default: ae.safetensors beside ae.pt)")
    ap.add_argument("--force", action="store_true", help="overwrite an existing output file")
    args = ap.parse_args(argv)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.ae_pt)), "ae.safetensors")
    if os.path.exists(out) and not args.force:
        sys.exit(f"{out} exists (pass --force to overwrite)")
    import torch  # the user's own PyTorch
    sd = load_state_dict(torch, args.ae_pt)
    header = write_safetensors(torch, sd, out)
    for name, h in header.items():
        if name != "__metadata__":
            print(f"  {name}: {h['dtype']} {h['shape']}")
    cfg = os.path.join(os.path.dirname(out), "config.json")
    if not os.path.exists(cfg):
        print(f"note: {cfg} is missing; saemon needs dictionary_learning's config.json beside "
              "ae.safetensors", file=sys.stderr)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
