"""Models and artifacts: model specs built into torch modules, deterministic inputs, ONNX export
and the on-disk artifact cache.
"""
