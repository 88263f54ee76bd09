"""The node: its configuration file (``node.conf``) and what the daemon knows about itself."""
