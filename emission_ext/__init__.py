"""emission_ext: the core of the La Rochelle TRACES extension.

Data model (:mod:`emission_ext.schema`), readers and writers (:mod:`emission_ext.io`), stores
(:mod:`emission_ext.stores`), the incremental pipeline runner and the ``emission-ext`` command
line. Algorithms live in the sibling packages ``pipeline``, ``yelo_ingest``, ``parking_ingest``
and ``carbon``; this package orchestrates them.
"""
__version__ = "0.1.0"
