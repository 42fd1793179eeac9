"""The TensorRT family: engine building and loading, the in-process runner, pycuda buffers,
TensorRT-RTX and trtexec.
"""
