"""Measurement maths: latency statistics, energy windows, paired A/B trials, output agreement and
sizes; pure functions over samples.
"""
