"""Tests of PyTorch's distributed suite that fccl skips, each with the reason."""

SKIPS = {
}
