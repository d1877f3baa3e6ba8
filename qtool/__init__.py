"""qtool: make Qwen-VL-family models deployable on smaller GPUs and edge machines."""

__version__ = "0.1.0"
