#!/usr/bin/python3
"""The villes character LM generating place names while `saemon serve` watches
it, and stops any generation that writes "saint-" (feature 109, the hyphen
after saint/sainte) before the next character.

  saemon serve --sae SHARED/data/sae/villes-transformer/saelens \
      --rules monitors/examples/villes-block.yaml --ring villes --hook core &
  python3 examples/villes_sidecar.py SHARED/data/sae/villes-transformer

SHARED is the reference data folder (../shared next to the repository). Needs
Debian's python3-torch. The model code is tests/sidecar/villes.py, written from
the folder's MODEL.md.
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "producers", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "sidecar"))
import saemon_producer  # noqa: E402
import villes  # noqa: E402


def main():
    model_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared", "data", "sae",
                                                                   "villes-transformer")
    ring = sys.argv[2] if len(sys.argv) > 2 else "villes"
    model, vocab, _ = villes.load(model_dir)
    # the SAE's hook is the output of the module `core`; attach() connects now
    # and fails here (not in the forward pass) if saemon expects another hook
    att = saemon_producer.attach(model, {"core": ring}, stream=0, model_id="villes")
    gen = torch.Generator().manual_seed(1)
    for request, prompt in enumerate(["", "saint-", "la ", "sainte-", ""]):
        state = {"stopped": None}

        def on_token(pos):
            # block before the next token: wait (at most 50 ms) for saemon's
            # verdict on everything published so far
            verdict, fresh = att.verdict_wait(request, wait_us=50_000)
            if verdict >= saemon_producer.VERDICT_BLOCK:
                state["stopped"] = pos
                raise StopIteration
            if not fresh:
                print("  (saemon did not answer within 50 ms: continuing, fail-open)")

        with att.request(request):  # a new sequence on this id, ended on exit
            try:
                name, _ = villes.generate(model, vocab, prompt=prompt, generator=gen, on_token=on_token)
                print("request %d: %r" % (request, name))
            except StopIteration:
                print("request %d: stopped by saemon at position %d (prompt %r)" % (request, state["stopped"], prompt))
    print("status:", att.status())
    att.detach()


if __name__ == "__main__":
    main()
