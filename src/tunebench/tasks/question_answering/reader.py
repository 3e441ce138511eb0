"""Feature-based extractive QA: a small span reader on the frozen backbone's token states.

A start/end layer on one frozen layer barely beats chance on small QA sets (measured on XQuAD-en:
6 test F1 for `head`): nothing in a sentence-embedding model's token states says which context
token answers *this* question. The reader adds what the frozen features lack, as feature-based QA
models did with frozen ELMo vectors (Peters et al. 2018 fed them to BiDAF): a learned weighted sum
of the layers, a projection, context-to-question attention ([x, a, x*a], a = the attention-weighted
question tokens), a BiLSTM over the window and a linear start/end layer. Only context tokens and
position 0 ([CLS]: "no answer in this window") can be chosen.

The backbone never runs while training: the token states come from the on-disk cache (`extract.
token_states`). `lstm_hidden=0` is the linear baseline (a start/end layer on the mixed layers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ...training.config import TrainConfig
from ...training.loop import fit, predict_logits
from ...training.optim import decay_groups
from ..token_classification.tagger import SequenceBatches, TorchEstimator, WordSequences, standardizer

MASKED = -1e4  # logit of a token that cannot start or end the answer (fits bf16)


@dataclass
class TokenStates(WordSequences):
    """Every token of each window: `features` (N_tokens, K, H), `lengths` (S,) tokens per window,
    `segments` (N_tokens,) 1 where a token belongs to the context (a possible answer), else 0."""

    segments: np.ndarray | None = None


class StateBatches(SequenceBatches):
    """Windows of cached token states with their segments; labels are (S, 2) start/end positions."""

    def _states(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        batch = super()._states(idx)
        s = self.seqs
        segments = torch.zeros_like(batch["attention_mask"])
        for j, i in enumerate(idx):
            a, n = s.starts[i], int(s.lengths[i])
            segments[j, :n] = torch.from_numpy(s.segments[a : a + n].astype(np.int64))
        batch["segments"] = segments
        return batch

    def _labels(self, idx: np.ndarray, width: int) -> torch.Tensor:
        return torch.from_numpy(self.labels[idx].astype(np.int64))  # (B, 2) token positions


class SpanReader(nn.Module):
    """(B, T, K, H) token states -> (B, T, 2) start / end logits."""

    def __init__(self, n_layers: int, width: int, hidden: int, dropout: float = 0.1):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_layers, width))
        self.register_buffer("scale", torch.ones(n_layers, width))
        self.mix = nn.Parameter(torch.zeros(n_layers))  # softmax -> layer weights
        self.gamma = nn.Parameter(torch.ones(1))
        self.dropout = nn.Dropout(dropout)
        self.hidden = hidden
        if hidden:
            self.proj = nn.Linear(width, hidden)
            self.attend = nn.Linear(hidden, hidden, bias=False)  # bilinear context-question score
            self.lstm = nn.LSTM(3 * hidden, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden if hidden else width, 2)

    def forward(
        self, features: torch.Tensor, attention_mask: torch.Tensor, segments: torch.Tensor
    ) -> torch.Tensor:
        x = (features - self.mean) / self.scale
        x = self.gamma * (x * torch.softmax(self.mix, 0)[:, None]).sum(2)  # (B, T, H)
        x = self.dropout(x)
        valid = attention_mask.bool()
        if self.hidden:
            x = self.dropout(torch.relu(self.proj(x)))  # (B, T, h)
            question = valid & (segments == 0)  # question tokens and the special tokens
            scores = torch.einsum("bih,bjh->bij", self.attend(x), x)
            scores = scores.masked_fill(~question[:, None, :], MASKED)
            a = torch.einsum("bij,bjh->bih", torch.softmax(scores, -1), x)
            x = torch.cat([x, a, x * a], -1)
            lengths = attention_mask.sum(1).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            x, _ = self.lstm(packed)
            x, _ = nn.utils.rnn.pad_packed_sequence(x, batch_first=True, total_length=features.shape[1])
            x = self.dropout(x)
        logits = self.out(x)
        first = torch.arange(features.shape[1], device=features.device) == 0
        choosable = valid & ((segments == 1) | first)
        return logits.masked_fill(~choosable.unsqueeze(-1), MASKED)

    def arch(self) -> np.ndarray:
        """What rebuilding it from saved arrays needs: [layers, width, hidden]."""
        return np.asarray([self.mean.shape[0], self.mean.shape[1], self.hidden], dtype=np.int64)


def train_reader(
    X: TokenStates,
    y: np.ndarray,
    X_dev: TokenStates,
    y_dev: np.ndarray,
    seed: int,
    score,
    loss,
    *,
    hidden: int,
    lr: float,
    epochs: int,
    device: str = "cpu",
) -> SpanReader:
    """Fit a SpanReader with the training loop; `score(per-window dev outputs) -> float` picks the best
    epoch, `loss(logits, labels)` is the task's span loss."""
    torch.manual_seed(seed)
    model = SpanReader(X.features.shape[1], X.features.shape[2], hidden)
    mean, scale = standardizer(X.features)
    model.mean.copy_(mean)
    model.scale.copy_(scale)
    cfg = TrainConfig(lr=lr, epochs=epochs, batch_size=32, patience=4, eval_batch_size=64, device=device)

    class _Objective:  # what the loop asks of its task
        primary_metric = "score"

    _Objective.loss = staticmethod(loss)
    fit(
        model,
        decay_groups(model.named_parameters(), lr, cfg.weight_decay),
        StateBatches(X, y),
        StateBatches(X_dev, y_dev),
        _Objective(),
        lambda outs: {"score": score(outs)},
        cfg,
        seed,
        description="reader",
    )
    return model.cpu().eval()  # predictions and the export run on the CPU


@torch.no_grad()
def reader_logits(model: SpanReader, X: TokenStates) -> list[np.ndarray]:
    """Per-window (T_i, 2) start / end logits, in the order of `X`."""
    return predict_logits(model, StateBatches(X, None), TrainConfig(eval_batch_size=64), torch.device("cpu"))


def reader_state(model: SpanReader) -> dict[str, np.ndarray]:
    arrays = {f"reader.{k}": v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    arrays["reader.arch"] = model.arch()
    return arrays


def load_reader(arrays: dict[str, np.ndarray]) -> SpanReader:
    n_layers, width, hidden = (int(v) for v in arrays["reader.arch"])
    model = SpanReader(n_layers, width, hidden)
    state = {
        k[len("reader.") :]: torch.from_numpy(np.asarray(v)) for k, v in arrays.items() if k != "reader.arch"
    }
    model.load_state_dict(state)
    return model.eval()


class ReaderEstimator(TorchEstimator):
    """The span reader over TokenStates; `hidden` 0 is the linear start/end layer on the (learned) layer
    mix. `loss` is the task's span loss."""

    _logits, _state, _load = (
        staticmethod(reader_logits),
        staticmethod(reader_state),
        staticmethod(load_reader),
    )

    def __init__(self, hidden: int, lr: float, epochs: int, loss, seed: int = 0, device: str = "cpu"):
        self.hidden = hidden
        self.lr = lr
        self.epochs = epochs
        self.loss = loss
        self.seed = seed
        self.device = device

    def _train(self, X, y, X_dev, y_dev, score):
        return train_reader(
            X,
            y,
            X_dev,
            y_dev,
            self.seed,
            score,
            self.loss,
            hidden=self.hidden,
            lr=self.lr,
            epochs=self.epochs,
            device=self.device,
        )
