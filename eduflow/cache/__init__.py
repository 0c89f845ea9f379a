"""The key-value stores and everything that decides what a cached answer is.

- ``stores``: key namespace (``PREFIX``, ``key()``), the ``Store`` interface, its Redis and
  in-process backends, ``get_redis()``, ``get_store()``, ``fence()``.
- ``generations``: generation keys and tokens (the response cache's key scheme).
- ``health``: the cache's short-timeout store, its outage breaker, its figures, and
  ``reset_store()`` (forget every client and figure: tests, forks).
- ``catalog``: invalidation of cached catalogue responses after a write.
- ``responses``: the response-cache policy (plans, audiences, entries, the one lookup).
- ``near``: the near cache of the server processes (RESP3 client tracking).
"""
