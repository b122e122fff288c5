"""Wukongs (virtual machines): the domain rules of reading them. No gRPC here."""
