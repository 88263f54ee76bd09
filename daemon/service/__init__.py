"""The service model: [DEFAULT] keywords, instances, actions."""
