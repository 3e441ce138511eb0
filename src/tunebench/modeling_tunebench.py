"""The model classes a tunebench export ships beside its weights, so plain transformers loads it:

    AutoModelForSequenceClassification.from_pretrained(DIR, trust_remote_code=True)

This file is copied into exports as it is: it imports only torch and transformers, never tunebench.
A tunebench model is a pre-trained encoder (`backbone`, built from `config.backbone_config`, without
BERT's tanh pooler) and a task head (`head.out`): for sequences the encoder's hidden states pooled over
the real tokens (mean) or the first token (cls) -> dropout -> linear; for tokens a linear per token; for
spans a linear to start/end logits. The stock `...ForSequenceClassification` classes pool differently
(BERT's [CLS] + tanh pooler), so they would load these weights into a different model.
`adapter_bottleneck > 0`: Houlsby bottleneck adapters after each block's attention and FFN output
projections (h -> h + up(gelu(down(h)))), as tunebench's `adapters` strategy trained them.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import (
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)


class TunebenchConfig(PreTrainedConfig):
    model_type = "tunebench"

    def __init__(
        self,
        backbone_config: dict | None = None,
        pooling: str = "mean",
        head_dropout: float = 0.1,
        adapter_bottleneck: int = 0,
        **kwargs,
    ):
        self.backbone_config = backbone_config or {}
        self.pooling = pooling
        self.head_dropout = head_dropout
        self.adapter_bottleneck = adapter_bottleneck
        super().__init__(**kwargs)


class Adapted(nn.Module):
    """A projection followed by a residual bottleneck adapter."""

    def __init__(self, proj: nn.Linear, bottleneck: int):
        super().__init__()
        self.proj = proj
        self.down = nn.Linear(proj.out_features, bottleneck)
        self.up = nn.Linear(bottleneck, proj.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        return h + self.up(nn.functional.gelu(self.down(h)))


def build_backbone(config: TunebenchConfig) -> nn.Module:
    inner = dict(config.backbone_config)
    backbone = AutoModel.from_config(AutoConfig.for_model(inner.pop("model_type"), **inner))
    if getattr(backbone, "pooler", None) is not None:
        backbone.pooler = None
    if config.adapter_bottleneck:
        for layer in backbone.encoder.layer:
            for parent in (layer.attention.output, layer.output):
                parent.dense = Adapted(parent.dense, config.adapter_bottleneck)
    return backbone


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """(B, T, H), (B, T) -> (B, H): mean over the real tokens, or the first token."""
    if how == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class Head(nn.Module):
    def __init__(self, hidden_size: int, num_outputs: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(x))


class TunebenchPreTrainedModel(PreTrainedModel):
    config_class = TunebenchConfig
    base_model_prefix = "backbone"

    def __init__(self, config: TunebenchConfig, num_outputs: int | None = None, dropout: float | None = None):
        """The encoder and the head (`num_outputs`: default the labels; `dropout`: default the config's)."""
        super().__init__(config)
        self.backbone = build_backbone(config)
        width = self.backbone.config.hidden_size
        self.head = Head(
            width, num_outputs or config.num_labels, config.head_dropout if dropout is None else dropout
        )
        self.post_init()

    def _init_weights(self, module):
        """Every weight comes from the checkpoint; a fresh model keeps torch's initialisation."""

    def encode(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return self.backbone(**kwargs).last_hidden_state  # (B, T, H)


class TunebenchForSequenceClassification(TunebenchPreTrainedModel):
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encode(input_ids, attention_mask, token_type_ids)
        logits = self.head(pool(hidden, attention_mask, self.config.pooling))  # (B, C)
        loss = None
        if labels is not None:
            if self.config.num_labels == 1:  # regression (a similarity score)
                loss = nn.functional.mse_loss(logits.squeeze(-1), labels.float())
            else:
                loss = nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


class TunebenchForTokenClassification(TunebenchPreTrainedModel):
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        logits = self.head(self.encode(input_ids, attention_mask, token_type_ids))  # (B, T, C)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        return TokenClassifierOutput(loss=loss, logits=logits)


class TunebenchForQuestionAnswering(TunebenchPreTrainedModel):
    def __init__(self, config: TunebenchConfig):
        super().__init__(config, num_outputs=2, dropout=0.0)  # start and end logits

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **kwargs):
        logits = self.head(self.encode(input_ids, attention_mask, token_type_ids))  # (B, T, 2)
        start, end = logits.unbind(-1)
        return QuestionAnsweringModelOutput(start_logits=start, end_logits=end)
