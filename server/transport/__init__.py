"""gRPC transport: servicers that translate requests and responses, interceptors, and the one table that maps
domain errors to status codes. No business rules here."""
