"""Feature-based tagging on frozen word vectors, as in the BERT paper's Table 7: the frozen backbone's
hidden states at each word's first sub-token -> an optional learned weighted sum of layers (ELMo's
scalar mix) -> an optional BiLSTM over the sentence -> a linear layer.

The backbone never runs here: the word vectors come from the on-disk cache (`tasks/ner.py`), so
training costs a small model's forward/backward per epoch. It goes through the one training loop
(`training/loop.fit`); the `features` strategy calls it for `--opt features.classifier=bilstm` and for
the learned layer combinations `--opt features.layers=weighted-all|weighted-last-4`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ...training.batching import IGNORE, TensorBatches
from ...training.config import TrainConfig
from ...training.loop import fit, predict_logits
from ...training.optim import decay_groups


@dataclass
class WordSequences:
    """Word vectors of whole sentences: `features` (N_words, K, H) with K layers (1 for a fixed layer
    combination), sentences end to end, `lengths` (S,) words per sentence."""

    features: np.ndarray
    lengths: np.ndarray

    def __post_init__(self):
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.lengths)


class SequenceBatches(TensorBatches):
    """Training-loop data over sentences of cached word vectors: labels padded with IGNORE (shuffled and
    ordered batching as for cached sentence vectors; only the batch itself differs)."""

    def __init__(self, seqs: WordSequences, labels: np.ndarray | None):
        self.seqs = seqs
        self.labels = None if labels is None else np.asarray(labels)

    def __len__(self) -> int:
        return len(self.seqs)

    def _batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        batch = self._states(idx)
        if self.labels is not None:
            batch["labels"] = self._labels(idx, batch["attention_mask"].shape[1])
        return batch

    def _states(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        s = self.seqs
        width = max(int(s.lengths[i]) for i in idx)
        K, H = s.features.shape[1:]
        feats = torch.zeros((len(idx), width, K, H), dtype=torch.float32)  # (B, W, K, H)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for j, i in enumerate(idx):
            a, n = s.starts[i], int(s.lengths[i])
            feats[j, :n] = torch.from_numpy(s.features[a : a + n].astype(np.float32))
            mask[j, :n] = 1
        return {"features": feats, "attention_mask": mask}

    def _labels(self, idx: np.ndarray, width: int) -> torch.Tensor:
        s = self.seqs
        labels = torch.full((len(idx), width), IGNORE, dtype=torch.long)
        for j, i in enumerate(idx):
            a, n = s.starts[i], int(s.lengths[i])
            labels[j, :n] = torch.from_numpy(self.labels[a : a + n].astype(np.int64))
        return labels


def standardizer(features: np.ndarray, max_rows: int = 50_000) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-layer, per-dimension mean and std of (N, K, H) features, from at most `max_rows` evenly
    spaced rows (QA's token states are ~10^5 rows: a float32 copy of all of them would be GBs)."""
    step = max(1, -(-len(features) // max_rows))
    sample = features[::step].astype(np.float32)
    return torch.from_numpy(sample.mean(0)), torch.from_numpy(sample.std(0) + 1e-6)


class Tagger(nn.Module):
    """(B, W, K, H) standardized word vectors -> (B, W, C) logits."""

    def __init__(self, n_layers: int, width: int, lstm_hidden: int, n_classes: int, dropout: float = 0.1):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_layers, width))
        self.register_buffer("scale", torch.ones(n_layers, width))
        self.mix = nn.Parameter(torch.zeros(n_layers)) if n_layers > 1 else None  # softmax -> layer weights
        self.gamma = nn.Parameter(torch.ones(1)) if n_layers > 1 else None
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(width, lstm_hidden, batch_first=True, bidirectional=True) if lstm_hidden else None
        self.out = nn.Linear(2 * lstm_hidden if lstm_hidden else width, n_classes)

    def forward(self, features: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = (features - self.mean) / self.scale  # (B, W, K, H)
        if self.mix is not None:
            x = self.gamma * (x * torch.softmax(self.mix, 0)[:, None]).sum(2)  # (B, W, H)
        else:
            x = x[:, :, 0]
        x = self.dropout(x)
        if self.lstm is not None:
            lengths = attention_mask.sum(1).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            x, _ = self.lstm(packed)
            x, _ = nn.utils.rnn.pad_packed_sequence(x, batch_first=True, total_length=features.shape[1])
            x = self.dropout(x)
        return self.out(x)

    def arch(self) -> np.ndarray:
        """What rebuilding it from saved arrays needs: [layers, width, lstm hidden, classes]."""
        hidden = self.lstm.hidden_size if self.lstm is not None else 0
        return np.asarray(
            [self.mean.shape[0], self.mean.shape[1], hidden, self.out.out_features], dtype=np.int64
        )


class _TokenLoss:
    """The loop asks its task for `loss` and `primary_metric`; here: per-word cross-entropy."""

    primary_metric = "score"

    @staticmethod
    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(
            logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE
        )


def train_tagger(
    X: WordSequences,
    y,
    X_dev: WordSequences,
    y_dev,
    seed: int,
    score,
    n_classes: int,
    *,
    lstm_hidden: int,
    lr: float,
    epochs: int,
    device: str = "cpu",
) -> Tagger:
    """Fit a Tagger with the training loop; `score(flat dev logits) -> float` picks the best epoch."""
    torch.manual_seed(seed)
    model = Tagger(X.features.shape[1], X.features.shape[2], lstm_hidden, n_classes)
    mean, scale = standardizer(X.features)
    model.mean.copy_(mean)
    model.scale.copy_(scale)
    cfg = TrainConfig(lr=lr, epochs=epochs, batch_size=32, patience=3, eval_batch_size=256, device=device)
    fit(
        model,
        decay_groups(model.named_parameters(), lr, cfg.weight_decay),
        SequenceBatches(X, y),
        SequenceBatches(X_dev, y_dev),
        _TokenLoss(),
        lambda outs: {"score": score(np.concatenate(outs))},
        cfg,
        seed,
        description="tagger",
    )
    return model.cpu().eval()  # predictions and the export run on the CPU


@torch.no_grad()
def tagger_logits(model: Tagger, X: WordSequences) -> np.ndarray:
    """(N_words, C) logits, sentences end to end (the order of `X`)."""
    outs = predict_logits(
        model, SequenceBatches(X, None), TrainConfig(eval_batch_size=256), torch.device("cpu")
    )
    return np.concatenate(outs) if outs else np.zeros((0, model.out.out_features), np.float32)


def tagger_state(model: Tagger) -> dict[str, np.ndarray]:
    arrays = {f"tagger.{k}": v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    arrays["tagger.arch"] = model.arch()
    return arrays


def load_tagger(arrays: dict[str, np.ndarray]) -> Tagger:
    n_layers, width, hidden, classes = (int(v) for v in arrays["tagger.arch"])
    model = Tagger(n_layers, width, hidden, classes)
    state = {
        k[len("tagger.") :]: torch.from_numpy(np.asarray(v)) for k, v in arrays.items() if k != "tagger.arch"
    }
    model.load_state_dict(state)
    return model.eval()


class TorchEstimator:
    """A frozen-feature torch model (the tagger, the QA reader) as a scikit-learn-style estimator: `fit`
    trains `model_` with the one loop and returns self. Subclasses name their functions."""

    _logits = _state = _load = None  # staticmethods: (model, X) -> logits, model -> arrays, arrays -> model

    def _train(self, X, y, X_dev, y_dev, score):
        raise NotImplementedError

    def fit(self, X, y, X_dev, y_dev, score):
        """`score(dev outputs) -> float` picks the best epoch."""
        self.model_, self.C_ = self._train(X, y, X_dev, y_dev, score), 0.0
        return self

    def decision_function(self, X):
        return self._logits(self.model_, X)

    @property
    def n_trainable_(self) -> int:
        return sum(p.numel() for p in self.model_.parameters())

    def state(self) -> dict[str, np.ndarray]:
        return self._state(self.model_)

    def load_state(self, arrays: dict[str, np.ndarray], C: float = 0.0):
        self.model_, self.C_ = self._load(arrays), C
        return self


class TaggerEstimator(TorchEstimator):
    """The tagger over WordSequences; `lstm_hidden` 0 is a linear layer on the (learned) layer mix."""

    _logits, _state, _load = (
        staticmethod(tagger_logits),
        staticmethod(tagger_state),
        staticmethod(load_tagger),
    )

    def __init__(self, lstm_hidden: int, lr: float, epochs: int, n_classes: int, seed: int = 0, device="cpu"):
        self.lstm_hidden = lstm_hidden
        self.lr = lr
        self.epochs = epochs
        self.n_classes = n_classes
        self.seed = seed
        self.device = device

    def _train(self, X, y, X_dev, y_dev, score):
        return train_tagger(
            X,
            y,
            X_dev,
            y_dev,
            self.seed,
            score,
            self.n_classes,
            lstm_hidden=self.lstm_hidden,
            lr=self.lr,
            epochs=self.epochs,
            device=self.device,
        )
