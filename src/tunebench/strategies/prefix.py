from dataclasses import dataclass

from .base import STRATEGIES, Strategy


@STRATEGIES.register("prefix")
@dataclass
class Prefix(Strategy):
    """Prefix tuning (Li & Liang 2021) through peft: trainable key/value prefixes in every layer."""

    summary = "trainable key/value prefixes in every attention layer (peft) + head"
    train_defaults = {"lr": 1e-2, "epochs": 3, "warmup_ratio": 0.06}
    save_mode = "peft"
    virtual_tokens: int = 20

    def peft_config(self):
        from peft import PrefixTuningConfig, TaskType

        return PrefixTuningConfig(
            task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=self.virtual_tokens
        )

    def prepare(self, model):
        from peft import get_peft_model

        model.backbone = get_peft_model(model.backbone, self.peft_config())
        return model
