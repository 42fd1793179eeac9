"""The run: the workshop that builds each model, artifact and runner once, and the latency
measurement (alone or in A/B pairs) that makes records.
"""
