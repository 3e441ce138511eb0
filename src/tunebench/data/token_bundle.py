"""Token classification (NER) data: sentences of words with IOB2 tags, from a named dataset (conll2003)
or CoNLL / JSON Lines files (`conll.py`); dev split off train when not given, seeded subsamples."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TunebenchError
from .conll import label_list, read_token_file, to_iob2
from .named import DATASETS, get_dataset, locate
from .splits import cap, check_train_size, split_off, subsample


@dataclass
class TokenSplit:
    tokens: list[list[str]]
    tags: list[list[str]] | None = None  # IOB2
    source: str = ""
    label_index: dict[str, int] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def labels(self) -> list[list[int]] | None:
        if self.tags is None:
            return None
        return [[self.label_index[t] for t in tags] for tags in self.tags]

    def subset(self, idx) -> TokenSplit:
        tags = None if self.tags is None else [self.tags[i] for i in idx]
        return TokenSplit([self.tokens[i] for i in idx], tags, self.source, self.label_index)


@dataclass
class TokenBundle:
    name: str
    train: TokenSplit
    dev: TokenSplit
    test: TokenSplit | None
    label_names: list[str]
    regression: bool = False

    def fingerprint(self) -> str:
        h = hashlib.sha256(json.dumps(self.label_names).encode())
        for name in ("train", "dev", "test"):
            s = getattr(self, name)
            h.update(json.dumps([name, None if s is None else [s.tokens, s.tags]]).encode())
        return h.hexdigest()[:16]

    def describe(self) -> str:
        parts = [
            f"{n} {len(getattr(self, n))} sentences" for n in ("train", "dev", "test") if getattr(self, n)
        ]
        types = sorted({n[2:] for n in self.label_names if n != "O"})
        return f"{self.name}: " + " · ".join(parts) + f" · entity types {', '.join(types)}"


def load_token_data(cfg) -> TokenBundle:
    """Named dataset (conll2003) or CoNLL/JSONL files; dev split off train when not given; seeded
    subsample of training sentences with --train-size; --eval-size caps dev and test (`splits.py`,
    unstratified: a sentence has no single label)."""
    if cfg.data in DATASETS and not Path(cfg.data).is_file():
        ds = get_dataset(cfg.data)
        if ds.task != "token-classification":
            raise TunebenchError(
                f"dataset '{cfg.data}' is for {ds.task}, not token-classification; pass --task {ds.task}"
            )
        paths = locate(ds, cfg.data_dir)
        name, train_p, dev_p, test_p = (
            ds.name,
            paths["train"],
            cfg.dev or paths.get("dev"),
            cfg.test or paths.get("test"),
        )
    else:
        name, train_p, dev_p, test_p = Path(cfg.data).name.split(".")[0], cfg.data, cfg.dev, cfg.test

    def read(path) -> TokenSplit | None:
        if path is None:
            return None
        tokens, tags = read_token_file(path)
        return TokenSplit(tokens, [to_iob2(t) for t in tags], str(path))

    train, dev, test = read(train_p), read(dev_p), read(test_p)
    if dev is None:
        n_dev = round(cfg.dev_fraction * len(train))
        if n_dev < 1:
            raise TunebenchError(f"{train.source}: no dev set; give --dev FILE or a --dev-fraction above 0")
        train, dev = split_off(train, n_dev, cfg.seed)
    if cfg.train_size is not None and cfg.train_size < len(train):
        train = subsample(train, cfg.train_size, cfg.seed)
    elif cfg.train_size is not None:
        check_train_size(cfg.train_size, len(train), "training sentences", train.source)
    if cfg.eval_size is not None:
        dev = cap(dev, cfg.eval_size, cfg.seed)
        test = None if test is None else cap(test, cfg.eval_size, cfg.seed)
    names = label_list(train.tags)
    index = {n: i for i, n in enumerate(names)}
    for split in (dev, test):
        if split is None:
            continue
        unknown = sorted({t for tags in split.tags for t in tags} - set(index))
        if unknown:
            raise TunebenchError(
                f"{split.source}: tags {', '.join(unknown[:5])} do not occur in train ({train.source}); "
                "fix the tags or add sentences with them to train"
            )
    for split in (train, dev, test):
        if split is not None:
            split.label_index = index
    return TokenBundle(name, train, dev, test, names)
