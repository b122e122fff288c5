"""vmctl: NovaSphere's command-line client. It speaks native gRPC to the API (through Envoy or to a replica)."""

__version__ = "0.1.0"
