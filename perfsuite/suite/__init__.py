"""The performance suite shipped with perfsuite: latency, agreement, drift and size of every
configured model. The plugin adds it to runs of repositories that configure [tool.perfsuite]."""
