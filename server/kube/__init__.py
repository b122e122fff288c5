"""Kubernetes access: one small module per resource, plus the shared client and error translation.

Nothing outside this package imports the `kubernetes` client. That client blocks, so every call runs on the
`KubeClient`'s own thread pool (sized by NOVASPHERE_KUBE_THREADS) and never on the event loop.
"""
