"""Run as a script, in its own process: load exports with plain transformers / peft (never tunebench)
and compare their outputs on one batch with tunebench's.

    python plain_load.py CASES_JSON BATCH.safetensors

Each case: {"kind": "whole", "path", "auto_class", "remote", "expected"} or {"kind": "adapter", "path",
"head", "pooling" (mean | cls | token), "base" (a local base model, else the adapter's own base),
"expected"}. Prints "ok PATH" per case; fails on the first difference over 1e-4."""

import json
import sys

import torch
import transformers
from safetensors.numpy import load_file
from safetensors.torch import load_file as load_torch


def whole(case, batch):
    cls = getattr(transformers, case["auto_class"])
    model = cls.from_pretrained(case["path"], trust_remote_code=case["remote"]).eval()
    out = model(**batch)
    if getattr(out, "logits", None) is not None:
        return out.logits
    return torch.stack([out.start_logits, out.end_logits], -1)


def adapter(case, batch):
    import peft  # only the adapter cases need it

    if case.get("base"):
        base = transformers.AutoModel.from_pretrained(case["base"])
        encoder = peft.PeftModel.from_pretrained(base, case["path"]).eval()
    else:
        typed = json.load(open(f"{case['path']}/adapter_config.json")).get("task_type")
        cls = peft.AutoPeftModelForFeatureExtraction if typed else peft.AutoPeftModel
        encoder = cls.from_pretrained(case["path"]).eval()
    hidden = encoder(**batch).last_hidden_state  # (B, T, H)
    if case["pooling"] == "token":
        pooled = hidden
    elif case["pooling"] == "cls":
        pooled = hidden[:, 0]
    else:
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
    head = load_torch(case["head"])
    return pooled @ head["out.weight"].T + head["out.bias"]


def main():
    cases = json.loads(open(sys.argv[1]).read())
    batch = {k: torch.from_numpy(v) for k, v in load_file(sys.argv[2]).items()}
    keep = batch["attention_mask"].bool()
    with torch.no_grad():
        for case in cases:
            got = whole(case, batch) if case["kind"] == "whole" else adapter(case, batch)
            expected = torch.from_numpy(load_file(case["expected"])["logits"])
            if got.dim() == 3:  # per token: padded positions are not outputs
                got, expected = got[keep], expected[keep]
            diff = (got - expected).abs().max().item()
            assert diff < 1e-4, (case["path"], diff)
            print("ok", case["path"])
    assert "tunebench" not in sys.modules


if __name__ == "__main__":
    main()
