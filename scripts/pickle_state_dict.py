"""Shared by the converters in scripts/: read a PyTorch state dict pickle with
torch.load(weights_only=True) and write tensors as a safetensors file (the
format spec: 8-byte little-endian header length, JSON header padded with
spaces to a multiple of 8, tensors contiguous in name order). Needs only torch."""
import inspect
import json
import os
import struct
import sys

DTYPES = {  # torch dtype name -> safetensors dtype
    "float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64",
    "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL",
}


def load_state_dict(torch, path):
    """name -> tensor from a pickle, refusing anything but tensors."""
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


def tensor_bytes(torch, t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: same bits as int16
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def write_safetensors(torch, tensors, out, source):
    """tensors: name -> tensor. Written atomically (tmp file + rename)."""
    header, chunks, offset = {"__metadata__": {"format": "pt", "source": source}}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
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
    for name in sorted(tensors):
        print(f"  {name}: {header[name]['dtype']} {header[name]['shape']}")
