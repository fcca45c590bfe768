"""saemon_producer.Tap on the villes model compiled with TorchScript (issue 21
items 11, 13): under torch.jit.script and torch.jit.trace a forward hook on
the hook module never fires (shown), the tap does. Checked against a real
`saemon serve` with the villes SAE and the "saint-" blocking rule:
  * the rows the tap publishes equal the eager model's hook output;
  * saemon receives every one of them, at the positions given;
  * the "saint-" generations get a block verdict right after the hyphen
    (tap.verdict(stream, wait_us=...)).
Needs ../shared (the trained model and SAE) and python3-torch; skips otherwise.
usage: test_tap_torchscript.py SAEMON_CLI SOURCE_DIR [SHARED_DIR]
"""
import os
import shutil
import sys
import tempfile
import warnings

try:
    import torch
except ImportError:
    print("SKIP: PyTorch is not installed (Debian: python3-torch; scripts/install-deps.sh installs it)")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import villes  # noqa: E402
from serve_harness import Serve, fail  # noqa: E402


def main():
    cli, source = sys.argv[1], sys.argv[2]
    shared = sys.argv[3] if len(sys.argv) > 3 else os.environ.get("SAEMON_SHARED_DIR", "")
    mdir = os.path.join(shared, "data", "sae", "villes-transformer") if shared else ""
    if not mdir or not os.path.isdir(mdir):
        print("SKIP: ../shared/data/sae/villes-transformer is absent (the trained villes model and SAE)")
        sys.exit(77)
    sys.path.insert(0, os.path.join(source, "producers", "python"))
    import saemon_producer

    warnings.simplefilter("ignore")  # TracerWarnings about the model's own Python control flow
    work = tempfile.mkdtemp(prefix="saemon-tap-")
    ring = "tap%d" % os.getpid()
    try:
        rules = os.path.join(work, "rules.yaml")
        with open(rules, "w") as f:
            f.write("version: 1\nrules:\n  - name: saint\n    severity: critical\n    action: block\n"
                    "    condition: {feature: 109, above: 1.0}\n")
        srv = Serve(cli, ["--sae", os.path.join(mdir, "saelens"), "--rules", rules, "--ring", ring, "--hook", "core",
                          "--metrics", "127.0.0.1:0"], os.path.join(work, "serve.log"))
        model, vocab, _ = villes.load(mdir)
        eager_core = model.core
        hook_calls = []
        tap = saemon_producer.Tap(ring, hook="core", d_in=128, max_tokens=64, model_id="villes-torchscript")
        model.core = torch.nn.Sequential(eager_core, tap)
        example = torch.tensor([villes.encode_name("saint-denis", vocab)[:-1]])
        with torch.no_grad():
            compiled = {"script": torch.jit.script(model), "trace": torch.jit.trace(model, example)}
        # the forward hook a user would register, on the module the SAE watches
        eager_core.register_forward_hook(lambda m, i, o: hook_calls.append(1))

        published, blocked, stream = 0, {}, 0
        for mode, cmodel in compiled.items():
            for prompt in ["saint-", "", "sainte-", "la "]:
                stream += 1
                tokens = [1] + [vocab.index(c) for c in prompt]
                gen = torch.Generator().manual_seed(stream)
                with torch.no_grad():
                    while len(tokens) < 40:
                        logits = cmodel(torch.tensor([tokens]))[0, -1]
                        # the host publishes what the graph staged; the prefix is
                        # recomputed each pass, the tap sends the new positions only
                        rows = tap.staging[:int(tap.staged)].clone()
                        ref = eager_core(model.embedding(torch.tensor([tokens])))[0]
                        if not torch.allclose(rows, ref, atol=1e-5, rtol=1e-5):
                            fail("%s: staged rows differ from the eager hook output by %g"
                                 % (mode, float((rows - ref).abs().max())))
                        published += tap.publish(stream)
                        if tap.verdict(stream, wait_us=5_000_000) == saemon_producer.VERDICT_BLOCK:
                            blocked[stream] = (mode, prompt, len(tokens))
                            break
                        nxt = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=gen))
                        tokens.append(nxt)
                        if nxt == 2:
                            break
                tap.end_stream(stream)
        st = tap.status()
        if st["errors"]:
            fail("tap errors: %r" % st)
        srv.wait_value("saemon_tokens_received_total", published, timeout=60)
        if srv.value("saemon_tokens_received_total") != published:
            fail("saemon received %s rows, the tap published %d" % (srv.value("saemon_tokens_received_total"),
                                                                     published))
        saint = {s for s, (_, p, _) in blocked.items() if p.startswith("saint")}
        if len(saint) < 3:
            fail("expected the saint-/sainte- generations blocked, got %r" % blocked)
        for s, (mode, prompt, at) in blocked.items():
            if prompt.startswith("saint") and at != len(prompt) + 1:
                fail("%s %r: blocked at position %d, the hyphen is at %d" % (mode, prompt, at - 1, len(prompt)))
        tap.close()
        rc, log = srv.stop()
        if rc != 0:
            fail("saemon serve exited %d:\n%s" % (rc, log))
        print("ok: tap published %d rows under script and trace, saemon received all, %d generations blocked "
              "right after the hyphen" % (published, len(blocked)))
        # The hook (the loop above also ran the eager module for reference): count compiled runs alone
        hook_calls.clear()
        with torch.no_grad():
            for cmodel in compiled.values():
                cmodel(example)
        if hook_calls:
            fail("the forward hook fired %d times under TorchScript (expected never)" % len(hook_calls))
        with torch.no_grad():
            model(example)  # eager: the hook fires
        if not hook_calls:
            fail("the forward hook did not fire in eager mode either: the check is void")
        print("ok: a forward hook on 'core' fires in eager mode and never under torch.jit.script/trace")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
