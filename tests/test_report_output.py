"""The HTML report, the report/recommend CLI and a headless-Chromium screenshot on a real tiny compare
whose positive label is a script tag (everything shown must be escaped)."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import make_rows, write_tsv

from tunebench.cli import main
from tunebench.report.html import _series, write_html
from tunebench.report.leaderboard_checks import diagnose_output
from tunebench.report.output import load_output
from tunebench.report.plots import PALETTE
from tunebench.report.recommend import analyse

XSS = "<script>alert(1)</script>"
CHROMIUM = Path("/usr/bin/chromium")


# -- a real output folder: report, CLI, browser --------------------------------------------------------


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory, tiny_model) -> Path:
    """A tiny compare whose positive label is a script tag: everything shown must be escaped."""
    import tunebench
    from tunebench.data import DataConfig

    root = tmp_path_factory.mktemp("report")

    def rows(n, seed):
        return [(text, XSS if label == "pos" else "neg") for text, label in make_rows(n, seed)]

    data = DataConfig(
        data=str(write_tsv(root / "train.tsv", rows(96, 1))),
        dev=str(write_tsv(root / "dev.tsv", rows(48, 2))),
        test=str(write_tsv(root / "test.tsv", rows(48, 3))),
    )
    out = root / "out"
    tunebench.compare(
        data,
        model=tiny_model,
        strategies=["features", "head", "full"],
        out=out,
        train={"epochs": 2},
        show=False,
    )
    return out


def test_report_sections_and_escaping(out_dir, tmp_path):
    html = write_html(out_dir, tmp_path / "r.html").read_text()
    for anchor in ("leaderboard", "pareto", "learning-curves", "diagnostics", "recommendation"):
        assert f"id='{anchor}'" in html
    for name in ("features", "head", "full"):
        assert f"<td class='l'>{name}</td>" in html
    assert html.count("<svg") >= 3 and 'class="point on-front"' in html
    # the dashed front line joins the Pareto-optimal points when there is more than one
    assert ('class="front"' in html) == (html.count('class="point on-front"') > 1)
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower() and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    for anchor in ("layer-probe", "size-curve", "drift", "domain-gap"):
        section = html.split(f"id='{anchor}'")[1].split("</section>")[0]
        assert "Not measured yet" in section


def test_optional_sections_render_when_present(out_dir, tmp_path):
    folder = tmp_path / "out"
    shutil.copytree(out_dir, folder)
    (folder / "probe.json").write_text(
        json.dumps(
            {
                "metric": "accuracy",
                "majority": {"dev": 0.5},
                "layers": [
                    {"layer": i, "name": f"block {i}", "pooling": p, "dev": {"accuracy": 0.6 + 0.05 * i}}
                    for p in ("mean", "cls")
                    for i in range(3)
                ],
                "suggestion": {"last_k": 1, "text": f"top layer {XSS}"},
            }
        )
    )
    (folder / "curve.json").write_text(
        json.dumps({"full": {"100": 0.7, "1000": 0.8}, XSS: [[100, 0.6], [1000, 0.75]]})
    )
    results = json.loads((folder / "results.json").read_text())
    for i, r in enumerate(results["runs"]):
        r["drift"] = {"layer.0": 0.01 * i, "layer.1": 0.02 * i}
        r.pop("truncated_share", None)  # records from before runs measured it: gap.json's share is used
    (folder / "results.json").write_text(json.dumps(results))
    gap = {
        "data_fingerprint": results["runs"][0]["data_fingerprint"],
        "max_length": results["runs"][0]["max_length"],
        "verdict": "large",
        "verdict_by": ["fertility"],
        "tokenizer": {"truncated_share": 0.3},
        "signals": [{"name": "fertility", "label": "fertility", "value": 1.9, "level": "large"}],
    }
    (folder / "gap.json").write_text(json.dumps(gap))
    html = write_html(folder).read_text()
    assert "gap=large (gap.json)" in html and "truncation" in html
    assert "Verdict: large" in html
    for anchor in ("layer-probe", "size-curve", "drift"):
        section = html.split(f"id='{anchor}'")[1].split("</section>")[0]
        assert "Not measured yet" not in section and "<svg" in section, anchor
    assert XSS not in html
    (folder / "probe.json").write_text("{not json")
    assert "could not be read" in write_html(folder).read_text()


def test_strategy_names_and_errors_are_escaped(out_dir, tmp_path):
    folder = tmp_path / "out"
    shutil.copytree(out_dir, folder)
    results = json.loads((folder / "results.json").read_text())
    results["runs"][0]["strategy"] = XSS
    broken = dict(results["runs"][1], key="broken", status="error: ValueError: <img src=x onerror=alert(1)>")
    results["runs"].append(broken)
    (folder / "results.json").write_text(json.dumps(results))
    html = write_html(folder).read_text()
    assert XSS not in html and "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and html.count("&lt;script&gt;") >= 3


@pytest.mark.parametrize(
    "data, n_series",
    [
        ([0.5, 0.6, 0.7], 1),
        ({"0": 0.5, "1": 0.6}, 1),
        ({"layers": [0, 1, 2], "scores": [0.5, 0.6, 0.7]}, 1),
        ([{"layer": 0, "accuracy": 0.5}, {"layer": 1, "accuracy": 0.6}], 1),
        (
            {
                "results": [
                    {"layer": 0, "pooling": "mean", "dev": 0.5},
                    {"layer": 0, "pooling": "cls", "dev": 0.4},
                ]
            },
            2,
        ),
        ({"lora": [[100, 0.6], [1000, 0.7]], "full": {"100": 0.5}}, 2),
        (
            [
                {"train_size": 100, "strategy": "a", "dev_mean": 0.5},
                {"train_size": 100, "strategy": "b", "dev_mean": 0.6},
            ],
            2,
        ),
        ("nonsense", 0),
    ],
)
def test_tolerant_curve_loader(data, n_series):
    series = _series(data, "curve", "accuracy", "x")
    assert len(series) == n_series
    assert all(len(s["xs"]) == len(s["ys"]) and all(y is not None for y in s["ys"]) for s in series)


def test_cli_report_and_recommend(out_dir, tmp_path, capsys):
    path = tmp_path / "cli.html"
    assert main(["-q", "report", str(out_dir), "--html", str(path)]) == 0
    assert path.is_file() and "wrote" in capsys.readouterr().out
    assert main(["-q", "recommend", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert (
        "Winner:" in out and "Pareto set" in out and "Cheapest within noise" in out and "Rule of thumb" in out
    )
    assert (
        main(
            [
                "-q",
                "recommend",
                "--train-size",
                "300",
                "--device",
                "cpu",
                "--budget-minutes",
                "5",
                "--gap",
                "large",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Try first:" in out and "train_size=300" in out and "gap=large" in out
    assert main(["-q", "recommend", "--train-size", "300", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["try_first"]
    assert main(["-q", "recommend"]) == 2
    assert main(["-q", "report", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "--train-size" in err and "nowhere" in err and "Traceback" not in err


def test_load_output_falls_back_to_the_run_store(out_dir, tmp_path):
    folder = tmp_path / "db-only"
    folder.mkdir()
    shutil.copy(out_dir / "runs.sqlite", folder)
    out = load_output(folder)
    assert {r["strategy"] for r in out.rows} == {"features", "head", "full"} and out.source.endswith(
        "runs.sqlite"
    )


# -- headless Chromium --------------------------------------------------------------------------------


def decode_png(path: Path) -> np.ndarray:
    """A tiny PNG decoder (8-bit RGB/RGBA, non-interlaced): what Chromium writes. Returns (H, W, C)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = header
    assert depth == 8 and ctype in (2, 6) and interlace == 0
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), w * bpp + 1
    img = np.zeros((h, w * bpp), dtype=np.uint8)
    prev = np.zeros(w * bpp, dtype=np.int64)
    for y in range(h):
        f, line = raw[y * stride], np.frombuffer(raw, np.uint8, w * bpp, y * stride + 1).astype(np.int64)
        if f == 0:
            cur = line
        elif f == 1:  # Sub: a running sum along each channel
            cur = line.reshape(w, bpp).cumsum(0).reshape(-1) & 255
        elif f == 2:  # Up
            cur = (line + prev) & 255
        else:  # Average / Paeth depend on the pixel just decoded: one byte at a time
            cur, up, src = [0] * (w * bpp), prev.tolist(), line.tolist()
            for i in range(w * bpp):
                a = cur[i - bpp] if i >= bpp else 0
                b, c = up[i], (up[i - bpp] if i >= bpp else 0)
                if f == 3:
                    pred = (a + b) >> 1
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (src[i] + pred) & 255
            cur = np.asarray(cur, dtype=np.int64)
        img[y], prev = cur, cur
    return img.reshape(h, w, bpp)[:, :, :3]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium(out_dir, tmp_path):
    html_path = write_html(out_dir, tmp_path / "report.html")
    png = tmp_path / "shot.png"
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={png}",
        "--window-size=1400,2000",
        html_path.resolve().as_uri(),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    img = decode_png(png)
    assert img.shape == (2000, 1400, 3)
    pixels = img.reshape(-1, 3)
    colours, counts = np.unique(pixels[::7], axis=0, return_counts=True)
    background = colours[counts.argmax()]
    assert (pixels != background).any(1).mean() > 0.05  # not blank
    assert len(colours) > 100  # text anti-aliasing and plot colours
    # the plots drew: at least three of the strategy colours appear as solid pixels
    drawn = [
        c
        for c in PALETTE[:3]
        if (np.abs(pixels.astype(int) - np.array(list(bytes.fromhex(c[1:])))).sum(1) < 12).sum() > 20
    ]
    assert len(drawn) == 3
    html = html_path.read_text()
    assert (
        all(f"<td class='l'>{s}</td>" in html for s in ("features", "head", "full")) and "<polyline" in html
    )


def test_reading_does_not_change_the_folder(out_dir):
    before = {p: p.stat().st_mtime_ns for p in out_dir.rglob("*") if p.is_file()}
    out = load_output(out_dir)
    diagnose_output(out.records, out.rows, out.out_dir, out.facts)
    analyse(out.records, out.rows, out.metric)
    assert {p: p.stat().st_mtime_ns for p in out_dir.rglob("*") if p.is_file()} == before
