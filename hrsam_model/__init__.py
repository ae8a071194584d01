"""HRSAM in plain PyTorch."""
