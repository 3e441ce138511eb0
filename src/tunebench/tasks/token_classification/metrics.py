"""Entity-level scores for IOB1/IOB2 sequence labelling (NER), as conlleval / seqeval report them.

NER is scored on entities, not tokens: a predicted entity counts only when its type and its exact
span both match a gold entity, so a half-found name is simply wrong. Chunks are decoded with the
conlleval rules (seqeval's default mode), which read IOB1 and IOB2 the same way and also make sense
of the ill-formed sequences a model emits (an `I-X` after `O` opens a chunk instead of vanishing).
Pure Python, so the scores do not depend on seqeval being installed.
"""

from __future__ import annotations

from collections import Counter

Entity = tuple[str, int, int]  # (type, start, end-exclusive)


def _split(tag: str) -> tuple[str, str | None]:
    """`B-PER` -> ("B", "PER"); `O` -> ("O", None). Other schemes are rejected, not guessed at."""
    if tag == "O":
        return "O", None
    if len(tag) > 2 and tag[0] in "BI" and tag[1] == "-":
        return tag[0], tag[2:]
    raise ValueError(f"tag {tag!r} is not O, B-TYPE or I-TYPE; only IOB1/IOB2 tags are supported")


def entities(tags: list[str]) -> list[Entity]:
    """Chunks of one sentence as (type, start, end-exclusive), in order.

    A chunk starts at `B-X`, or at `I-X` after `O`, after another type or at the sentence start;
    it ends before any tag that is not `I-X` of the same type (so `B-X` after `I-X` starts a new one).
    """
    found: list[Entity] = []
    start, etype = 0, None  # the open chunk, if etype is not None
    for i, tag in enumerate(tags):
        prefix, ttype = _split(tag)
        continues = prefix == "I" and ttype == etype
        if etype is not None and not continues:
            found.append((etype, start, i))
            etype = None
        if ttype is not None and not continues:
            start, etype = i, ttype
    if etype is not None:
        found.append((etype, start, len(tags)))
    return found


def _prf(correct: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    """Precision, recall, F1 with 0.0 wherever a denominator is zero (seqeval's zero_division=0)."""
    p = correct / n_pred if n_pred else 0.0
    r = correct / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def _check_shapes(gold: list[list[str]], pred: list[list[str]]) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} sentences but pred has {len(pred)}")
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: gold has {len(g)} tags but pred has {len(p)}")


def entity_scores(gold: list[list[str]], pred: list[list[str]]) -> dict:
    """Micro precision/recall/F1 over exact (type, span) matches, per-type scores and token accuracy.

    Returns `{"precision", "recall", "f1", "token_accuracy", "per_type": {type: {"precision",
    "recall", "f1", "support"}}}`; `support` is the gold entity count, and a type only ever
    predicted is listed with support 0 (its false positives must show somewhere).
    """
    _check_shapes(gold, pred)
    n_gold: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    n_correct: Counter[str] = Counter()
    tokens = same = 0
    for g_tags, p_tags in zip(gold, pred):
        g_ents, p_ents = entities(g_tags), entities(p_tags)
        n_gold.update(t for t, _, _ in g_ents)
        n_pred.update(t for t, _, _ in p_ents)
        # Spans are unique within a sentence, so a set intersection counts each match once.
        n_correct.update(t for t, _, _ in set(g_ents) & set(p_ents))
        tokens += len(g_tags)
        same += sum(g == p for g, p in zip(g_tags, p_tags))

    p, r, f = _prf(sum(n_correct.values()), sum(n_pred.values()), sum(n_gold.values()))
    per_type = {}
    for etype in sorted(n_gold.keys() | n_pred.keys()):
        tp, tr, tf = _prf(n_correct[etype], n_pred[etype], n_gold[etype])
        per_type[etype] = {"precision": tp, "recall": tr, "f1": tf, "support": n_gold[etype]}
    return {
        "precision": p,
        "recall": r,
        "f1": f,
        "token_accuracy": same / tokens if tokens else 0.0,
        "per_type": per_type,
    }
