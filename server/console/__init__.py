"""VM consoles (VNC and serial) through the API: one-time tickets, one session per VM and protocol, and the
WebSocket proxy to KubeVirt's console subresources."""
