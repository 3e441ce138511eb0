"""The one training loop, its batching and its optimiser/schedule."""
