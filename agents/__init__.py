"""Recommendation agent: knowledge corpus, Haystack indexing and query pipelines, the recommender.

Every retrieval step is a Haystack `@component` with validated configuration and a round-tripping
`to_dict`/`from_dict`; pipelines are built by functions, never at import time, and store clients
(Qdrant) connect lazily. The recommender ranks candidate actions from the twin's scenario results
and cites the evidence that supports them; generative models are optional and off by default.
"""
