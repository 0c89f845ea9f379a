"""The key-value stores and the response cache's policy.

- ``stores``: key namespace (``PREFIX``, ``key()``), the ``Store`` interface, its Redis and
  in-process backends, ``get_redis()``, ``get_store()``, ``reset_store()``, ``fence()``.
- ``generations``: generation keys and tokens (the response cache's key scheme).
- ``health``: the cache's short-timeout store, its outage breaker and its figures.
- ``catalog``: invalidation of cached catalogue responses after a write.
"""
