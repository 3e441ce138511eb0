"""The model card (README.md) of an export: what it is, how well it did, and how to load it with and
without tunebench."""

from __future__ import annotations

from ._version import __version__
from .backbones.text import hub_id


def model_card(manifest: dict, task, info: dict | None, summary: dict, adapter: bool = False) -> str:
    """`info`: the standalone entry of a whole-model export (None: tunebench's layout); `adapter`: the
    export holds a peft adapter in `adapter/`."""
    strategy, base = manifest["strategy"], hub_id(manifest["backbone"])
    library = "transformers" if info else ("peft" if adapter else "tunebench")
    front = ["---", f"library_name: {library}", "tags:", "- tunebench", f"- {strategy}"]
    if task.pipeline_tag:
        front.append(f"pipeline_tag: {task.pipeline_tag}")
    if base:
        front.append(f"base_model: {base}")
    front.append("---")
    lines = [
        *front,
        "",
        f"# {task.name}: {strategy} on {manifest['backbone']}",
        "",
        f"Trained and exported by tunebench {__version__} (strategy `{strategy}`, "
        f"{manifest['pooling']} pooling, max length {manifest['max_length']}).",
    ]
    if summary.get("dev_mean") is not None:
        score = f"dev {summary['metric']} {summary['dev_mean']:.4f}"
        if summary.get("test_mean") is not None:
            score += f", test {summary['test_mean']:.4f}"
        lines += ["", f"Scores: {score} (mean over {summary.get('n_seeds', 1)} seed(s))."]
    if not task.regression and manifest["label_names"] and task.name != "question-answering":
        lines += ["", "Labels: " + ", ".join(f"`{n}`" for n in manifest["label_names"]) + "."]
    lines += [
        "",
        "## With tunebench",
        "",
        "```bash",
        "tunebench predict --model THIS_DIR --data FILE --out predictions.csv",
        "```",
    ]
    lines += ["", "## Without tunebench", "", *_plain_usage(manifest, task, info, adapter)]
    return "\n".join(lines) + "\n"


def _plain_usage(manifest: dict, task, info: dict | None, adapter: bool) -> list[str]:
    if "feature_columns" in manifest:  # transformers models read text only
        names = ", ".join(f"`{c['name']}` ({c['kind']})" for c in manifest["feature_columns"])
        return [
            f"This model reads the feature columns {names} beside the text. Their parameters as fitted on "
            "the training data (mean and standard deviation, categories, embedding sizes) are in "
            "`manifest.json` under `feature_columns`; the file to predict on needs these columns. A "
            "transformers pipeline reads text only, so load it with `tunebench.Predictor` or "
            "`tunebench predict`."
        ]
    if info is not None:
        remote = info["form"] == "custom"
        args = ", trust_remote_code=True" if remote else ""
        out = ["```python", f"from transformers import {task.auto_class}, AutoTokenizer, pipeline", ""]
        out += [f'model = {task.auto_class}.from_pretrained("THIS_DIR"{args})']
        out += [f'tokenizer = AutoTokenizer.from_pretrained("THIS_DIR"{args})']
        out += [f'pipe = pipeline("{task.pipeline_tag}", model=model, tokenizer=tokenizer)', "```"]
        if remote:
            out += [
                "",
                f"`trust_remote_code=True` runs `modeling_tunebench.py` from this folder: the model pools the "
                f"encoder's hidden states ({manifest['pooling']}) before its head, which transformers' stock "
                "class does not do (BERT's stock head uses [CLS] and a tanh pooler), so the stock class "
                "would load these weights into a different model. Read the file before trusting it.",
            ]
        if adapter:
            out += [
                "",
                "`adapter/` holds the peft adapter as trained (merged into the weights above), with the head "
                "in `adapter/head.safetensors`: the small form, for `AutoPeftModel.from_pretrained`.",
            ]
        return out
    if adapter:
        base = hub_id(manifest["backbone"]) or manifest["backbone"]
        return [
            "The prefix (peft) adapts the encoder; the head is `head.safetensors` (`out.weight`, `out.bias`):",
            "",
            "```python",
            "import torch",
            "from peft import AutoPeftModelForFeatureExtraction",
            "from safetensors.torch import load_file",
            "from transformers import AutoTokenizer",
            "",
            'encoder = AutoPeftModelForFeatureExtraction.from_pretrained("THIS_DIR/adapter").eval()',
            f'tokenizer = AutoTokenizer.from_pretrained("{base}")',
            'head = load_file("THIS_DIR/head.safetensors")',
            'batch = tokenizer(["a text"], return_tensors="pt")',
            "hidden = encoder(**batch).last_hidden_state  # (B, T, H)",
            _pool_line(manifest["pooling"]),
            'logits = pooled @ head["out.weight"].T + head["out.bias"]',
            "```",
        ]
    if "C" in manifest:  # frozen features + a fitted linear model
        return [
            f"A linear model on frozen {manifest['pooling']}-pooled features of `{manifest['backbone']}` "
            f"(layers: {manifest.get('layers', 'last')}). `classifier.safetensors` holds `mean`, `scale` "
            "and the weights `w0, w1, ...`: logits = standardized features @ w0 + w1 (ReLU between "
            "further pairs). Compute the features with the encoder as tunebench does, then:",
            "",
            "```python",
            "from safetensors.numpy import load_file",
            'c = load_file("THIS_DIR/classifier.safetensors")',
            'logits = ((features - c["mean"]) / c["scale"]) @ c["w0"] + c["w1"]',
            "```",
        ]
    return [
        "This export is in tunebench's own layout (see `manifest.json`); load it with `tunebench.Predictor`."
    ]


def _pool_line(pooling: str) -> str:
    if pooling == "cls":
        return "pooled = hidden[:, 0]"
    return (
        'mask = batch["attention_mask"].unsqueeze(-1).float()\npooled = (hidden * mask).sum(1) / mask.sum(1)'
    )
