"""Reports: the results table, markdown and HTML pages with plots, merged views across machines and
history over time.
"""
