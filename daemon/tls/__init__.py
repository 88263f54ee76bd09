"""TLS for the TCP listener and between peers: the cluster CA, node certificates, join
bundles and the SSL contexts."""
