"""Runtimes for exported artifacts; each needs only numpy, pillow and its own inference engine.

Nothing here imports torch or transformers: ``qtool.runtime.vision`` runs an exported vision tower
with onnxruntime alone.
"""
