"""Metrics of the one evaluation: image level (``image``), pixel level (``pixel``), instances (``instance``)."""
