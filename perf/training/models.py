"""The models, data and recipes of the training benchmark (perf/bench-training.sh)
and of the training regression test (tests/python/test_training.py).

Three recipes, each a model, a data set every Debian system has, an optimizer
and a step count, chosen once (before any codec was tried on them) and then
left alone: a compressed run must match uncompressed at the same settings.

    mlp   classifier: a 3-layer MLP (51 k parameters) on scikit-learn's digits
          (8x8 images, 1257 training and 540 test images), SGD with momentum
          0.9, lr 0.05, batch 32 per rank. Metric: test accuracy (%).
    cnn   classifier: two 3x3 convolutions and two linear layers (38 k
          parameters) on the same digits, SGD with Nesterov momentum 0.9,
          lr 0.05, weight decay 1e-4, batch 32 per rank. Metric: test
          accuracy (%).
    lm    character-level language model: 10 characters of context, 16-wide
          embeddings, two tanh layers of 256 (130 k parameters), on the
          license texts in /usr/share/common-licenses (base-files, on every
          Debian system; 90% train, 10% test), Adam, lr 2e-3, batch 32 per
          rank. Metric: test cross-entropy (nats per character).

Every rank draws its own batches from (seed, step, rank), so a run is the
same whatever the machine's timing, and every rank builds the model from the
same seed, so all start from the same weights.
"""

import glob
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

TEXT_DIR = "/usr/share/common-licenses"


def _digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1234))
    te, tr = perm[:540], perm[540:]
    return x[tr], y[tr], x[te], y[te]


def _text():
    files = sorted(f for f in glob.glob(os.path.join(TEXT_DIR, "*")) if not os.path.islink(f))
    if not files:
        raise RuntimeError("no license texts in %s (Debian's base-files)" % TEXT_DIR)
    s = b"".join(open(f, "rb").read() for f in files).decode("latin-1")
    chars = sorted(set(s))
    idx = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([idx[c] for c in s], dtype=torch.long)
    n = len(data) * 9 // 10
    return data[:n], data[n:], len(chars)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                                 nn.Linear(128, 10))

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 4 * 4, 64)
        self.out = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.c1(x.view(-1, 1, 8, 8)))
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        return self.out(F.relu(self.fc(x.flatten(1))))


class CharLM(nn.Module):
    def __init__(self, vocab, ctx=10, emb=16, hidden=256):
        super().__init__()
        self.ctx = ctx
        self.emb = nn.Embedding(vocab, emb)
        self.h1 = nn.Linear(ctx * emb, hidden)
        self.h2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, x):
        z = torch.tanh(self.h1(self.emb(x).flatten(1)))
        return self.out(torch.tanh(self.h2(z)))


class Recipe:
    """One model's training: ``model``, ``optimizer(params)``, ``batch(rank,
    step)`` (inputs, targets), ``evaluate()`` (the metric), and ``higher``
    (whether a higher metric is better)."""

    def __init__(self, name, seed=0):
        self.name, self.seed = name, seed
        torch.manual_seed(seed)
        if name in ("mlp", "cnn"):
            self.xtr, self.ytr, self.xte, self.yte = _digits()
            self.model = MLP() if name == "mlp" else CNN()
            self.metric, self.higher, self.bs, self.steps = "accuracy", True, 32, 500
        elif name == "lm":
            self.tr, self.te, vocab = _text()
            self.model = CharLM(vocab)
            self.metric, self.higher, self.bs, self.steps = "loss", False, 32, 1000
            ctx = self.model.ctx
            at = torch.arange(0, len(self.te) - ctx - 1, 7)
            self.xte = self.te[at.unsqueeze(1) + torch.arange(ctx)]
            self.yte = self.te[at + ctx]
        else:
            raise ValueError("unknown model %r (mlp, cnn, lm)" % name)

    def optimizer(self, params):
        if self.name == "mlp":
            return torch.optim.SGD(params, lr=0.05, momentum=0.9)
        if self.name == "cnn":
            return torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
        return torch.optim.Adam(params, lr=2e-3)

    def batch(self, rank, step):
        g = torch.Generator().manual_seed((self.seed * 1000003 + step) * 1009 + rank)
        if self.name == "lm":
            ctx = self.model.ctx
            at = torch.randint(0, len(self.tr) - ctx - 1, (self.bs,), generator=g)
            return self.tr[at.unsqueeze(1) + torch.arange(ctx)], self.tr[at + ctx]
        at = torch.randint(0, len(self.ytr), (self.bs,), generator=g)
        return self.xtr[at], self.ytr[at]

    def loss(self, x, y):
        return F.cross_entropy(self.model(x), y)

    def evaluate(self):
        with torch.no_grad():
            out = self.model(self.xte)
            if self.name == "lm":
                return F.cross_entropy(out, self.yte).item()
            return (out.argmax(1) == self.yte).float().mean().item() * 100.0
