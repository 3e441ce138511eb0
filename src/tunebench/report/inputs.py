"""What `tunebench recommend` takes besides a task and a train size (light: the CLI builds its flags
from these without loading torch)."""

GAPS = ("small", "medium", "large")
DEVICES = ("cpu", "cuda")
REFERENCE_PARAMS_M = 22.7  # all-MiniLM-L6-v2, the model the cost model's rates were measured with
