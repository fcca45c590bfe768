"""The villes character language model (1 layer, d_model 128, 4 heads), written
from ../shared/data/sae/villes-transformer/MODEL.md, so a test can run a real
trained model with the saemon Python producer attached at the SAE's hook.

The hook point of the SAE is the block's output (the final residual stream,
before out_norm): the module `core` below returns exactly that tensor, so a
forward hook on "core" sees what the SAE was trained on.
"""
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class SelfAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.n_heads = n_heads
        self.query_proj = nn.Linear(d_model, d_model, bias=False)
        self.key_proj = nn.Linear(d_model, d_model, bias=False)
        self.value_proj = nn.Linear(d_model, d_model, bias=False)
        self.c_proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        h = self.n_heads
        q = self.query_proj(x).view(b, t, h, d // h).transpose(1, 2)
        k = self.key_proj(x).view(b, t, h, d // h).transpose(1, 2)
        v = self.value_proj(x).view(b, t, h, d // h).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // h)
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, d)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.fc_1 = nn.Linear(d_model, d_ff, bias=False)
        self.fc_2 = nn.Linear(d_ff, d_model, bias=False)
        self.fc_3 = nn.Linear(d_model, d_ff, bias=False)

    def forward(self, x):
        return self.fc_2(F.silu(self.fc_1(x)) * self.fc_3(x))


class Block(nn.Module):
    def __init__(self, d_model, n_heads, d_ff):
        super().__init__()
        self.attention_norm = RMSNorm(d_model)
        self.sa = SelfAttention(d_model, n_heads)
        self.mlp_norm = RMSNorm(d_model)
        self.mlp = MLP(d_model, d_ff)

    def forward(self, x):
        x = x + self.sa(self.attention_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class Core(nn.Module):
    """Positional embedding + blocks; its output is the SAE's hook point."""

    def __init__(self, d_model, n_heads, d_ff, n_layers, max_len):
        super().__init__()
        self.PE = nn.Embedding(max_len, d_model)
        self.layers = nn.ModuleList([Block(d_model, n_heads, d_ff) for _ in range(n_layers)])

    def forward(self, x):
        x = x + self.PE(torch.arange(x.shape[1], device=x.device))
        for layer in self.layers:
            x = layer(x)
        return x


class VillesLM(nn.Module):
    def __init__(self, vocab_size=46, d_model=128, n_heads=4, d_ff=512, n_layers=1, max_len=47):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=0)
        self.core = Core(d_model, n_heads, d_ff, n_layers, max_len)
        self.out_norm = RMSNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.lm_head.weight = self.embedding.weight

    def forward(self, tokens):
        return self.lm_head(self.out_norm(self.core(self.embedding(tokens))))


def vocabulary(villes_txt):
    with open(villes_txt, encoding="utf-8") as f:
        names = [n.strip() for n in f.read().replace(",", "\n").split("\n")]
    names = [n for n in names if len(n) > 2]
    vocab = ["<pad>", "<SOS>", "<EOS>"] + sorted(set("".join(names)))
    return vocab, names


def load(model_dir):
    """The trained model and its vocabulary from the shared folder."""
    vocab, names = vocabulary(os.path.join(model_dir, "villes.txt"))
    model = VillesLM(vocab_size=len(vocab))
    state = torch.load(os.path.join(model_dir, "transformer.pth"), map_location="cpu")
    model.load_state_dict(state)
    model.eval()
    return model, vocab, names


def encode_name(name, vocab):
    return [1] + [vocab.index(c) for c in name] + [2]


@torch.no_grad()
def generate(model, vocab, prompt="", max_len=46, generator=None, temperature=1.0, on_token=None):
    """Sample one name character by character (greedy when temperature is 0).
    Each step runs the model on the whole prefix; `on_token(pos)` is called
    before each forward pass with the position of the newest token."""
    tokens = [1] + [vocab.index(c) for c in prompt]
    while len(tokens) < max_len:
        if on_token:
            on_token(len(tokens) - 1)
        logits = model(torch.tensor([tokens]))[0, -1]
        if temperature == 0:
            nxt = int(logits.argmax())
        else:
            probs = torch.softmax(logits / temperature, -1)
            nxt = int(torch.multinomial(probs, 1, generator=generator))
        tokens.append(nxt)
        if nxt == 2:
            break
    return "".join(vocab[t] for t in tokens[1:] if t > 2), tokens
