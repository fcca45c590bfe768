#!/usr/bin/env python3
"""Write a pickle-only public SAE release as a SAELens folder (cfg.json +
sae_weights.safetensors) holding exactly what SAELens's pretrained loader for
it builds, so saemon loads it as "saelens". saemon itself never unpickles
anything: run this once, on the model side, with your own PyTorch (>= 1.13;
the pickle is read with torch.load(weights_only=True)).

  python3 scripts/convert_pickle_release.py Llama-3.1-8B-Instruct-SAE-l19.pth OUT_DIR
  python3 scripts/convert_pickle_release.py --release deepseek-r1 l19.pt OUT_DIR

Releases (sae_lens/loading/pretrained_sae_loaders.py, get_goodfire_config_from_hf /
get_goodfire_huggingface_loader and get_deepseek_r1_config_from_hf /
deepseek_r1_sae_huggingface_loader):
  goodfire-llama-3.1-8b-l19   Goodfire/Llama-3.1-8B-Instruct-SAE-l19, Llama-3.1-8B-Instruct-SAE-l19.pth
  goodfire-llama-3.3-70b-l50  Goodfire/Llama-3.3-70B-Instruct-SAE-l50, Llama-3.3-70B-Instruct-SAE-l50.pt
  deepseek-r1                 DeepSeek-R1-Distill-Llama-8B SAEs, layer from "l<N>" in the file name
State dict: W_enc = <enc>.weight.T, W_dec = <dec>.weight.T, b_enc = <enc>.bias,
b_dec = <dec>.bias (<enc>/<dec> = encoder_linear/decoder_linear for Goodfire,
encoder/decoder for DeepSeek R1); architecture standard (ReLU),
apply_b_dec_to_input false, normalisation none; hook, model and sizes as the
loader hard-codes them. Tensors keep their stored dtype.
"""
import argparse
import json
import os
import re
import sys

from pickle_state_dict import load_state_dict, write_safetensors

RELEASES = {
    "goodfire-llama-3.1-8b-l19": dict(file="Llama-3.1-8B-Instruct-SAE-l19.pth", prefix="_linear", d_in=4096,
                                      d_sae=65536, model="meta-llama/Llama-3.1-8B-Instruct", layer=19,
                                      dataset="lmsys/lmsys-chat-1m"),
    "goodfire-llama-3.3-70b-l50": dict(file="Llama-3.3-70B-Instruct-SAE-l50.pt", prefix="_linear", d_in=8192,
                                       d_sae=65536, model="meta-llama/Llama-3.3-70B-Instruct", layer=50,
                                       dataset="lmsys/lmsys-chat-1m"),
    "deepseek-r1": dict(file=None, prefix="", d_in=4096, d_sae=4096 * 16,
                        model="deepseek-ai/DeepSeek-R1-Distill-Llama-8B", layer=None, dataset="lmsys/lmsys-chat-1m"),
}


def pick_release(path, name):
    if name:
        if name not in RELEASES:
            sys.exit(f"unknown release {name!r} (known: {', '.join(RELEASES)})")
        return name
    base = os.path.basename(path)
    for key, r in RELEASES.items():
        if r["file"] == base:
            return key
    sys.exit(f"{base}: not a known release file name; pass --release ({', '.join(RELEASES)})")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pickle", help="the release's .pt / .pth file")
    ap.add_argument("out_dir", help="folder to write cfg.json + sae_weights.safetensors into")
    ap.add_argument("--release", help="release name (default: from the file name)")
    ap.add_argument("--shape", nargs=2, type=int, metavar=("D_IN", "D_SAE"),
                    help="accept these sizes instead of the release's (SAELens would refuse a mismatch)")
    ap.add_argument("--force", action="store_true", help="overwrite existing output files")
    args = ap.parse_args(argv)
    key = pick_release(args.pickle, args.release)
    r = dict(RELEASES[key])
    if r["layer"] is None:  # deepseek_r1: re.search(r"l(\d+)", folder_name)
        m = re.search(r"l(\d+)", os.path.basename(args.pickle))
        if not m:
            sys.exit(f"{args.pickle}: no layer number (l<N>) in the file name")
        r["layer"] = int(m.group(1))
    d_in, d_sae = args.shape or (r["d_in"], r["d_sae"])
    cfg_path = os.path.join(args.out_dir, "cfg.json")
    st_path = os.path.join(args.out_dir, "sae_weights.safetensors")
    if not args.force and (os.path.exists(cfg_path) or os.path.exists(st_path)):
        sys.exit(f"{args.out_dir} already holds cfg.json / sae_weights.safetensors (pass --force)")

    import torch  # the user's own PyTorch
    sd = load_state_dict(torch, args.pickle)
    enc, dec = "encoder" + r["prefix"], "decoder" + r["prefix"]
    need = {f"{enc}.weight": (d_sae, d_in), f"{dec}.weight": (d_in, d_sae), f"{enc}.bias": (d_sae,),
            f"{dec}.bias": (d_in,)}
    for name, shape in need.items():
        if name not in sd:
            sys.exit(f"{args.pickle}: missing tensor {name!r} (release {key})")
        if tuple(sd[name].shape) != shape:
            sys.exit(f"{args.pickle}: tensor {name!r} has shape {list(sd[name].shape)}, release {key} "
                     f"expects {list(shape)}")
    tensors = {"W_enc": sd[f"{enc}.weight"].T.contiguous(), "W_dec": sd[f"{dec}.weight"].T.contiguous(),
               "b_enc": sd[f"{enc}.bias"], "b_dec": sd[f"{dec}.bias"]}
    cfg = {"d_in": d_in, "d_sae": d_sae, "dtype": "float32", "architecture": "standard",
           "apply_b_dec_to_input": False, "normalize_activations": "none", "reshape_activations": "none",
           "metadata": {"sae_lens_version": "6.0.0", "model_name": r["model"],
                        "hook_name": f"blocks.{r['layer']}.hook_resid_post", "dataset_path": r["dataset"],
                        "converted_from": f"{key}: {os.path.basename(args.pickle)}"}}
    os.makedirs(args.out_dir, exist_ok=True)
    write_safetensors(torch, tensors, st_path, f"{key} {os.path.basename(args.pickle)}")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)
    print(f"wrote {cfg_path} and {st_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
