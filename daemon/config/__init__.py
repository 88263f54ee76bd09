"""Configuration engine: INI documents, keyword declarations, scoping, references, validation."""
