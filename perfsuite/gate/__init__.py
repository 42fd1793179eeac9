"""Gates: pure regression decisions, the baseline store, the baseline gate and the A/B gate behind
one protocol (perfsuite.gate.protocol).
"""
