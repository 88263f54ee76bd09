"""The service model: [DEFAULT] keywords, the sections a service file may hold, a service
file bound to the drivers' keywords (config, validate, evaluate, check), instances."""
