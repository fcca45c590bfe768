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
same folder. Needs only torch (scripts/pickle_state_dict.py writes the
safetensors file itself).
"""
import argparse
import os
import sys

from pickle_state_dict import load_state_dict, write_safetensors


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
    write_safetensors(torch, sd, out, "dictionary_learning ae.pt")
    cfg = os.path.join(os.path.dirname(out), "config.json")
    if not os.path.exists(cfg):
        print(f"note: {cfg} is missing; saemon needs dictionary_learning's config.json beside "
              "ae.safetensors", file=sys.stderr)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
