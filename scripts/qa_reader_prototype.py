"""Prototype of the QA span reader (what strategies/reader.py became), kept for the README's GPU figures.

Frozen-feature QA readers on cached MiniLM token states (all layers) of XQuAD-en. Each argument is
LAYERS:HIDDEN:ATTEND:LR:EPOCHS, e.g. `python scripts/qa_reader_prototype.py weighted-all:128:1:1e-3:30`.
Env: PROTO_MODEL (default minilm), PROTO_WORK (scratch folder), TUNEBENCH_DATA_DIR.
"""

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tunebench.data import DataConfig
from tunebench.runner import RunInputs
from tunebench.tasks import get_task
from tunebench.tasks.token_classification.tagger import SequenceBatches, Tagger, WordSequences
from tunebench.training.batching import TokenBatches
from tunebench.training.config import TrainConfig
from tunebench.training.loop import fit, predict_logits
from tunebench.training.optim import decay_groups

DEV = torch.device("cuda" if torch.cuda.is_available() else "cpu")
MODEL = os.environ.get("PROTO_MODEL", "minilm")
WORK = Path(os.environ.get("PROTO_WORK", "/tmp/proto"))
WORK.mkdir(parents=True, exist_ok=True)
task = get_task("question-answering")
bundle = task.load(DataConfig(data="xquad-en"))
if os.environ.get("PROTO_SMALL"):
    bundle.train = bundle.train.head(60)
    bundle.dev = bundle.dev.head(20)
    bundle.test = bundle.test.head(20)
bb = task.load_backbone(MODEL, False, "auto")
ctx = RunInputs(task, bb, bundle, WORK / "out", min(384, bb.max_length))


def states(split):
    enc = ctx.enc[split]
    out = [None] * len(enc.rows)
    seg = [None] * len(enc.rows)
    data = TokenBatches(enc.rows, None, 0)
    m = bb.model.to(DEV).eval()
    t = time.time()
    with torch.no_grad():
        for idx, batch in data.eval_batches(64):
            batch = {k: v.to(DEV) for k, v in batch.items()}
            hs = torch.stack(m(**batch, output_hidden_states=True).hidden_states, 2).half().cpu().numpy()
            for j, i in enumerate(idx):
                n = len(enc.rows[i]["input_ids"])
                out[i] = hs[j, :n]
                seg[i] = np.asarray([o is not None for o in enc.meta["features"][i]["offsets"]], np.int64)[:n]
    print(split, "extract", round(time.time() - t, 1), flush=True)
    return np.concatenate(out), np.array([len(o) for o in out]), np.concatenate(seg)


S = {s: states(s) for s in ("train", "dev", "test")}


class L:
    primary_metric = "score"

    @staticmethod
    def loss(logits, labels):
        return task.loss(logits, labels)


class QBatches(SequenceBatches):
    def __init__(s, seqs, seg, labels):
        super().__init__(seqs, labels)
        s.seg = seg

    def _batch(self, idx):
        s = self.seqs
        width = max(int(s.lengths[i]) for i in idx)
        K, H = s.features.shape[1:]
        feats = torch.zeros((len(idx), width, K, H))
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        seg = torch.zeros_like(mask)
        for j, i in enumerate(idx):
            a, n = s.starts[i], int(s.lengths[i])
            feats[j, :n] = torch.from_numpy(s.features[a : a + n].astype(np.float32))
            mask[j, :n] = 1
            seg[j, :n] = torch.from_numpy(self.seg[a : a + n])
        b = {"features": feats, "attention_mask": mask, "segments": seg}
        if self.labels is not None:
            b["labels"] = torch.from_numpy(self.labels[idx])
        return b


class Reader(nn.Module):
    """scalar mix -> [x, c2q attention, x*att] -> BiLSTM -> start/end."""

    def __init__(s, K, H, h, attend, layers=1):
        super().__init__()
        s.t = Tagger(K, H, 0, 2)  # reuse standardization + mix
        s.attend = attend
        s.proj = nn.Linear(H, h)
        s.w = nn.Linear(h, h, bias=False)
        d = 3 * h if attend else h
        s.lstm = nn.LSTM(
            d, h, num_layers=layers, batch_first=True, bidirectional=True, dropout=0.1 if layers > 1 else 0
        )
        s.out = nn.Linear(2 * h, 2)
        s.drop = nn.Dropout(0.1)

    def forward(s, features, attention_mask, segments):
        t = s.t
        x = (features - t.mean) / t.scale
        x = t.gamma * (x * torch.softmax(t.mix, 0)[:, None]).sum(2) if t.mix is not None else x[:, :, 0]
        x = s.drop(torch.relu(s.proj(s.drop(x))))
        if s.attend:
            q = attention_mask.bool() & (segments == 0)  # question + specials
            sc = torch.einsum("bih,bjh->bij", s.w(x), x).masked_fill(~q[:, None, :], -1e4)
            a = torch.einsum("bij,bjh->bih", torch.softmax(sc, -1), x)
            x = torch.cat([x, a, x * a], -1)
        lengths = attention_mask.sum(1).cpu()
        p = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        y, _ = s.lstm(p)
        y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        logits = s.out(s.drop(y))
        ok = attention_mask.bool() & ((segments == 1) | (torch.arange(x.shape[1], device=x.device) == 0))
        return logits.masked_fill(~ok.unsqueeze(-1), -1e4)


def run(layers, h, attend, lr, epochs):
    sel = {"last": [6], "weighted-all": list(range(1, 7)), "all7": list(range(7))}[layers]
    seq = {s: WordSequences(S[s][0][:, sel], S[s][1]) for s in S}
    torch.manual_seed(0)
    m = Reader(len(sel), 384, h, attend)
    f = seq["train"].features[::7].astype(np.float32)
    m.t.mean.copy_(torch.from_numpy(f.mean(0)))
    m.t.scale.copy_(torch.from_numpy(f.std(0) + 1e-6))
    cfg = TrainConfig(
        lr=lr, epochs=epochs, batch_size=32, patience=5, eval_batch_size=64, device=str(DEV.type)
    )

    def ev(outs):
        return {"score": task.score(outs, ctx.enc["dev"], bundle.dev, [])["f1"]}

    def B(s, y):
        return QBatches(seq[s], S[s][2], y)

    t = time.time()
    r = fit(
        m,
        decay_groups(m.named_parameters(), lr, 0.01),
        B("train", ctx.enc["train"].targets),
        B("dev", ctx.enc["dev"].targets),
        L(),
        ev,
        cfg,
        0,
        description="qa",
    )
    m.eval()
    dv = ev(predict_logits(m, B("dev", None), cfg, DEV))["score"]
    te = task.score(predict_logits(m, B("test", None), cfg, DEV), ctx.enc["test"], bundle.test, [])
    print(
        f"RESULT {layers} h={h} attend={attend} lr={lr} ep={epochs}: best epoch {r.best_epoch} dev {dv:.1f} test f1 {te['f1']:.1f} em {te['exact_match']:.1f} ({time.time() - t:.0f}s)",
        flush=True,
    )


for spec in sys.argv[1:]:
    l, h, att, lr, ep = spec.split(":")
    run(l, int(h), att == "1", float(lr), int(ep))
