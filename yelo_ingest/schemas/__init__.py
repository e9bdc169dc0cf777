"""Machine-readable operator file formats (Frictionless Table Schema JSON, one per file kind)."""
