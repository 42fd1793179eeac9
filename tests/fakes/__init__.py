"""Test doubles: a TensorRT emulator generated from real API snapshots."""
