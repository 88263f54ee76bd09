"""Configuration engine: INI documents, keyword declarations and converters, scoping,
references, expressions, and the issues found; what any configuration file is made of."""
