"""Analysis of a backbone and a dataset, beside the training ladder. `probe`: where in the frozen
backbone the task lives, and where partial fine-tuning should start. `gap`: how far the data is from
the model's vocabulary or from a reference corpus. Both read frozen features from the on-disk cache
that `compare`'s `features` and `head` strategies share, so together they cost one forward pass."""
