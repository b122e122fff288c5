"""A VM's ports exposed outside the cluster as Kubernetes Services (NodePort / LoadBalancer)."""
