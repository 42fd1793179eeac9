"""A/B workers: each side of `--perf-ab` in its own process, driven one trial at a time over a
small versioned protocol.
"""
