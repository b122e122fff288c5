"""VM operations as durable tasks: Task objects in the cluster, written by the replica that accepts an operation and
reconciled to the end by the elected leader."""
