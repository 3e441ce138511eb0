from contextlib import contextmanager
from dataclasses import dataclass

import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.lora import LoraLayer
from peft.tuners.lora.layer import Linear
from torch import nn

from ..errors import TunebenchError
from .base import STRATEGIES, Hints, Strategy, n_params
from .export import PeftExport
from .lora_linear import LoraLinear


@STRATEGIES.register("lora")
@dataclass
class LoRA(PeftExport, Strategy):
    """LoRA (Hu et al. 2021) through peft on the backbone. Our head is a separate module that always
    trains and is saved beside the adapter (no `modules_to_save` trap)."""

    ladder = 5
    curve = True
    summary = "low-rank updates on every linear layer of the backbone (peft) + head"
    # All linear layers (as QLoRA recommends to match full fine-tuning) and a rate suited to the few
    # hundred steps of a small dataset; the LoRA paper's setting is targets=query,value with lr 5e-4.
    train_defaults = {"lr": 1e-3, "epochs": 3}
    hints = Hints(
        train_rate=70.0,
        advice={
            "labels<1k:peft": 1,
            "labels<10k": 1,
            "labels>=10k": 2,
            "task=text-pair": 1,
            "gap=medium": 1,
            "memory-tight": 2,
            "device=cpu:backward-anyway": -0.5,
        },
    )
    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    targets: str = "all-linear"  # all-linear | auto (peft's per-architecture choice) | "query,value"

    def search_space(self, cfg, num_layers):
        """Also the rank and the scale: r in 4-16 and alpha = r to 4r cover what the LoRA paper and
        peft's examples use."""
        return {
            **super().search_space(cfg, num_layers),
            "r": ("choice", sorted({4, 8, 16, self.r})),
            "alpha": ("choice", sorted({8, 16, 32, self.alpha})),
        }

    def peft_config(self, default_targets: list[str] | None = None):
        if self.targets in ("all-linear", "auto") and default_targets is not None:
            targets = default_targets  # the backbone names its own (image CNNs: 1x1 convs + linears)
        elif self.targets in ("all-linear", "auto"):
            targets = None if self.targets == "auto" else "all-linear"
        else:
            targets = [t.strip() for t in self.targets.split(",")]
        # No task_type: the plain PeftModel passes token_type_ids through (sentence pairs need them).
        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=targets,
        )

    def trainable_formula(self, model) -> int:
        """r x (inputs + outputs) per wrapped layer (A: in -> r, B: r -> out; convolutions: A has the
        kernel), + head. Wrapped: the backbone's own LoRA targets, else every linear layer, or the
        modules named in `targets`."""
        own = getattr(model.backbone, "lora_target_modules", None)
        modules = dict(model.backbone.named_modules())
        if self.targets in ("all-linear", "auto"):
            names = own() if callable(own) else [n for n, m in modules.items() if isinstance(m, nn.Linear)]
        else:
            wanted = {t.strip() for t in self.targets.split(",")}
            names = [n for n in modules if n.rsplit(".", 1)[-1] in wanted]
        total = n_params(model.head)
        for name in names:
            m = modules[name]
            if isinstance(m, nn.Conv2d):
                kh, kw = m.kernel_size
                total += self.r * m.in_channels * kh * kw + m.out_channels * self.r
            else:
                total += self.r * (m.in_features + m.out_features)
        return total

    def prepare(self, model):
        own = getattr(model.backbone, "lora_target_modules", None)
        try:
            model.backbone = get_peft_model(
                model.backbone, self.peft_config(own() if callable(own) else None)
            )
        except ValueError as err:
            raise TunebenchError(
                f"lora: {str(err).splitlines()[0]} (set --opt lora.targets=name1,name2)"
            ) from None
        for m in model.backbone.modules():
            if type(m) is Linear:
                m.__class__ = LoraLinear  # the same layer with a leaner CPU training step
        return model

    @contextmanager
    def evaluating(self, model):
        """Evaluate the network the export predicts with: adapters merged into the weights and every
        LoRA layer swapped for its base layer, the peft wrapper set aside (the same modules, names and
        forward as the plain model's, so a compare's predict cost of that architecture serves LoRA too).
        Afterwards the wrappers go back and the pre-trained weights are put back bit for bit, not
        un-merged by subtraction, so training goes on from exactly where it was."""
        peft_model = model.backbone
        base = peft_model.get_base_model()
        layers = [(name, m) for name, m in base.named_modules() if isinstance(m, LoraLayer)]
        saved = [m.get_base_layer().weight.detach().clone() for _, m in layers]
        with torch.no_grad():
            for _, m in layers:
                m.merge()
        for name, m in layers:
            _swap(base, name, m.get_base_layer())
        model.backbone = base
        try:
            yield model
        finally:
            model.backbone = peft_model
            for name, m in layers:
                _swap(base, name, m)
            with torch.no_grad():
                for (_, m), weight in zip(layers, saved):
                    m.unmerge()
                    m.get_base_layer().weight.copy_(weight)

    def load(self, out, model):
        """The exported adapter merged into the backbone: prediction costs what the plain model's does."""
        model = PeftExport.load(self, out, model)
        model.backbone = model.backbone.merge_and_unload()
        return model


def _swap(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent), child, module)
