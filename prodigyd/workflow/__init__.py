"""Workflows: their model, loading, composition and expressions."""

#: The largest workflow file (workflow/limits.py enforces it while reading). Here, not in
#: limits.py, so that the request schemas can name it without importing YAML at start.
MAX_FILE_BYTES = 512 * 1024
