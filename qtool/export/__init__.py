"""Exports to other runtimes: ``onnx_*`` for the vision tower in ONNX (see docs/onnx.md).

Kept empty on purpose: ``qtool.runtime`` reads the ONNX tables from here without loading torch.
"""
