"""The vault resolver: secret references in a service's environment, resolved just before a child is spawned.

docs/vault.md describes the references, the backends, the cache, the circuit breaker, rotation and every setting.
"""
