"""Exports stand on their own: every strategy's export of every text task, loaded by plain transformers /
peft in a separate process that never imports tunebench, computes tunebench's outputs; tunebench's own
Predictor loads the new layout and predicts what the run measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURES, ladder, tiny_of
from safetensors.numpy import save_file

from tunebench import predict
from tunebench.exporting import export_run
from tunebench.prediction import Predictor
from tunebench.strategies import STRATEGIES
from tunebench.tasks import TASKS, get_task

TEXT_TASKS = [t for t in TASKS.names() if TASKS.get(t).auto_class]
_EXPORTS: dict = {}


def exports(task_name: str) -> dict[str, Path]:
    """strategy -> its export (compare's best-run export, of every run of the task's tiny ladder)."""
    if task_name not in _EXPORTS:
        out, records, _ = ladder(task_name)
        root = FIXTURES / f"{task_name}-exports"
        _EXPORTS[task_name] = {}
        for name, record in records.items():
            dest = root / name
            if not dest.exists():
                export_run(out / "runs" / record["key"], dest, {"metric": "m", "dev_mean": 0.5})
            _EXPORTS[task_name][name] = dest
    return _EXPORTS[task_name]


def test_every_text_task_has_an_auto_class():
    assert set(TEXT_TASKS) == {t for t in TASKS.names() if get_task(t).modality == "text"}


@pytest.mark.parametrize("task_name", TEXT_TASKS)
def test_layout_per_strategy(task_name):
    """Gradient strategies become a whole transformers model, except prefix tuning (nothing to merge);
    the stock class only where it holds exactly tunebench's tensors (token classification and QA heads
    on BERT), else the shipped class, named in config.json's auto_map."""
    for name, dest in exports(task_name).items():
        manifest = json.loads((dest / "manifest.json").read_text())
        assert (dest / "README.md").is_file(), name
        whole = STRATEGIES.get(name).kind == "gradient" and name != "prefix"
        assert (manifest.get("layout") == "standalone") == whole, name
        if not whole:
            continue
        config = json.loads((dest / "config.json").read_text())
        info = manifest["standalone"]
        stock = get_task(task_name).token_level and name != "adapters"
        assert info["form"] == ("stock" if stock else "custom"), name
        if info["form"] == "custom":
            assert config["model_type"] == "tunebench" and (dest / "modeling_tunebench.py").is_file()
            assert config["auto_map"][get_task(task_name).auto_class].startswith("modeling_tunebench.")
        else:
            assert config["model_type"] == "bert" and "auto_map" not in config
        if not get_task(task_name).regression and task_name != "question-answering":
            bundle = get_task(task_name).load(tiny_of(task_name).data)
            assert list(config["id2label"].values()) == bundle.label_names
        assert not (dest / "predictions.safetensors").exists()


@pytest.mark.parametrize("task_name", TEXT_TASKS)
def test_predictor_reads_the_export_and_predicts_what_the_run_did(task_name):
    out, records, _ = ladder(task_name)
    bundle = get_task(task_name).load(tiny_of(task_name).data)
    for name, dest in exports(task_name).items():
        run = Predictor(out / "runs" / records[name]["key"]).outputs(bundle.test)[0]
        exported = Predictor(dest).outputs(bundle.test)[0]
        if isinstance(run, list):
            run, exported = np.concatenate(run), np.concatenate(exported)
        np.testing.assert_allclose(exported, run, rtol=0, atol=1e-5, err_msg=name)


PLAIN = Path(__file__).with_name("plain_load.py")


def cases_for(exported: dict[str, Path], task, batch, tmp_path: Path, base: str | None = None) -> list[dict]:
    """plain_load.py's cases for these exports: tunebench's outputs on `batch` beside each."""
    cases = []
    for name, dest in exported.items():
        if STRATEGIES.get(name).kind != "gradient":
            continue
        model = Predictor(dest).model
        with torch.no_grad():
            logits = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).numpy()
        expected = tmp_path / f"{name}.safetensors"
        save_file({"logits": np.ascontiguousarray(logits)}, str(expected))
        manifest = json.loads((dest / "manifest.json").read_text())
        if manifest.get("layout") == "standalone":
            remote = manifest["standalone"]["form"] == "custom"
            cases.append(
                dict(
                    kind="whole",
                    path=str(dest),
                    auto_class=task.auto_class,
                    remote=remote,
                    expected=str(expected),
                )
            )
        adapter = dest / "adapter"
        if adapter.is_dir() and task.name != "question-answering":  # QA's head masks padding itself
            head = dest / "head.safetensors"
            head = head if head.is_file() else adapter / "head.safetensors"
            pooling = "token" if task.token_level else manifest["pooling"]
            cases.append(
                dict(
                    kind="adapter",
                    path=str(adapter),
                    head=str(head),
                    pooling=pooling,
                    base=base,
                    expected=str(expected),
                )
            )
    return cases


def run_plain(cases: list[dict], batch: dict, tmp_path: Path) -> str:
    """plain_load.py in a fresh process (no tunebench import), offline; its stdout. TUNEBENCH_PLAIN_PYTHON
    names another interpreter, e.g. a venv with only torch, transformers and peft installed."""
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    save_file({k: np.ascontiguousarray(v) for k, v in batch.items()}, str(tmp_path / "batch.safetensors"))
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [
            os.environ.get("TUNEBENCH_PLAIN_PYTHON", sys.executable),
            str(PLAIN),
            str(tmp_path / "cases.json"),
            str(tmp_path / "batch.safetensors"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _batch(vocab_size: int) -> dict[str, np.ndarray]:
    gen = np.random.default_rng(0)
    ids = gen.integers(5, vocab_size, (3, 10))
    mask = np.ones_like(ids)
    mask[2, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


@pytest.mark.parametrize("task_name", TEXT_TASKS)
def test_plain_transformers_and_peft_load_every_export(task_name, tmp_path):
    """One subprocess per task, with only transformers/peft/safetensors imported: each whole-model
    export through its Auto class, each peft adapter (LoRA's small form, prefix) through AutoPeftModel
    with the head applied by hand, as the model card shows; outputs equal tunebench's."""
    exported = exports(task_name)
    vocab = Predictor(exported["full"]).model.backbone.config.vocab_size
    batch = _batch(vocab)
    cases = cases_for(exported, get_task(task_name), batch, tmp_path)
    assert run_plain(cases, batch, tmp_path).count("ok ") == len(cases) >= 6


def test_pipeline_gives_tunebench_predict_labels(tmp_path):
    """The text-classification pipeline on the export of full fine-tuning labels the test texts as
    `tunebench predict` does."""
    dest = exports("text-classification")["full"]
    data = tiny_of("text-classification").data.test
    rows = predict(dest, data)
    script = (
        "import sys, csv\nfrom transformers import pipeline\n"
        "texts = [r['sentence'] for r in csv.DictReader(open(sys.argv[2]), delimiter='\\t')]\n"
        "pipe = pipeline('text-classification', model=sys.argv[1], trust_remote_code=True)\n"
        "print('\\n'.join(p['label'] for p in pipe(texts, truncation=True)))\n"
    )
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(dest), data], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == [r["label"] for r in rows]


def test_lora_adapter_names_the_hub_id_for_the_packaged_model(tmp_path):
    from tunebench.backbones.text import hub_id

    assert hub_id("minilm") == "sentence-transformers/all-MiniLM-L6-v2"
    assert hub_id("bert-base-uncased") == "bert-base-uncased"
    assert hub_id("./models/mine") is None and hub_id(str(tmp_path)) is None


def test_model_card_says_how_to_load(tmp_path):
    card = (exports("text-classification")["full"] / "README.md").read_text()
    assert (
        "trust_remote_code=True" in card
        and "tunebench predict" in card
        and "pipeline_tag: text-classification" in card
    )
    card = (exports("token-classification")["full"] / "README.md").read_text()
    assert "trust_remote_code" not in card and "AutoModelForTokenClassification" in card
    card = (exports("text-classification")["features"] / "README.md").read_text()
    assert "classifier.safetensors" in card
    card = (exports("text-classification")["prefix"] / "README.md").read_text()
    assert "AutoPeftModelForFeatureExtraction" in card and "head.safetensors" in card
