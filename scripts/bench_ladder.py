"""tunebench against the plain Hugging Face way, on the same data and device, in one run.

The peer is ../shared/bench/peer_ladder.py (Trainer + peft + scikit-learn, five strategies). This script
runs each peer strategy in its own process, then one `tunebench compare` for the whole default ladder
(as a user would type it), and prints a markdown table of time, dev accuracy and peak memory with the
speed ratio peer s / tunebench s; `--scaling` adds one-epoch times of `full` and `features` against
training size and maximum length.

  python scripts/bench_ladder.py --profile cpu --out runs/bench-cpu --json runs/bench-cpu.json
  python scripts/bench_ladder.py --profile gpu --out runs/bench-gpu --json runs/bench-gpu.json
  python scripts/bench_ladder.py --scaling --skip-peer --skip-ladder --out runs/bench-scaling
  python scripts/bench_ladder.py --quick --scaling            # smoke test: tiny sizes, 1 epoch

Same data. The peer subsamples train with `random.Random(0).sample(train, N)`; tunebench's
`--train-size` takes a seeded *stratified* subsample, a different set. So the peer's exact sample is
written once to OUT/data/sst2/train.tsv.gz (GLUE TSV, read with the peer's own code) beside links to
the real dev.tsv, test.tsv and test_labeled.tsv, and both read that folder: the peer with
`--data-dir OUT/data/sst2 --train-size 0` (all rows), tunebench with `--data sst2 --data-dir OUT/data`
and no `--train-size`. tunebench's named `sst2` is the files sst2/train.tsv.gz, sst2/dev.tsv and
sst2/test_labeled.tsv under the data dir (src/tunebench/data/named.py); because a dev file exists,
nothing is split off train (data/text.py: carve_dev_test only splits when dev is missing), so
tunebench trains on every row of the written file and its "dev" is the same 872 dev.tsv sentences
the peer scores. Both truncate at 128 tokens (`--max-length 128` for tunebench). tunebench also
scores test_labeled.tsv (1,821 sentences) inside each run's time, which the peer does not do.
With --quick, dev.tsv and test_labeled.tsv are cut to their first rows, for both sides alike.

Epochs: cpu profile (2,000 sentences) peer 3, tunebench its own defaults (3 for last-k, full, lora,
bitfit; head up to 20 on cached features); gpu profile (all 67,349) 2 for both (`--epochs 2`).
Peak memory: the peer process's max RSS (CPU) or torch.cuda.max_memory_allocated (CUDA) per strategy;
tunebench's per-run peak from its run store (RSS sampled during the run, or CUDA max allocated).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from tunebench.store import RunStore

REPO = Path(__file__).resolve().parents[1]
PEER = REPO.parent / "shared" / "bench" / "peer_ladder.py"
DATA_DIR = REPO.parent / "shared" / "data"
LADDER = ("features", "head", "last-k", "full", "lora", "bitfit")  # tunebench's default ladder
PEER_NAME = {"features": "features", "head": "head", "last-k": "last-2", "full": "full", "lora": "lora"}
PROFILES = {  # train: sentences (None = all); epochs: peer / tunebench (None = tunebench's defaults)
    "cpu": {"train": 2000, "peer_epochs": 3, "tb_epochs": None, "eval": None},
    "gpu": {"train": None, "peer_epochs": 2, "tb_epochs": 2, "eval": None},
    "quick": {"train": 64, "peer_epochs": 1, "tb_epochs": 1, "eval": 128},
}
SCALING = ("full", "features")
SCALING_EVAL = 500  # dev and test capped in the scaling runs, so their time hardly depends on the cell

# Runs peer_ladder.py in this process, then adds the process's peak memory to the JSON it wrote.
WRAPPER = """
import json, resource, runpy, sys
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
import torch
if torch.cuda.is_available():
    peak = torch.cuda.max_memory_allocated() / 2**20
else:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
out = sys.argv[sys.argv.index("--out") + 1]
with open(out) as f:
    res = json.load(f)
res["peak_mb"] = round(peak, 1)
with open(out, "w") as f:
    json.dump(res, f, indent=1)
"""


# ----------------------------------------------------------------------------- data


def read_sst2(path: Path) -> list[tuple[str, int]]:
    """The peer's reader, verbatim in effect: GLUE TSV, no quoting, (sentence, int label)."""
    op = gzip.open if path.name.endswith(".gz") else open
    with op(path, "rt", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(x["sentence"], int(x["label"])) for x in reader]


def _write_rows(path: Path, rows: list[tuple[str, int]]) -> None:
    # written by hand: csv.writer would escape the bare quotes SST-2 sentences contain
    op = gzip.open if path.name.endswith(".gz") else open
    with op(path, "wt", encoding="utf-8", newline="") as f:
        f.write("sentence\tlabel\n")
        f.writelines(f"{s}\t{y}\n" for s, y in rows)


def prepare_data(src: Path, out_data: Path, train_size: int | None, eval_size: int | None = None) -> Path:
    """Write the peer's training sample to out_data/sst2 with the real dev/test files beside it.

    train_size None keeps all of train in file order (the peer with --train-size 0); eval_size cuts
    dev.tsv and test_labeled.tsv to their first rows (--quick). Returns the sst2 folder."""
    dst = out_data / "sst2"
    dst.mkdir(parents=True, exist_ok=True)
    train = read_sst2(src / "train.tsv.gz")
    if train_size:
        train = random.Random(0).sample(train, train_size)  # exactly peer_ladder.py's line
    _write_rows(dst / "train.tsv.gz", train)
    for name in ("dev.tsv", "test.tsv", "test_labeled.tsv"):
        if eval_size and name != "test.tsv":
            _write_rows(dst / name, read_sst2(src / name)[:eval_size])
        else:
            (dst / name).symlink_to((src / name).resolve())
    return dst


# ----------------------------------------------------------------------------- running


def child_env(device: str) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"))
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the peer has no device flag: hide the GPU from both sides
    return env


def run_logged(cmd: list[str], log: Path, env: dict[str, str]) -> float:
    """Run `cmd` with its output in `log`; its wall seconds, or exit with the log's tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=REPO).returncode
    seconds = time.perf_counter() - t0
    if rc != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(True)[-25:])
        sys.exit(f"{tail}\nfailed (exit {rc}): {shlex.join(cmd)}\nlog: {log}")
    return seconds


def tunebench_exe() -> str:
    exe = Path(sys.executable).parent / "tunebench"
    return str(exe) if exe.is_file() else "tunebench"


def run_peer(data: Path, epochs: float, out: Path, env: dict[str, str]) -> dict[str, dict]:
    """Each peer strategy in its own process; {peer name: wall_s, dev_acc, peak_mb, ...}."""
    results = {}
    (out / "peer").mkdir(parents=True, exist_ok=True)
    for name in PEER_NAME.values():
        js = out / "peer" / f"{name}.json"
        args = ["--data-dir", str(data), "--train-size", "0", "--epochs", str(epochs)]
        cmd = [sys.executable, "-c", WRAPPER, str(PEER), *args, "--strategies", name, "--out", str(js)]
        print(f"[bench] peer {name} ...", flush=True)
        process_s = run_logged(cmd, out / "logs" / f"peer-{name}.log", env)
        res = json.loads(js.read_text())
        r = res["results"][0]
        results[name] = {
            "wall_s": r["wall_s"],
            "dev_acc": r["dev_acc"],
            "peak_mb": res["peak_mb"],
            "train_ex_per_s": r.get("train_ex_per_s"),
            "process_s": round(process_s, 1),
            "device": res["device"],
            "train": res["train"],
        }
        print(f"[bench] peer {name}: {r['wall_s']} s, dev acc {r['dev_acc']}", flush=True)
    return results


def summarise(record: dict) -> dict:
    """The fields of one tunebench run record that the tables need."""
    return {
        "status": record["status"],
        "wall_s": record["wall_seconds"],
        "dev_acc": (record.get("dev_metrics") or {}).get("accuracy"),
        "peak_mb": record.get("peak_memory_mb"),
        "ex_per_s": record.get("examples_per_second"),
        "times": record.get("times"),
        "epochs": (record.get("train_config") or {}).get("epochs"),
        "train": (record.get("sizes") or {}).get("train"),
        "device": record.get("device"),
    }


def run_tunebench(args: list[str], out: Path, log: Path, env: dict[str, str]) -> tuple[dict, float]:
    """One `tunebench compare` into the fresh folder `out`; ({strategy: summary}, process seconds)."""
    cmd = [tunebench_exe(), "compare", *args, "--seeds", "0", "--out", str(out)]
    process_s = run_logged(cmd, log, env)
    return {r["strategy"]: summarise(r) for r in RunStore(out).all()}, process_s


# ----------------------------------------------------------------------------- tables


def _num(x, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


def _ratio(peer_s, tb_s) -> str:
    return f"{peer_s / tb_s:.2f}×" if peer_s is not None and tb_s else "—"


def format_table(peer: dict[str, dict], tb: dict[str, dict]) -> str:
    """Markdown table: one row per ladder strategy, then the total over the strategies with a peer.
    `peer` is keyed by peer name (last-2), `tb` by tunebench name; a missing side shows "—"."""
    lines = [
        "| strategy | peer s | peer dev acc | peer peak MB | tunebench s | tunebench dev acc "
        "| tunebench peak MB | tunebench ex/s | speed ratio (peer s / tunebench s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    tot_p = tot_t = 0.0
    peaks_p, peaks_t, complete = [], [], True
    for name in LADDER:
        p = peer.get(PEER_NAME.get(name), {})
        t = tb.get(name, {})
        label = f"{name} (peer: {PEER_NAME[name]})" if PEER_NAME.get(name, name) != name else name
        acc = t.get("dev_acc") if t.get("status", "ok") == "ok" else t.get("status")
        lines.append(
            f"| {label} | {_num(p.get('wall_s'), '.1f')} | {_num(p.get('dev_acc'), '.4f')} "
            f"| {_num(p.get('peak_mb'), ',.0f')} | {_num(t.get('wall_s'), '.1f')} "
            f"| {acc if isinstance(acc, str) else _num(acc, '.4f')} | {_num(t.get('peak_mb'), ',.0f')} "
            f"| {_num(t.get('ex_per_s'), ',.1f')} | {_ratio(p.get('wall_s'), t.get('wall_s'))} |"
        )
        if name in PEER_NAME:
            if p.get("wall_s") is None or t.get("wall_s") is None:
                complete = False
            tot_p += p.get("wall_s") or 0.0
            tot_t += t.get("wall_s") or 0.0
            peaks_p.append(p.get("peak_mb") or 0)
            peaks_t.append(t.get("peak_mb") or 0)
    mp, mt = max(peaks_p, default=0) or None, max(peaks_t, default=0) or None
    lines.append(
        f"| **total** ({len(PEER_NAME)} with a peer) | {_num(tot_p or None, '.1f')} | | max {_num(mp, ',.0f')} "
        f"| {_num(tot_t or None, '.1f')} | | max {_num(mt, ',.0f')} | "
        f"| {_ratio(tot_p, tot_t) if complete else '—'} |"
    )
    return "\n".join(lines)


def format_scaling(cells: list[dict]) -> str:
    lines = ["| data | train | max length | strategy | run s | training s | train ex/s | peak MB |"]
    lines.append("|---|---|---|---|---|---|---|---|")
    for c in cells:
        t = c["result"]
        train_s = (t.get("times") or {}).get("training")
        lines.append(
            f"| {c['data']} | {c['train']:,} | {c['max_length']} | {c['strategy']} | {_num(t.get('wall_s'), '.1f')} "
            f"| {_num(train_s, '.1f')} | {_num(t.get('ex_per_s'), ',.1f')} | {_num(t.get('peak_mb'), ',.0f')} |"
        )
    return "\n".join(lines)


def machine(env: dict[str, str]) -> dict[str, str]:
    cpu = "unknown CPU"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    probe = "import torch; print(torch.__version__); c = torch.cuda.is_available(); print(torch.cuda.get_device_name(0) if c else '')"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env).stdout
    torch_v, gpu = ([*out.splitlines(), "", ""])[:2]
    return {"cpu": cpu, "cores": str(len(os.sched_getaffinity(0))), "gpu": gpu, "torch": torch_v}


# ----------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--quick", action="store_true", help="smoke test: 64 sentences, 1 epoch, dev/test 128")
    p.add_argument("--data-dir", type=Path, default=DATA_DIR, help="holds sst2/ and imdb/")
    p.add_argument("--out", type=Path, default=None, help="a new or empty folder (default: a temp dir)")
    p.add_argument("--json", type=Path, default=None, help="write every result here as JSON")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (for both sides)")
    p.add_argument("--skip-peer", action="store_true")
    p.add_argument("--skip-ladder", action="store_true", help="skip the tunebench ladder")
    p.add_argument("--scaling", action="store_true", help="add the size / max-length scaling table")
    p.add_argument("--scaling-sizes", type=int, nargs="+", default=None, help="SST-2 train sizes")
    p.add_argument("--scaling-lengths", type=int, nargs="+", default=None, help="IMDB max lengths")
    p.add_argument("--scaling-imdb-size", type=int, default=None, help="IMDB train size (1000)")
    a = p.parse_args(argv)
    a.data_dir = a.data_dir.resolve()  # the children run in the repo root
    a.sizes = a.scaling_sizes or ([64] if a.quick else [1000, 4000, 16000])
    a.lengths = a.scaling_lengths or ([64] if a.quick else [64, 128, 256])
    a.imdb_size = a.scaling_imdb_size or (64 if a.quick else 1000)
    return a


def scaling_cells(a: argparse.Namespace) -> list[dict]:
    cells = [{"data": "sst2", "train": n, "max_length": 128} for n in a.sizes]
    cells += [{"data": "imdb", "train": a.imdb_size, "max_length": L} for L in a.lengths]
    return [{**c, "strategy": s} for c in cells for s in SCALING]


def ladder_section(a: argparse.Namespace, prof: dict, out: Path, env: dict, result: dict) -> list[str]:
    """Peer processes and one tunebench compare on the same prepared SST-2 folder; the table's lines."""
    sst2 = prepare_data(a.data_dir / "sst2", out / "data", prof["train"], prof["eval"])
    if not a.skip_peer:
        result["peer"] = run_peer(sst2, prof["peer_epochs"], out, env)
    if not a.skip_ladder:
        args = ["--data", "sst2", "--data-dir", str(out / "data"), "--strategies", *LADDER]
        args += ["--max-length", "128", "--device", a.device]
        args += ["--epochs", str(prof["tb_epochs"])] if prof["tb_epochs"] else []
        print("[bench] tunebench compare (whole ladder) ...", flush=True)
        runs, process_s = run_tunebench(args, out / "tunebench", out / "logs" / "tunebench.log", env)
        result["tunebench"] = {"runs": runs, "process_s": round(process_s, 1)}
        print(f"[bench] tunebench: {process_s:.1f} s", flush=True)
    tb_epochs = f"{prof['tb_epochs']} epochs" if prof["tb_epochs"] else "its default epochs"
    n_dev = len(read_sst2(sst2 / "dev.tsv"))
    md = [
        f"SST-2: train {prof['train'] or 'all'} (the peer's random.Random(0) sample, both sides), "
        f"dev {n_dev} (dev.tsv); peer {prof['peer_epochs']} epochs, tunebench {tb_epochs}; "
        "seconds are each strategy's own wall time",
        "",
        format_table(result["peer"], result["tunebench"].get("runs", {})),
        "",
    ]
    if result["peer"]:
        peer_s = sum(r["process_s"] for r in result["peer"].values())
        md.append(
            f"- peer: {len(result['peer'])} processes, {peer_s:.1f} s wall in all (imports, tokenization included)"
        )
    if result["tunebench"]:
        runs, process_s = result["tunebench"]["runs"], result["tunebench"]["process_s"]
        md.append(
            f"- tunebench: one process, {process_s:.1f} s wall (model loading included); "
            f"its {len(runs)} strategies' runs {sum(r['wall_s'] for r in runs.values()):.1f} s"
        )
    return md


def scaling_section(a: argparse.Namespace, out: Path, env: dict, result: dict) -> list[str]:
    """One fresh `tunebench compare` per (data, size, max length, strategy) cell; the table's lines."""
    cap = 32 if a.quick else SCALING_EVAL
    for i, cell in enumerate(scaling_cells(a)):
        args = ["--data", cell["data"], "--data-dir", str(a.data_dir), "--train-size", str(cell["train"])]
        args += ["--max-length", str(cell["max_length"]), "--eval-size", str(cap)]
        args += ["--strategies", cell["strategy"], "--epochs", "1", "--device", a.device]
        tag = f"{i:02d}-{cell['data']}-{cell['train']}-{cell['max_length']}-{cell['strategy']}"
        print(f"[bench] scaling {tag} ...", flush=True)
        runs, process_s = run_tunebench(args, out / "scaling" / tag, out / "logs" / f"{tag}.log", env)
        cell.update(result=runs[cell["strategy"]], process_s=round(process_s, 1))
        result["scaling"].append(cell)
    title = "Scaling (tunebench, ONE epoch; a fresh --out per cell, so nothing is cached; "
    return [title + f"dev and test capped at {cap}):", "", format_scaling(result["scaling"])]


def main(argv=None) -> None:
    a = parse_args(argv)
    prof = PROFILES["quick" if a.quick else a.profile]
    out = (a.out or Path(tempfile.mkdtemp(prefix="bench-ladder-"))).resolve()
    if out.exists() and any(out.iterdir()):
        sys.exit(f"--out {out} is not empty; give a new folder (finished tunebench runs would be reused)")
    out.mkdir(parents=True, exist_ok=True)
    env = child_env(a.device)
    info = machine(env)
    command = shlex.join(["python", *sys.argv])
    result = {"command": command, "date": datetime.now().isoformat(timespec="seconds"), "machine": info}
    result.update(profile="quick" if a.quick else a.profile, **prof, peer={}, tunebench={}, scaling=[])
    gpu = f", GPU {info['gpu']}" if info["gpu"] else ""
    md = [
        f"Machine: {info['cpu']}, {info['cores']} cores{gpu}; torch {info['torch']}; {result['date']}",
        f"Command: `{command}`",
    ]
    if not (a.skip_peer and a.skip_ladder):
        md += ["", *ladder_section(a, prof, out, env, result)]
    if a.scaling:
        md += ["", *scaling_section(a, out, env, result)]
    text = "\n".join(md) + "\n"
    (out / "bench.md").write_text(text)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=1, default=str))
    print("\n" + text + f"\n(written to {out / 'bench.md'})")


if __name__ == "__main__":
    main()
