"""Plotly/PIL figure builders from inspection results; they return figures, never show or save."""
