from dataclasses import dataclass

from peft import PrefixTuningConfig, TaskType, get_peft_model

from .base import STRATEGIES, Strategy, n_params
from .export import PeftExport


@STRATEGIES.register("prefix")
@dataclass
class Prefix(PeftExport, Strategy):
    """Prefix tuning (Li & Liang 2021) through peft: trainable key/value prefixes in every layer."""

    summary = "trainable key/value prefixes in every attention layer (peft) + head"
    train_defaults = {"lr": 1e-2, "epochs": 3, "warmup_ratio": 0.06}
    requires = {
        "attention": "prefix tuning prepends trainable key/value vectors to the attention layers over a "
        "token sequence; this backbone has no attention and no token sequence"
    }
    tiny_options = {"virtual_tokens": "5"}
    virtual_tokens: int = 20

    def peft_config(self):
        return PrefixTuningConfig(
            task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=self.virtual_tokens
        )

    def prepare(self, model):
        model.backbone = get_peft_model(model.backbone, self.peft_config())
        return model

    def trainable_formula(self, model) -> int:
        """A key and a value vector of the model's width per virtual token, in every layer (no
        reparameterisation MLP), + head."""
        cfg = model.backbone.config
        return cfg.num_hidden_layers * 2 * cfg.hidden_size * self.virtual_tokens + n_params(model.head)
