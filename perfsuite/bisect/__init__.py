"""`perfsuite bisect GOOD BAD`: which commit made it slower. Each step is an A/B run
(`--perf-ab=GOOD`, the isolated workers) of one commit's checkout, for the benchmarks that
regressed between GOOD and BAD; git picks the commits as `git bisect` does."""
