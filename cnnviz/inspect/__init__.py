"""The inspection engine: what explains a model, as arrays and dataclasses (never figures)."""
